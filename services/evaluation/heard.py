"""When the nation last heard from each city, and which cities are behind.

The cities' heartbeats (shared.heartbeat) arrive on the mirrored `bangkom.<city>.heartbeat`
topics. They are read with no consumer group, from the start of the compacted topics, and kept
in memory only: after a restart the topics say again what was last heard. A city is behind when
no beat has come for `behind_seconds`, whatever the cause (its broker, its link, its services):
its figures here are then what it sent until `last_heard`. A city's clock stamps the beat; nodes
keep NTP time, and `behind_seconds` is minutes, not seconds.
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

    def beat(self, city: str, stamp: float) -> None:
        if city not in self.last:
            metrics.LINK_LAG.labels(city, NATIONAL).set_function(lambda: self.lag(city))
        if stamp > self.last.get(city, 0.0):
            self.last[city] = stamp

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
            consumer.subscribe(pattern=HEARTBEAT_PATTERN)
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
    heard.beat(city, envelope.time.timestamp())
