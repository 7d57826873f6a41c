"""When the nation last heard from each city, and which cities are behind.

The cities' heartbeats (shared.heartbeat) arrive on the mirrored `bangkom.<city>.heartbeat`
topics. They are read with no consumer group, from the start of the compacted topics, and kept
in memory only: after a restart the topics say again what was last heard. A city is behind when
no beat has come for `behind_seconds`, whatever the cause (its broker, its link, its services):
its figures here are then what it sent until `last_heard`. A city's clock stamps the beat; nodes
keep NTP time, and `behind_seconds` is minutes, not seconds.

The records waiting on a link are the beats' `log_end` (where each city stream ended when the
beat left) less what MirrorMaker has recorded as copied (`mm2-offsets.<city>.internal` here,
shared.mirror_offsets), read by the same consumer. While nothing is heard the figure stays what
the last beat said, a lower bound; the seconds gauge grows and says the link is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared import events as ev
from shared import metrics
from shared.kafka import deadletter_headers, producer as kafka_producer
from shared.kafka_auth import client_kwargs
from shared.mirror_offsets import OFFSETS_PATTERN, copied, source_of, waiting
from shared.outage import Outage
from shared.settings import Settings
from shared.topics import HEARTBEAT_PATTERN, NATIONAL, deadletter_topic

log = logging.getLogger(__name__)
GROUP = "bangkom.national.evaluation.heard"  # no Kafka group: only the label of its metrics


@dataclass
class Heard:
    """Newest heartbeat time per city (epoch seconds). Pure: the listener feeds it."""

    behind_seconds: float
    last: dict[str, float] = field(default_factory=dict)
    ends: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)
    done: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)

    def beat(self, city: str, stamp: float, log_end: dict[str, list[int]] | None = None) -> None:
        if city not in self.last:
            metrics.LINK_LAG.labels(city, NATIONAL).set_function(lambda: self.lag(city))
        if stamp > self.last.get(city, 0.0):
            self.last[city] = stamp
            # only the newest beat's ends: one copied late must not undo a later one
            ends = self.ends.setdefault(city, {})
            for name, partitions in (log_end or {}).items():
                if name.startswith(f"bangkom.{city}."):
                    ends.update({(name, p): end for p, end in enumerate(partitions)})

    def copied(self, city: str, where: tuple[str, int], offset: int | None) -> None:
        """MirrorMaker's record that the flow from `city` copied `where` up to `offset`."""
        if city not in self.done:  # a link from this city exists: its records gauge too
            metrics.LINK_LAG_RECORDS.labels(city, NATIONAL).set_function(
                lambda: self.waiting(city))
        done = self.done.setdefault(city, {})
        if offset is None:
            done.pop(where, None)
        else:
            done[where] = offset  # read in order: the newest record is the truth

    def waiting(self, city: str) -> int:
        return waiting(self.ends.get(city, {}), self.done.get(city, {}))

    def lag(self, city: str, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.last[city])

    def report(self, city: str, last_event: float | None, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        heard = self.last.get(city)
        return {"last_event_time": last_event, "last_heard": heard,
                "behind": heard is None or self.lag(city, now) > self.behind_seconds}


async def listen(settings: Settings, heard: Heard) -> None:
    """Forever: every city's heartbeats into `heard`; a record that is not a heartbeat of the
    topic's city goes to the national dead-letter topic with the reason."""
    outage = Outage("heartbeat listener's Kafka", log)
    while True:
        consumer = AIOKafkaConsumer(
            **client_kwargs(settings), group_id=None, client_id="bangkom-national-heard",
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed", metadata_max_age_ms=5000)
        producer: AIOKafkaProducer | None = None
        try:
            consumer.subscribe(pattern=f"{HEARTBEAT_PATTERN}|{OFFSETS_PATTERN}")
            await consumer.start()
            starting = kafka_producer(settings, client_id="bangkom-national-heard")
            await starting.start()
            producer = starting
            outage.succeeded()
            while True:
                polled = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in polled.values():
                    for record in records:
                        await _take(record, heard, producer, settings)
        except KafkaError as exc:
            outage.failed(f"{exc}; listening again in 5 s")
        finally:
            await consumer.stop()
            if producer is not None:
                await producer.stop()
        await asyncio.sleep(5)


async def _take(record, heard: Heard, producer: AIOKafkaProducer, settings: Settings) -> None:
    if (source := source_of(record.topic)) is not None:  # MirrorMaker's own, not a city's
        if (found := copied(record.key, record.value, source)) is not None:
            heard.copied(source, *found)
        return
    city = record.topic.split(".")[1]
    try:
        envelope, payload = ev.decode(record.value or b"")
        if not isinstance(payload, ev.NodeHeartbeat):
            raise ev.ContractError(f"{envelope.type} is not a heartbeat")
        if envelope.city != city:
            raise ev.ContractError(f"envelope.city {envelope.city!r} on topic of {city!r}")
    except ev.ContractError as exc:
        log.warning("dead-lettering %s[%d]@%d: %s", record.topic, record.partition,
                    record.offset, exc)
        headers = deadletter_headers(kind="contract", reason=str(exc), group=GROUP, record=record)
        await producer.send_and_wait(deadletter_topic(settings.node), record.value,
                                     key=record.key,
                                     headers=[(k, v.encode()) for k, v in headers.items()])
        metrics.DEADLETTERS.labels(settings.node, GROUP, "contract").inc()
        return
    heard.beat(city, envelope.time.timestamp(), payload.log_end)
