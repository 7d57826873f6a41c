"""Rebuild all national figures from the Kafka log: what `bangkom replay` runs.

A rebuild starts a new generation in `meta` (its own consumer group, so it starts at the
earliest offsets) and drops the deltas, then runs the same ingest as the service until every
city topic is consumed up to the end offsets seen at the start. A running national service
notices the new generation, pauses while the rebuild runs and then loads its result, so the
two never write deltas side by side.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.evaluation.ingest import NationalIngest
from services.evaluation.store import DeltaStore
from shared.mongo import connect
from shared.settings import Settings
from shared.topics import city_of_topic

Progress = Callable[[int, int], None]  # (events consumed, events in the log)


async def log_extent(bootstrap: str) -> dict[TopicPartition, tuple[int, int]]:
    """(beginning, end) offsets of every partition of every city event topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(
            [name for name in await admin.list_topics() if city_of_topic(name)])
    finally:
        await admin.close()
    partitions = [TopicPartition(t["topic"], p["partition"])
                  for t in described for p in t["partitions"]]
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await probe.start()
    try:
        begins = await probe.beginning_offsets(partitions)
        ends = await probe.end_offsets(partitions)
    finally:
        await probe.stop()
    return {tp: (begins[tp], ends[tp]) for tp in partitions}


async def rebuild(settings: Settings, on_progress: Progress | None = None) -> int:
    """Drop the deltas and consume every city topic again; returns the events consumed."""
    client = connect(settings)
    store = DeltaStore(client[settings.database])
    try:
        generation = await store.begin_rebuild()
        extent = await log_extent(settings.kafka_bootstrap)
        total = sum(end - begin for begin, end in extent.values())
        # Insights stay with the running service: it publishes once it has loaded the result.
        ingest = NationalIngest(settings, store, publish_insights=False)
        await ingest.load(generation)

        def consumed() -> int:
            return sum(
                max(0, min(ingest.marks.get((tp.topic, tp.partition), -1) + 1, end) - begin)
                for tp, (begin, end) in extent.items()
            )

        async def finished(_consumer: AIOKafkaConsumer) -> bool:
            done = consumed()
            if on_progress is not None:
                on_progress(done, total)
            return done >= total

        await ingest.consume(finished)
        await ingest.close()
        await store.end_rebuild(generation)
        return consumed()
    finally:
        await client.close()
