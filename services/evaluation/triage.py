"""Which consumed records the national figures may use, and why the others are rejected. Pure."""

from __future__ import annotations

from functools import lru_cache

from shared import events as ev
from shared.topics import city_of_topic

_city_of_topic = lru_cache(maxsize=4096)(city_of_topic)  # once per topic, not per record


class RejectedError(ValueError):
    """A record that goes to the dead-letter topic; `reason` is the header and metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def admit(topic: str, value: bytes | None) -> tuple[ev.Envelope, ev.EventData]:
    """Decode a record of a city topic; raise RejectedError for what must be dead-lettered.

    A city may only speak for itself: an event declaring another city than the topic it was
    written to would let one node change another's figures, so it is refused ("city-mismatch").
    """
    try:
        envelope, payload = ev.decode(value or b"")
    except ev.ContractError as exc:
        raise RejectedError("contract", str(exc)) from None
    expected = _city_of_topic(topic)
    if envelope.city != expected:
        raise RejectedError(
            "city-mismatch", f"envelope.city {envelope.city!r} on topic of {expected!r}"
        )
    stream = topic.rsplit(".", 1)[-1]
    if payload.STREAM != stream:  # e.g. a heartbeat on an event topic: never counted
        raise RejectedError("wrong-stream", f"{envelope.type} belongs on the {payload.STREAM} "
                                            f"topic, not on {topic!r}")
    return envelope, payload
