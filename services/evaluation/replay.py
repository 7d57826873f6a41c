"""Rebuild all national figures from the Kafka log: what `bangkom replay` runs.

A rebuild starts a new generation in `meta` (its own consumer group, so it starts at the
earliest offsets) and drops the deltas, then runs the same ingest as the service until every
city topic is consumed up to the end offsets seen at the start. A running national service
notices the new generation, pauses while the rebuild runs and then loads its result, so the
two never write deltas side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.evaluation.ingest import NationalIngest
from services.evaluation.store import DeltaStore
from shared.mongo import connect
from shared.settings import Settings

NO_TOPICS_AFTER = 60.0  # seconds without any city partition: nothing to replay
Progress = Callable[[int, int], None]  # (events consumed, events in the log)


async def log_extent(consumer: AIOKafkaConsumer) -> dict[TopicPartition, tuple[int, int]]:
    """(beginning, end) offsets of every partition assigned to `consumer` (all city topics)."""
    partitions = sorted(consumer.assignment())
    begins = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    return {tp: (begins[tp], ends[tp]) for tp in partitions}


async def rebuild(settings: Settings, on_progress: Progress | None = None) -> int:
    """Drop the deltas and consume every city topic again; returns the events consumed."""
    client = connect(settings)
    store = DeltaStore(client[settings.database])
    try:
        generation = await store.begin_rebuild()
        # Insights stay with the running service: it publishes once it has loaded the result.
        ingest = NationalIngest(settings, store, publish_insights=False)
        await ingest.load(generation)
        # The target: the end of every city topic when this consumer got its partitions
        # (its pattern subscription covers them all). Events written later count too.
        extent: dict[TopicPartition, tuple[int, int]] = {}
        began = time.monotonic()

        def consumed() -> int:
            return sum(
                max(0, min(ingest.marks.get((tp.topic, tp.partition), -1) + 1, end) - begin)
                for tp, (begin, end) in extent.items()
            )

        async def finished(consumer: AIOKafkaConsumer) -> bool:
            if not extent:
                if not consumer.assignment():
                    # still joining the group, or no city topic exists at all
                    return time.monotonic() - began > NO_TOPICS_AFTER
                extent.update(await log_extent(consumer))
            done, total = consumed(), sum(end - begin for begin, end in extent.values())
            if on_progress is not None:
                on_progress(done, total)
            return done >= total

        await ingest.consume(finished)
        await ingest.close()
        await store.end_rebuild(generation)
        return consumed()
    finally:
        await client.close()
