"""How far behind each MirrorMaker 2 link is, in records and in seconds.

MirrorMaker's source connector stores, per source partition, the offset of the last record it
copied, on the target cluster (shared.mirror_offsets). A link's lag is the source's end (last stable offset) minus that
offset plus one; its age is how long ago the oldest record not yet copied was written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka_auth import client_kwargs
from shared.mirror_offsets import copied as copied_record, offsets_topic
from shared.settings import Settings

BEHIND_SECONDS = 60.0  # a link whose oldest uncopied record is older than this is "behind"


@dataclass(frozen=True)
class Lag:
    records: int
    seconds: float  # age of the oldest record not yet copied; 0 when none is
    waiting: tuple[str, ...] = ()  # "topic:partition copied to N of M", where records wait

    @property
    def behind(self) -> bool:
        return self.seconds > BEHIND_SECONDS


async def _read_all(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> list:
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    records = []
    while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(batch)
    return records


def _consumer(kafka: Settings | str) -> AIOKafkaConsumer:
    """A group-less committed reader of a broker, as the operator when it is secured."""
    where = client_kwargs(kafka) if isinstance(kafka, Settings) else {"bootstrap_servers": kafka}
    return AIOKafkaConsumer(**where, isolation_level="read_committed", enable_auto_commit=False,
                            request_timeout_ms=5000)


async def copied_offsets(target: Settings | str, source_alias: str) -> dict[TopicPartition, int]:
    """The last source offset copied per source partition, as stored on the target."""
    name = offsets_topic(source_alias)
    consumer = _consumer(target)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(name) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(name) or set()
        offsets: dict[TopicPartition, int] = {}
        for record in await _read_all(consumer, [TopicPartition(name, p) for p in parts]):
            if (found := copied_record(record.key, record.value, source_alias)) is None:
                continue
            tp, offset = TopicPartition(*found[0]), found[1]
            if offset is None:
                offsets.pop(tp, None)
            else:
                offsets[tp] = offset
        return offsets
    finally:
        await consumer.stop()


async def link_lag(source: Settings | str, target: Settings | str, source_alias: str,
                   topics: list[str]) -> Lag:
    """The lag of the flow `source_alias` -> target for `topics`, summed over partitions."""
    copied = await copied_offsets(target, source_alias)
    consumer = _consumer(source)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        if not tps:
            return Lag(0, 0.0)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        records, oldest, waiting = 0, None, []
        for tp in tps:
            done = copied.get(tp, -1) + 1
            if ends[tp] <= done:
                continue
            waiting.append(f"{tp.topic}:{tp.partition} copied to {done} of {ends[tp]}")
            # A transactional source (none here) may end in markers: count by offsets, date by
            # the first record actually waiting.
            records += ends[tp] - done
            consumer.seek(tp, done)
            batch = await consumer.getmany(tp, timeout_ms=2000, max_records=1)
            for rec in batch.get(tp, []):
                stamp = rec.timestamp / 1000
                oldest = stamp if oldest is None else min(oldest, stamp)
        return Lag(records, round(time.time() - oldest, 1) if oldest else 0.0, tuple(waiting))
    finally:
        await consumer.stop()
