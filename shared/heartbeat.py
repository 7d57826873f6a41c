"""A city service says it is alive, so the nation can tell a quiet city from one it cannot hear.

Every `heartbeat_seconds` each city service writes a `NodeHeartbeat` to `bangkom.<city>.heartbeat`
on its own broker; MirrorMaker carries it up with the events. The nation keeps the newest beat per
city (services.evaluation.heard): when nothing has come for `behind_seconds`, the city's broker,
its link or its services are down, and whichever it is, its national figures are not current.
A beat that cannot be sent is not retried: the next one says the same, newer.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared.events import KAFKA_HEADERS, Envelope, NodeHeartbeat
from shared.kafka import producer as kafka_producer
from shared.outage import Outage
from shared.settings import Settings
from shared.topics import HEARTBEAT, topic

log = logging.getLogger(__name__)


async def beat_forever(settings: Settings) -> None:
    name = topic(settings.node, HEARTBEAT)
    outage = Outage(f"heartbeat to {name}", log)
    producer: AIOKafkaProducer | None = None
    try:
        while True:
            try:
                if producer is None:
                    producer = kafka_producer(settings, client_id=f"bangkom-{settings.node}-"
                                                                  f"{settings.service}-heartbeat")
                    await asyncio.wait_for(producer.start(), settings.heartbeat_seconds * 2)
                beat = Envelope.wrap(NodeHeartbeat(service=settings.service),
                                     city=settings.node, service=settings.service)
                await asyncio.wait_for(producer.send_and_wait(
                    name, beat.to_bytes(), key=beat.subject.encode(), headers=KAFKA_HEADERS),
                    settings.heartbeat_seconds * 2)
                outage.succeeded()
            except (KafkaError, TimeoutError) as exc:
                outage.failed(str(exc) or type(exc).__name__)
                if producer is not None:
                    await _close(producer)
                    producer = None
            await asyncio.sleep(settings.heartbeat_seconds)
    finally:
        if producer is not None:
            await _close(producer)


async def _close(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5)
    except (KafkaError, TimeoutError):
        pass  # a producer that cannot reach its broker has nothing left worth flushing
