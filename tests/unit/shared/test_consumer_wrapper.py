"""The consumer contract of shared.kafka, on FastStream's in-memory broker."""

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from shared.errors import DomainError
from shared.events import Envelope, SessionCancelled
from shared.kafka import subscribe_events
from shared.settings import Settings

SETTINGS = Settings(node="palu", service="enrollment")


def cancelled(session_id: str = "s-1") -> Envelope:
    return Envelope.wrap(SessionCancelled(session_id=session_id, reason="budget cut"),
                         city="palu", service="sessions")


async def run(*messages: bytes, handler, headers: dict | None = None) -> list:
    broker = KafkaBroker()
    dead: list = []
    subscribe_events(broker, group="g", settings=SETTINGS, handler=handler,
                     topics=["bangkom.palu.sessions"])

    @broker.subscriber("bangkom.palu.deadletter")
    async def deadletters(msg: KafkaMessage) -> None:
        dead.append((msg.body, msg.headers))

    async with TestKafkaBroker(broker) as br:
        for m in messages:
            await br.publish(m, topic="bangkom.palu.sessions", headers=headers)
    return dead


async def test_garbage_goes_to_the_dead_letter_topic_and_the_consumer_keeps_going():
    seen = []

    async def handler(envelope, payload):
        seen.append(payload.session_id)
        return "applied"

    dead = await run(b"\x00garbage", cancelled("s-2").to_bytes(), handler=handler)
    assert seen == ["s-2"]
    assert len(dead) == 1
    assert dead[0][1]["x-bangkom-reason"].startswith("contract: not a Bangkom CloudEvent")


async def test_an_event_the_domain_rejects_is_dead_lettered_with_the_reason():
    async def handler(envelope, payload):
        raise DomainError("session_id", "unknown session")

    dead = await run(cancelled().to_bytes(), handler=handler)
    assert dead[0][1]["x-bangkom-reason"] == "processing: session_id: unknown session"


async def test_a_transient_failure_is_retried_not_dead_lettered():
    calls = []

    async def handler(envelope, payload):
        calls.append(1)
        if len(calls) < 2:
            raise RuntimeError("flaky")
        return "applied"

    dead = await run(cancelled().to_bytes(), handler=handler)
    assert len(calls) == 2
    assert dead == []


async def test_a_dead_letter_redelivered_for_another_group_is_left_alone():
    seen = []

    async def handler(envelope, payload):
        seen.append(payload.session_id)
        return "applied"

    await run(cancelled("s-3").to_bytes(), handler=handler,
              headers={"x-bangkom-redeliver-to": "bangkom.palu.sessions.roster"})
    await run(cancelled("s-4").to_bytes(), handler=handler,
              headers={"x-bangkom-redeliver-to": "g"})
    assert seen == ["s-4"]
