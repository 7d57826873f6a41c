"""Rebuild all national figures from the Kafka log: what `bangkom replay` runs.

A rebuild first checks, reading only, that the log holds everything: the broker answers, every
partition the figures count is there and starts at offset 0 (`preflight`); it refuses
otherwise. Then it starts building a new generation beside the served one (`meta.building`),
reads every city partition from its beginning up to its end offset at the start, and swaps the
generations at the end. A running national service serves and counts the old generation
meanwhile and loads the new one after the swap; a rebuild that fails half-way changes nothing
it serves.

The reading is shared between worker processes, one per core by default: a catch-up is CPU
work (JSON, validation, sums) and one Python process uses one core. Each worker is given a
fixed share of the partitions (balanced by record count; no consumer group, so no rebalance
moves a partition mid-batch) and runs the service's own ingest on it, writing its deltas with
the same marks. A worker that dies is started again and resumes from the marks it stored:
nothing is lost and nothing counted twice, as in the service.

    python -m services.evaluation.replay < share.json     # one worker (rebuild starts them)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError

from services.evaluation.ingest import NationalIngest, national_consumer
from services.evaluation.store import DeltaStore, Generation
from shared.mongo import connect
from shared.process import die_with_parent
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import CITY_EVENTS_PATTERN

log = logging.getLogger(__name__)

WORKER_SETTINGS = {"node", "service", "kafka_bootstrap", "mongo_url", "mongo_db", "fault"}
RESTARTS = 3  # per worker: a worker that keeps dying points at something a restart won't fix
Progress = Callable[[int, int], None]  # (events consumed, events in the log)
Extent = dict[TopicPartition, tuple[int, int]]  # partition -> (beginning, end) offsets


@dataclass(frozen=True)
class Rebuilt:
    events: int
    workers: int
    restarts: int  # workers started again after dying
    peak_rss_mib: float  # the workers' peaks added up: an upper bound of what they held at once


class ReplayRefused(RuntimeError):
    """A check before the rebuild failed; the national database was not touched."""


PREFLIGHT_SECONDS = 8.0


async def preflight(settings: Settings, store: DeltaStore) -> Extent:
    """The log as it is now, once it is known to hold everything the figures count: the broker
    answers, every partition the stored figures count is there, and every partition starts at
    offset 0 (events are kept for ever: a later start means records were deleted). Raises
    ReplayRefused naming what is wrong; reads only."""
    try:
        extent = await asyncio.wait_for(log_extent(settings), PREFLIGHT_SECONDS)
    except (TimeoutError, KafkaError, OSError) as exc:
        raise ReplayRefused(f"Kafka at {settings.kafka_bootstrap} cannot be reached "
                            f"({type(exc).__name__}: {exc or 'no answer'})") from None
    try:
        generation = await asyncio.wait_for(store.generation(), PREFLIGHT_SECONDS)
        counted = await store.marks(generation.number)
    except (TimeoutError, PyMongoError) as exc:
        raise ReplayRefused(f"the national database at {settings.mongo_url} cannot be reached "
                            f"({type(exc).__name__})") from None
    present = {(tp.topic, tp.partition) for tp in extent}
    for (name, partition), mark in sorted(counted.items()):
        if (name, partition) not in present:
            raise ReplayRefused(f"topic {name} partition {partition} is not in Kafka, but the "
                                f"national figures count {mark + 1} of its records")
    for tp, (begin, _) in extent.items():
        if begin > 0:
            raise ReplayRefused(
                f"topic {tp.topic} partition {tp.partition} starts at offset {begin}, not 0: "
                f"its first {begin} records were deleted from the log, and a replay would "
                "leave them out of the national figures")
    return extent


async def rebuild(settings: Settings, on_progress: Progress | None = None,
                  workers: int | None = None, extent: Extent | None = None) -> Rebuilt:
    """Check the log (`preflight`, unless `extent` comes from one), then drop the deltas and
    consume every city partition again, in `workers` processes."""
    client = connect(settings)
    store = DeltaStore(client[settings.database])
    try:
        if extent is None:
            extent = await preflight(settings, store)
        generation = await store.begin_rebuild()
        # Insights stay with the running service: it publishes once it has loaded the result.
        shares = share_out(extent, workers or os.cpu_count() or 1)
        total = sum(end - begin for begin, end in extent.values())
        done = [0] * len(shares)
        restarts: list[int] = []
        if on_progress is not None:
            on_progress(0, total)

        def report(worker: int, consumed: int) -> None:
            done[worker] = consumed
            if on_progress is not None:
                on_progress(sum(done), total)

        # a task group: when one worker gives up, the others are stopped, not left running
        async with asyncio.TaskGroup() as group:
            runs = [group.create_task(_run_worker(settings, generation, share,
                                                  lambda n, i=i: report(i, n), restarts))
                    for i, share in enumerate(shares)]
        await store.end_rebuild(generation)
        return Rebuilt(events=sum(done), workers=len(shares), restarts=len(restarts),
                       peak_rss_mib=round(sum(run.result() for run in runs), 1))
    finally:
        await client.close()


async def log_extent(kafka: Settings | str) -> Extent:
    """(beginning, end) offsets of every partition of every city topic, as of now."""
    settings = kafka if isinstance(kafka, Settings) else Settings(kafka_bootstrap=kafka)
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        names = sorted(n for n in await admin.list_topics() if re.match(CITY_EVENTS_PATTERN, n))
        described = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    partitions = [TopicPartition(t["topic"], p["partition"])
                  for t in described for p in t["partitions"]]
    if not partitions:
        return {}
    # The national reader's settings (read_committed): the ends are then the last stable
    # offsets, where the workers' consumers can get to even while a link's transaction is open.
    consumer = national_consumer(settings, None)
    await consumer.start()
    try:
        # assigned first, so the offsets below need no metadata round per topic (10 s for 100)
        consumer.assign(partitions)
        begins = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp: (begins[tp], ends[tp]) for tp in sorted(partitions)}


def share_out(extent: Extent, workers: int) -> list[Extent]:
    """Split the partitions into at most `workers` shares of about equal record counts
    (largest first, each to the lightest share); empty partitions need no reading."""
    shares: list[Extent] = [{} for _ in range(workers)]
    loads = [0] * workers
    for tp, (begin, end) in sorted(extent.items(), key=lambda kv: kv[1][0] - kv[1][1]):
        if end <= begin:
            continue
        lightest = loads.index(min(loads))
        shares[lightest][tp] = (begin, end)
        loads[lightest] += end - begin
    return [share for share in shares if share]


async def _run_worker(settings: Settings, generation: Generation, share: Extent,
                      report: Callable[[int], None], restarts: list[int]) -> float:
    """Run one worker until its share is done, starting it again if it dies; its peak MiB."""
    spec = json.dumps(worker_spec(settings, generation, share)).encode()
    for attempt in range(RESTARTS + 1):
        # The share goes through stdin, not argv: a database URL may carry a password.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.evaluation.replay", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, preexec_fn=die_with_parent,
        )
        proc.stdin.write(spec)
        proc.stdin.close()
        peak = 0.0
        try:
            async for line in proc.stdout:
                message = json.loads(line)
                report(message["consumed"])
                peak = message.get("peak_rss_mib", peak)
            code = await proc.wait()
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if code == 0:
            return peak
        log.warning("rebuild worker exited with %s; starting it again (%d of %d)",
                    code, attempt + 1, RESTARTS)
        restarts.append(code)
    raise RuntimeError(f"a rebuild worker died {RESTARTS + 1} times; see its log above")


def worker_spec(settings: Settings, generation: Generation, share: Extent) -> dict:
    return {
        "settings": settings.model_dump(mode="json", include=WORKER_SETTINGS),
        "generation": generation.number,
        "share": [[tp.topic, tp.partition, begin, end] for tp, (begin, end) in share.items()],
    }


async def work(spec: dict) -> None:
    """One worker: the service's ingest on a fixed share, from the marks already stored."""
    settings = Settings.model_validate(spec["settings"])
    share = {TopicPartition(t, p): (begin, end) for t, p, begin, end in spec["share"]}
    client = connect(settings)
    store = DeltaStore(client[settings.database])
    ingest = NationalIngest(settings, store, publish_insights=False)
    await ingest.resume(Generation(spec["generation"], True))

    def consumed() -> int:
        return sum(max(0, min(ingest.marks.get((tp.topic, tp.partition), -1) + 1, end) - begin)
                   for tp, (begin, end) in share.items())

    said = -1

    async def finished(consumer: AIOKafkaConsumer) -> bool:
        nonlocal said
        if (now := consumed()) != said:  # a line per stored batch: the parent's progress bar
            said = now
            print(json.dumps({"consumed": now}), flush=True)
        if ingest._batches:  # read but not yet stored
            return False
        # By position: a transactional partition ends in a commit marker, an offset no record
        # has, so the stored marks stop short of `end` there.
        for tp, (_, end) in share.items():
            if await consumer.position(tp) < end:
                return False
        return True

    try:
        await ingest.consume(finished, partitions=list(share))
        await ingest.close()
    finally:
        await client.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    total = sum(end - begin for begin, end in share.values())  # all of it: it is done
    print(json.dumps({"consumed": total, "peak_rss_mib": round(peak, 1)}), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(work(json.loads(sys.stdin.buffer.read())))
