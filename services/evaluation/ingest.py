"""Consume every city's events in batches into `deltas`, effectively once, and keep the total.

Why aiokafka directly and not FastStream's subscriber (FastStream is aiokafka underneath): the
design needs what a per-message handler hides: whole batches per partition (one database write
per batch instead of per event), seeking each partition to the high-water mark stored in the
database when it is assigned, and committing offsets only after that write.

Effectively once without transactions: a batch of one partition becomes ONE delta document
whose id is `topic|partition|first_offset`; records at or below the partition's stored
high-water mark are skipped. A crash before the write loses nothing (Kafka redelivers), a crash
after it double-counts nothing (the redelivered records are at or below the mark). The Kafka
commit after the write only saves re-reading; the stored mark is the truth. Every
COMPACT_EVERY writes the stored deltas of busy partitions are merged (see the store), so a
restart reads a bounded number of documents however long the service has run.

A rebuild (`services.evaluation.replay`) runs this same ingest in worker processes, each on a
fixed share of the partitions.

Single active instance: the in-memory total is the sum of the deltas this process loaded and
wrote. A second instance in the same group would serve only its share of the partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError

from services.evaluation import insights, queries
from services.evaluation.figures import Figures
from services.evaluation.store import DeltaStore, Generation, Partition
from services.evaluation.triage import RejectedError, admit
from shared import metrics
from shared.events import KAFKA_HEADERS, Envelope
from shared.outage import Outage
from shared.kafka import REDELIVER_TO, deadletter_headers, producer as kafka_producer
from shared.kafka_admin import ensure_node_topics
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import CITY_EVENTS_PATTERN, NATIONAL_GROUP, deadletter_topic, topic

log = logging.getLogger(__name__)

# A batch (one delta document) gathers a partition's records over several polls, so a
# catch-up of a million events makes a few hundred writes, not thousands: every write has a
# fixed cost (a round trip and an SQLite commit in FerretDB). At the live edge a partition is
# written as soon as it is caught up, so freshness does not wait for a full batch.
MAX_RECORDS = 20_000  # per poll, over all partitions
BATCH_RECORDS = 20_000  # write a partition's batch when it holds this many records ...
BATCH_SECONDS = 30.0  # ... or is this old (during a catch-up), or the partition is caught up
LAG_EVERY = 10.0  # seconds between consumer-lag measurements
GENERATION_EVERY = 5.0  # seconds between looks for a `bangkom replay`
FRESHNESS_SAMPLE = 100  # events per batch whose freshness is observed
INSIGHTS_EVERY = 10.0  # at most one round of insights per this many seconds
COMPACT_EVERY = 5_000  # delta writes between compactions of the stored deltas


class NationalIngest:
    """The national consumer. `figures` is the running total the API serves."""

    def __init__(self, settings: Settings, store: DeltaStore, *, publish_insights: bool = True):
        self.settings = settings
        self.store = store
        self.publish_insights = publish_insights
        self.figures = Figures()
        self.marks: dict[Partition, int] = {}  # high-water mark per partition, from the database
        self.generation = Generation(0, False)
        self._database_outage = Outage("national database", log)
        self._kafka_outage = Outage("national consumer's Kafka", log)
        self.ready = asyncio.Event()  # set once the figures are loaded from the database
        self._producer: AIOKafkaProducer | None = None
        self._dirty_cities: set[str] = set()
        self._published: dict[str, object] = {}  # insight_id -> payload last sent
        self._last_insights = 0.0
        self._generation_checked = 0.0
        self._group = self.generation.group  # the consumer group of the current consume()
        self._insight_topics: set[str] = set()
        self._batches: dict[TopicPartition, _Batch] = {}  # read, reduced, not yet written
        self._insights_task: asyncio.Task | None = None
        self._compaction: asyncio.Task | None = None
        self._writes_since_compaction = 0
        self._commit_offsets = True

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Forever: load the current generation, consume until a replay starts a new one."""
        try:
            while True:
                try:
                    # While `bangkom replay` builds a newer generation, this one is still
                    # served and kept up to date; the swap at its end makes us reload.
                    generation = await self._retry(self.store.generation)
                    await self.load(generation)
                    await self.consume(self._replay_started)
                except KafkaError as exc:
                    # reloading from the deltas afterwards is always right: they are the truth
                    self._kafka_outage.failed(f"{exc}; consuming again in 5 s")
                    await asyncio.sleep(5)
                except Exception:  # a bug must not end the ingest for good
                    log.exception("national ingest failed; reloading the stored figures and "
                                  "consuming again in 5 s")
                    await asyncio.sleep(5)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def load(self, generation: Generation) -> None:
        self.figures, self.marks = await self._retry(lambda: self.store.load(generation.number))
        self.generation = generation
        self._dirty_cities = set(self.figures.cities)
        for city, stamp in self.figures.last_event.items():
            metrics.CITY_LAST_EVENT.labels(city).set(stamp)
        self.ready.set()
        log.info("national figures loaded: generation %d, %d partitions, %d events",
                 generation.number, len(self.marks), sum(self.figures.events.values()))

    async def resume(self, generation: Generation) -> None:
        """Take up `generation` where the stored marks are, without its figures (a rebuild
        worker writes deltas; the service that loads them afterwards does the adding up)."""
        self.marks = await self._retry(lambda: self.store.marks(generation.number))
        self.generation = generation

    async def _replay_started(self, _consumer: AIOKafkaConsumer) -> bool:
        now = time.monotonic()
        if now - self._generation_checked < GENERATION_EVERY:
            return False
        self._generation_checked = now
        current = await self._retry(self.store.generation)
        if current.number != self.generation.number:
            # the API keeps serving the old, consistent total until the new one is loaded
            log.warning("a replay built generation %d: loading it", current.number)
            return True
        return False

    async def _start_producer(self) -> None:
        if self._producer is None:
            producer = kafka_producer(self.settings, client_id="bangkom-national-evaluation")
            await producer.start()
            self._producer = producer

    # --- consuming ------------------------------------------------------------------------

    async def consume(self, done: Callable[[AIOKafkaConsumer], Awaitable[bool]],
                      partitions: list[TopicPartition] | None = None) -> None:
        """Consume batches until `done(consumer)` says so (checked after every poll).

        By default every city partition, through the pattern subscription of the generation's
        consumer group. With `partitions`, exactly those (a rebuild worker's share): no group,
        so no rebalance can move a partition while a batch of it is being written.
        """
        await self._start_producer()
        group = self.generation.group
        if self.settings.mongo_db:
            # another figures store (a test, an audit copy) is another reader of the log
            group = f"{group}.{self.settings.mongo_db}"
        self._group = group
        self._commit_offsets = partitions is None  # without a group there is nothing to commit
        consumer = national_consumer(self.settings, group if partitions is None else None)
        if partitions is None:
            consumer.subscribe(pattern=CITY_EVENTS_PATTERN,
                               listener=_ResumeFromMarks(self, consumer))
            await consumer.start()
        else:
            await consumer.start()
            consumer.assign(partitions)
            await _seek_to_marks(consumer, self.marks, partitions)
        self._kafka_outage.succeeded()
        last_lag = 0.0
        try:
            while not await done(consumer):
                polled = await consumer.getmany(timeout_ms=200, max_records=MAX_RECORDS)
                for tp, records in polled.items():
                    await self._reduce(tp, records)
                await self._write_due(consumer)
                now = time.monotonic()
                if now - last_lag >= LAG_EVERY:
                    last_lag = now
                    await self._measure_lag(consumer, group)
                if (self.publish_insights and now - self._last_insights >= INSIGHTS_EVERY
                        and (self._insights_task is None or self._insights_task.done())):
                    # Beside the loop, not in it: a round over every city after a restart takes
                    # seconds, and ingest (and the API) must not wait for it.
                    self._last_insights = now
                    self._insights_task = asyncio.create_task(self._publish_insights(consumer))
                if (self._writes_since_compaction >= COMPACT_EVERY
                        and (self._compaction is None or self._compaction.done())):
                    self._writes_since_compaction = 0
                    self._compaction = asyncio.create_task(self._compact())
        finally:
            for task in (self._insights_task, self._compaction):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self._batches.clear()  # unwritten: Kafka redelivers them from the stored marks
            await _stop(consumer)

    async def _reduce(self, tp: TopicPartition, records: list) -> None:
        """Add one poll's records of a partition to its batch (in memory, not yet counted)."""
        batch = self._batches.get(tp)
        done = batch.last if batch else self.marks.get((tp.topic, tp.partition), -1)
        fresh = [r for r in records if r.offset > done]  # at or below the mark: counted already
        if not fresh:
            return
        if batch is None:
            batch = self._batches[tp] = _Batch(first=fresh[0].offset, since=time.monotonic())
        for record in fresh:
            if _redelivered_elsewhere(record.headers):
                batch.outcomes["ignored"] += 1
                continue
            try:
                envelope, payload = admit(record.topic, record.value)
            except RejectedError as rejection:
                await self._deadletter(record, rejection)
                batch.outcomes["deadletter"] += 1
                continue
            applied = batch.delta.apply(envelope, payload)
            batch.outcomes["applied" if applied else "ignored"] += 1
            if applied:
                batch.times.append(envelope.time)
        batch.last = fresh[-1].offset
        batch.records += len(fresh)

    async def _write_due(self, consumer: AIOKafkaConsumer) -> None:
        """Write the batches that are full, old or caught up; then commit their offsets."""
        now = time.monotonic()
        commits = {}
        # One write at a time: FerretDB's SQLite has a single writer, and concurrent writes
        # fail with SQLITE_BUSY (measured: a retry storm, many times slower).
        for tp, batch in list(self._batches.items()):
            if (batch.records < BATCH_RECORDS and now - batch.since < BATCH_SECONDS
                    and not await _at_end(consumer, tp)):
                continue
            await self._write(tp, batch)
            # A rebalance during the write (the broker went away, the group was rejoined) may
            # have revoked the partition and dropped its batch already: the batch is stored and
            # the mark moved, so a reassigned partition resumes after it and counts nothing twice.
            self._batches.pop(tp, None)
            if tp in consumer.assignment():
                commits[tp] = batch.last + 1
        if commits and self._commit_offsets:
            try:
                await consumer.commit(commits)
            except KafkaError as exc:  # only an optimisation: the marks are the truth
                log.info("offset commit skipped: %s", exc)

    async def _write(self, tp: TopicPartition, batch: _Batch) -> None:
        """One delta document; only once it is stored does the batch count and the mark move."""
        await self._retry(lambda: self.store.write(
            generation=self.generation.number, topic=tp.topic, partition=tp.partition,
            first=batch.first, last=batch.last, records=batch.records, delta=batch.delta,
        ))
        self.figures.merge(batch.delta)
        self.marks[(tp.topic, tp.partition)] = batch.last
        self._writes_since_compaction += 1
        self._dirty_cities.update(batch.delta.cities)
        self._observe(batch.outcomes, batch.times, batch.delta)

    def _observe(self, outcomes: Counter[str], times: list[dt.datetime], delta: Figures) -> None:
        node, group = self.settings.node, self._group
        for outcome, count in outcomes.items():
            metrics.EVENTS_CONSUMED.labels(node, group, outcome).inc(count)
        stored = dt.datetime.now(dt.UTC)
        freshness = metrics.FRESHNESS.labels(node, group)
        # Live batches are small and every event is observed; a catch-up batch of thousands is
        # sampled evenly (at most FRESHNESS_SAMPLE): one observe per event cost 8% of a replay.
        for when in times[::max(1, len(times) // FRESHNESS_SAMPLE)]:
            freshness.observe(max((stored - when).total_seconds(), 0.0))
        for city in delta.cities:
            metrics.CITY_LAST_EVENT.labels(city).set(self.figures.last_event[city])

    async def _compact(self) -> None:
        """Beside the loop: merge the stored deltas of busy partitions (the total is unchanged,
        only what a restart has to read shrinks)."""
        try:
            merged = await self.store.compact(self.generation.number)
            log.info("compacted %d stored deltas", merged)
        except PyMongoError as exc:  # the deltas are intact; the next round tries again
            log.warning("compaction failed: %s", exc)
            self._writes_since_compaction = COMPACT_EVERY

    async def _deadletter(self, record, rejection: RejectedError) -> None:
        headers = [(name, value.encode()) for name, value in deadletter_headers(
            kind=rejection.reason, reason=rejection.detail, group=self._group, record=record,
        ).items()]
        log.warning("dead-lettering %s[%d]@%d: %s", record.topic, record.partition,
                    record.offset, rejection)
        attempt = 0
        while True:  # same cluster as the source: wait for it rather than drop the record
            try:
                await self._producer.send_and_wait(
                    deadletter_topic(self.settings.node), record.value, key=record.key,
                    headers=headers,
                )
                break
            except KafkaError as exc:
                attempt += 1
                log.error("dead-letter publish failed (%s); retrying", exc)
                await asyncio.sleep(min(0.5 * 2**attempt, 30.0))
        metrics.DEADLETTERS.labels(self.settings.node, self._group, rejection.reason).inc()

    async def _measure_lag(self, consumer: AIOKafkaConsumer, group: str) -> None:
        assigned = list(consumer.assignment())
        if not assigned:
            return
        try:
            ends = await consumer.end_offsets(assigned)
        except KafkaError as exc:
            log.info("consumer lag not measured: %s", exc)
            return
        for tp, end in ends.items():
            # what is read but not yet stored counts as lag too: the marks are the truth
            batch = self._batches.get(tp)
            lag = max(end - await consumer.position(tp), 0) + (batch.records if batch else 0)
            metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)

    # --- insights back to the cities --------------------------------------------------------

    async def _caught_up(self, consumer: AIOKafkaConsumer) -> bool:
        """Every assigned partition read to its end and stored."""
        for tp in consumer.assignment():
            if tp in self._batches or not await _at_end(consumer, tp):
                return False
        return True

    async def _publish_insights(self, consumer: AIOKafkaConsumer) -> None:
        if not self._dirty_cities or not await self._caught_up(consumer):
            return  # during a catch-up the figures are partial: say nothing yet
        cities, self._dirty_cities = self._dirty_cities, set()
        try:
            for city in sorted(cities):
                # One city's findings are computed with no await inside, so they read figures
                # no batch is being merged into; between cities the consume loop goes on.
                await asyncio.sleep(0)
                year = queries.latest_year(self.figures, city)
                if year is None:
                    continue
                for payload in insights.findings(self.figures, city, year):
                    if self._published.get(payload.insight_id) == payload:
                        continue
                    if await self._send_insight(city, payload):
                        self._published[payload.insight_id] = payload
        except asyncio.CancelledError:
            self._dirty_cities |= cities  # said again in the next round, when consuming again
            raise
        except Exception:
            log.exception("insights round failed; the next round tries again")
            self._dirty_cities |= cities

    async def _send_insight(self, city: str, payload) -> bool:
        name = topic(city, payload.STREAM)
        envelope = Envelope(
            source="/bangkom/national/evaluation", type=payload.TYPE,
            time=dt.datetime.now(dt.UTC), subject=payload.subject(), city=city,
            data=payload.model_dump(mode="json"),
        )
        try:
            if name not in self._insight_topics:
                await ensure_node_topics(self.settings, [name])
                self._insight_topics.add(name)
            await self._producer.send_and_wait(name, envelope.to_bytes(), headers=KAFKA_HEADERS,
                                               key=envelope.subject.encode())
        except KafkaError as exc:
            log.warning("insight %s not sent (%s); next round retries", payload.insight_id, exc)
            self._dirty_cities.add(city)
            return False
        metrics.EVENTS_PUBLISHED.labels(self.settings.node, "evaluation", payload.TYPE).inc()
        return True

    # --- helpers ----------------------------------------------------------------------------

    async def _retry(self, operation: Callable[[], Awaitable]):
        """Database calls wait out an outage: nothing consumed may be lost or skipped."""
        attempt = 0
        while True:
            try:
                found = await operation()
                self._database_outage.succeeded()
                return found
            except PyMongoError as exc:
                attempt += 1
                self._database_outage.failed(exc)
                await asyncio.sleep(min(0.05 * 2**attempt, 10.0))


@dataclass
class _Batch:
    """A partition's records since its last write, reduced to one delta."""

    first: int
    since: float  # monotonic time of its first record
    last: int = -1
    records: int = 0
    delta: Figures = field(default_factory=Figures)
    outcomes: Counter[str] = field(default_factory=Counter)
    times: list[dt.datetime] = field(default_factory=list)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """consumer.stop(), minus an aiokafka 0.14 race: a consumer without a group, stopped just
    after its start (a restarted rebuild worker with little left to read), cancels and awaits a
    coordinator task that never ran, whose CancelledError then escapes stop() although nobody
    cancelled us; the worker died of it and was counted as a crash."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


def _redelivered_elsewhere(headers) -> bool:
    """A dead letter republished for a city's consumer group: counted here the first time."""
    for name, value in headers or ():
        if name == REDELIVER_TO:
            # any generation of the national group: `.rN` changes with every replay
            return not value.decode(errors="replace").startswith(NATIONAL_GROUP)
    return False


def national_consumer(settings: Settings, group: str | None) -> AIOKafkaConsumer:
    """The national reader of the city topics: read_committed, since the link from a city
    writes them in transactions (exactly once) and an aborted batch must never be counted.
    Group `None`: assigned partitions (a rebuild worker). No auto-commit: the stored marks
    say what has been counted."""
    return AIOKafkaConsumer(
        **client_kwargs(settings), group_id=group, client_id="bangkom-national-evaluation",
        enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_committed",
        metadata_max_age_ms=5000,  # a new city's topics are picked up within seconds
    )


async def _at_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
    """Whether the consumer has read all that `tp` holds now. By position, not by the last
    record's offset: on a transactional topic the log ends in a commit marker, an offset that
    is never delivered as a record. The end is the last stable offset (read_committed)."""
    end = consumer.last_stable_offset(tp)
    if end is None:
        end = consumer.highwater(tp)
    return end is not None and await consumer.position(tp) >= end


class _ResumeFromMarks(ConsumerRebalanceListener):
    """On assignment, start each partition right after its stored mark."""

    def __init__(self, ingest: NationalIngest, consumer: AIOKafkaConsumer) -> None:
        self.ingest = ingest
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:
        for tp in revoked:  # unwritten: whoever gets the partition reads them again
            self.ingest._batches.pop(tp, None)

    async def on_partitions_assigned(self, assigned) -> None:
        await _seek_to_marks(self.consumer, self.ingest.marks, assigned)


async def _seek_to_marks(consumer: AIOKafkaConsumer, marks: dict[Partition, int], tps) -> None:
    """Start each partition right after its stored mark, or at the beginning if it has none
    (the database has counted nothing of it, whatever Kafka thinks was committed)."""
    for tp in tps:
        mark = marks.get((tp.topic, tp.partition))
        if mark is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, mark + 1)
