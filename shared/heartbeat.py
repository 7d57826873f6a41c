"""A city service says it is alive, so the nation can tell a quiet city from one it cannot hear.

Every `heartbeat_seconds` each city service writes a `NodeHeartbeat` to `bangkom.<city>.heartbeat`
on its own broker; MirrorMaker carries it up with the events. The nation keeps the newest beat per
city (services.evaluation.heard): when nothing has come for `behind_seconds`, the city's broker,
its link or its services are down, and whichever it is, its national figures are not current.
A beat that cannot be sent is not retried: the next one says the same, newer. Each beat also
says where the service's own stream ends on its broker, so that the nation, which knows what
MirrorMaker has copied, can count the records still waiting on the link.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from shared.events import KAFKA_HEADERS, Envelope, NodeHeartbeat
from shared.kafka import producer as kafka_producer
from shared.kafka_auth import client_kwargs
from shared.outage import Outage
from shared.settings import Settings
from shared.topics import HEARTBEAT, topic

log = logging.getLogger(__name__)


async def beat_forever(settings: Settings) -> None:
    name = topic(settings.node, HEARTBEAT)
    outage = Outage(f"heartbeat to {name}", log)
    producer: AIOKafkaProducer | None = None
    ends: AIOKafkaConsumer | None = None
    client_id = f"bangkom-{settings.node}-{settings.service}-heartbeat"
    try:
        while True:
            try:
                if producer is None:
                    producer = kafka_producer(settings, client_id=client_id)
                    await asyncio.wait_for(producer.start(), settings.heartbeat_seconds * 2)
                if ends is None:
                    ends = AIOKafkaConsumer(**client_kwargs(settings), group_id=None,
                                            client_id=client_id, enable_auto_commit=False)
                    await asyncio.wait_for(ends.start(), settings.heartbeat_seconds * 2)
                log_end = await _log_end(ends, topic(settings.node, settings.service),
                                         settings.heartbeat_seconds)
                beat = Envelope.wrap(NodeHeartbeat(service=settings.service, log_end=log_end),
                                     city=settings.node, service=settings.service)
                await asyncio.wait_for(producer.send_and_wait(
                    name, beat.to_bytes(), key=beat.subject.encode(), headers=KAFKA_HEADERS),
                    settings.heartbeat_seconds * 2)
                outage.succeeded()
            except (KafkaError, TimeoutError) as exc:
                outage.failed(str(exc) or type(exc).__name__)
                for client in (producer, ends):
                    if client is not None:
                        await _close(client)
                producer = ends = None
            await asyncio.sleep(settings.heartbeat_seconds)
    finally:
        for client in (producer, ends):
            if client is not None:
                await _close(client)


async def _log_end(consumer: AIOKafkaConsumer, name: str, within: float) -> dict[str, list[int]]:
    """{topic: [end offset of partition 0, 1, ...]} of the service's own stream; {} when its
    partitions cannot be read in time (the beat still says the service is up)."""
    try:
        parts = consumer.partitions_for_topic(name)
        if not parts:
            await asyncio.wait_for(consumer._client.force_metadata_update(), within)
            parts = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(parts)]
        if not tps:
            return {}
        ends = await asyncio.wait_for(consumer.end_offsets(tps), within)
        return {name: [ends[tp] for tp in tps]}
    except (KafkaError, TimeoutError):
        return {}


async def _close(client: AIOKafkaProducer | AIOKafkaConsumer) -> None:
    try:
        await asyncio.wait_for(client.stop(), 5)
    except (KafkaError, TimeoutError):
        pass  # a client that cannot reach its broker has nothing left worth flushing
