"""Transactional outbox without multi-document transactions.

FerretDB (and a MongoDB without a replica set) cannot commit two documents atomically, so the
events of a change live *inside* the changed document, in `_outbox`: the state change and its
events are one single-document write, which every MongoDB-compatible server makes atomic.
The relay then publishes pending events with an idempotent producer (acks=all) and removes
them from the document. A crash between the write and the publish leaves the events in the
document, so they are published after restart; a crash between the publish and the removal
would publish them twice, so at start the relay reads the tail of its topics and drops events
whose id is already there (it is the only producer of those topics).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared import metrics
from shared.outage import Outage
from shared.events import EVENT_TYPES, KAFKA_HEADERS, Envelope
from shared.kafka import producer as kafka_producer
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import topic

log = logging.getLogger(__name__)

OUTBOX = "_outbox"
VERSION = "_v"
PENDING = "_pending"  # indexed flag: the relay's scan for pending documents after a restart
PAGE = 100  # documents published per round; bounds how many events can be in doubt at a crash
TAIL = 2000  # records per partition read back at start; must exceed PAGE x events per document
# Between scans the relay is told which documents were written (see Relay). A scan also runs
# this often, so no event can wait on a hint that was never given.
RESCAN_SECONDS = 300.0
CONCURRENT = 8  # documents read or cleaned at once by a round (each one round trip)
REMEMBERED = 20_000  # ids of acknowledged events kept to skip them if read again

_relays: set[Relay] = set()

# FerretDB v1 (SQLite backend) evaluates an update's filter and writes its result in two steps
# (upstream issue #3040): two concurrent `_v`-guarded updates of one document can both report
# success, and one of them is lost. So every conditional write of an outboxed document in this
# process takes one lock per document. That is exact because a node runs one process per
# service (documented in the README); on MongoDB the lock is merely redundant.
_locks: weakref.WeakValueDictionary[tuple[str, Any], asyncio.Lock] = weakref.WeakValueDictionary()


def _lock(coll: AsyncCollection, doc_id: Any) -> asyncio.Lock:
    key = (coll.full_name, doc_id)
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    return lock


def _entry(envelope: Envelope) -> dict[str, Any]:
    return {
        "id": str(envelope.id),
        "topic": topic(envelope.city, EVENT_TYPES[envelope.type].STREAM),
        "key": envelope.subject,
        "type": envelope.type,
        "time": envelope.time,
        # Stored serialized: the bytes published are exactly the bytes written with the change.
        "value": envelope.to_bytes().decode(),
    }


def _notify(coll: AsyncCollection, doc_id: Any) -> None:
    for relay in _relays:
        relay.hint(coll.full_name, doc_id)


async def insert(coll: AsyncCollection, doc: dict[str, Any], events: Sequence[Envelope]) -> None:
    """Insert a new document and its events in one write. DuplicateKeyError propagates."""
    try:
        await coll.insert_one(
            {**doc, VERSION: 1, OUTBOX: [_entry(e) for e in events], PENDING: bool(events)}
        )
    finally:  # also when the reply is lost: the write may have landed
        if events:
            _notify(coll, doc["_id"])


async def insert_many(coll: AsyncCollection, docs: Sequence[tuple[dict[str, Any], Sequence[Envelope]]]) -> set[Any]:
    """Insert new documents, each with its events in its own single-document write (one round
    trip for all of them); returns the `_id`s that already existed, which wrote nothing."""
    try:
        await coll.insert_many(
            [{**doc, VERSION: 1, OUTBOX: [_entry(e) for e in events], PENDING: bool(events)}
             for doc, events in docs], ordered=False)
        return set()
    except BulkWriteError as error:
        failed = error.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in failed):
            raise
        return {docs[e["index"]][0]["_id"] for e in failed}
    finally:  # also when the reply is lost: the writes may have landed
        for doc, events in docs:
            if events:
                _notify(coll, doc["_id"])


async def update(
    coll: AsyncCollection,
    doc_id: Any,
    expected_version: int,
    changes: dict[str, Any],
    events: Sequence[Envelope],
) -> bool:
    """Apply `changes` and stage `events` if the document is still at `expected_version`.

    Returns False when someone else changed it first: reload, decide again, retry.
    """
    update: dict[str, Any] = {"$set": dict(changes), "$inc": {VERSION: 1}}
    if events:
        update["$set"][PENDING] = True
        update["$push"] = {OUTBOX: {"$each": [_entry(e) for e in events]}}
    try:
        async with _lock(coll, doc_id):
            result = await coll.update_one({"_id": doc_id, VERSION: expected_version}, update)
    finally:  # also when the reply is lost: the write may have landed
        if events:
            _notify(coll, doc_id)
    return bool(result.matched_count)


def clean(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """A loaded document without the outbox bookkeeping."""
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in (OUTBOX, PENDING)}


async def ensure_indexes(db: AsyncDatabase, collections: Iterable[str]) -> None:
    for name in collections:
        await db[name].create_index(PENDING)


class Relay:
    """Publishes the events staged in `collections` of `db`.

    Which documents hold events: after a start, an error or RESCAN_SECONDS, a scan for the
    `_pending` flag; in between, the ids that `insert` and `update` of this process hand over
    (`hint`), each read by `_id`. Why not scan every round: FerretDB v1 (SQLite) uses no index
    but `_id`'s and converts every document of the collection to answer the scan, so a round
    cost grew with the city's whole staff register and roster history, on every write. Hints
    are only a shortcut: the events are in the documents, and a scan finds what a hint missed.
    """

    def __init__(
        self,
        db: AsyncDatabase,
        collections: Sequence[str],
        settings: Settings,
        service: str,
        *,
        dedupe_topics: Sequence[str] = (),
    ):
        self.db = db
        self.collections = list(collections)
        self.settings = settings
        self.service = service
        self.dedupe_topics = list(dedupe_topics)
        self._outage = Outage(f"outbox relay of {service}", log)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._gauges: asyncio.Task | None = None
        self._producer: AIOKafkaProducer | None = None
        # Ids of events already in the log: the topic tail read at connect, then every event
        # this relay has had acknowledged (the newest REMEMBERED), so an entry whose removal
        # from its document did not land is not published again when it is read again.
        self._already_published: dict[str, None] = {}
        self._hints: dict[str, set[Any]] = {name: set() for name in self.collections}
        self._scanned = float("-inf")  # monotonic time of the last scan; none yet

    def hint(self, full_name: str, doc_id: Any) -> None:
        """`doc_id` of collection `full_name` (db.coll) may hold events to publish."""
        db, _, name = full_name.partition(".")
        if db == self.db.name and name in self._hints:
            self._hints[name].add(doc_id)
            self._wake.set()

    async def start(self) -> None:
        self._outage = Outage(f"outbox relay of {self.service}", log)
        _relays.add(self)
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.service}")
        self._gauges = asyncio.create_task(self._measure_forever(),
                                           name=f"outbox-gauges-{self.service}")

    async def stop(self) -> None:
        _relays.discard(self)
        for task in (self._task, self._gauges):
            if task:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if self._producer:
            await self._producer.stop()

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            self._wake.clear()  # before the round: a hint given during it wakes the next one
            try:
                if self.settings.fault == "relay-paused":  # tests: events pile up, gauges go on
                    await asyncio.sleep(self.settings.outbox_poll_seconds)
                    continue
                if self._producer is None:
                    self._producer = await self._connect()
                published = await self.publish_pending()
                self._outage.succeeded()
                backoff = 0.5
                if published:
                    continue  # more may be waiting: drain before sleeping
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker or database down: keep them, retry
                self._outage.failed(f"{type(exc).__name__}: {exc}")
                # Part of the failed page may be in the log already: start over as after a
                # crash, re-reading the topic tail so nothing is published twice.
                self._scanned = float("-inf")  # and look at every pending document again
                if self._producer is not None:
                    producer, self._producer = self._producer, None
                    try:
                        await producer.stop()
                    except Exception:  # noqa: BLE001 - it is replaced anyway
                        pass
                metrics.OUTBOX_RELAY_ERRORS.labels(self.settings.node, self.service).inc()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.outbox_poll_seconds * 5)
            except TimeoutError:
                pass

    async def _connect(self) -> AIOKafkaProducer:
        producer = kafka_producer(self.settings, linger_ms=2)
        await producer.start()
        try:
            self._already_published = dict.fromkeys(
                await _read_tail_ids(self.settings, self.dedupe_topics))
        except Exception:
            await producer.stop()
            raise
        return producer

    async def publish_pending(self) -> int:
        """One round over every collection; returns how many events it published."""
        published = 0
        scan = time.monotonic() - self._scanned >= RESCAN_SECONDS
        scan_done = scan
        for name in self.collections:
            coll = self.db[name]
            docs = await (self._scan(coll) if scan else self._hinted(coll))
            scan_done = scan_done and len(docs) < PAGE  # a full page: scan again for the rest
            sends, sent = [], []
            for doc in docs:
                for entry in doc.get(OUTBOX, []):
                    if entry["id"] in self._already_published:
                        continue
                    self._fault("relay-before-publish")
                    sent.append(entry["id"])
                    sends.append(await self._producer.send(
                        entry["topic"],
                        value=entry["value"].encode(),
                        key=entry["key"].encode(),
                        headers=KAFKA_HEADERS,
                    ))
                    metrics.EVENTS_PUBLISHED.labels(self.settings.node, self.service, entry["type"]).inc()
                    log.info("event sent to %s", entry["topic"], extra={
                        "event_id": entry["id"], "type": entry["type"], "subject": entry["key"],
                        "topic": entry["topic"],
                        "city": entry["topic"].split(".")[1]})  # bangkom.<city>.<stream>
            await asyncio.gather(*sends)  # every send acknowledged by all in-sync replicas
            for event_id in sent:
                self._already_published[event_id] = None
            while len(self._already_published) > REMEMBERED:
                del self._already_published[next(iter(self._already_published))]
            if sends:
                self._fault("relay-after-publish")
            gate = asyncio.Semaphore(CONCURRENT)

            async def remove(doc: dict[str, Any], coll=coll, gate=gate) -> int:
                async with gate:
                    return await self._remove_published(coll, doc)

            published += sum(await asyncio.gather(*(remove(doc) for doc in docs)))
        if scan_done:
            self._scanned = time.monotonic()
        return published

    async def measure_backlog(self) -> tuple[int, float]:
        """Every pending event of the service and the age of the oldest, whatever the relay's
        page: its own rounds see at most PAGE documents, so they cannot tell (they once set
        these gauges and read 0 while 5,000 events waited)."""
        backlog, oldest = 0, None
        for name in self.collections:
            # The `_pending` index makes this cost what is pending, not the whole collection.
            async for doc in self.db[name].find({PENDING: True}, {f"{OUTBOX}.time": 1}):
                for entry in doc.get(OUTBOX, []):
                    backlog += 1
                    oldest = min(oldest, entry["time"]) if oldest else entry["time"]
        age = (dt.datetime.now(dt.UTC) - oldest).total_seconds() if oldest else 0.0
        metrics.OUTBOX_BACKLOG.labels(self.settings.node, self.service).set(backlog)
        metrics.OUTBOX_OLDEST_AGE.labels(self.settings.node, self.service).set(age)
        return backlog, age

    async def _measure_forever(self) -> None:
        while True:
            try:
                await self.measure_backlog()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database down: the counter tells, retry
                log.warning("outbox backlog not measured: %s", exc)
            await asyncio.sleep(self.settings.outbox_gauge_seconds)

    async def _scan(self, coll: AsyncCollection) -> list[dict[str, Any]]:
        self._hints[coll.name].clear()  # the scan sees what they point at, and more
        cursor = coll.find({PENDING: True}, {OUTBOX: 1, VERSION: 1}).limit(PAGE)
        return [doc async for doc in cursor]

    async def _hinted(self, coll: AsyncCollection) -> list[dict[str, Any]]:
        hints = self._hints[coll.name]
        docs: dict[Any, dict[str, Any]] = {}
        # Hints given while this reads are for the next round: a document read twice in one
        # round would have its events published twice.
        ids = [hints.pop() for _ in range(min(len(hints), PAGE))]
        gate = asyncio.Semaphore(CONCURRENT)

        async def read(doc_id: Any) -> None:
            async with gate:  # an `_id` equality each: FerretDB v1 pushes no `$in` down
                doc = await coll.find_one({"_id": doc_id}, {OUTBOX: 1, VERSION: 1})
            if doc is not None and doc.get(OUTBOX):
                docs[doc_id] = doc

        results = await asyncio.gather(*(read(i) for i in ids), return_exceptions=True)
        failed = [e for e in results if isinstance(e, BaseException)]
        if failed:
            hints.update(ids)  # none of this round's documents is lost; a scan follows the error
            raise failed[0]
        return list(docs.values())

    def _fault(self, point: str) -> None:
        if self.settings.fault == point:  # a real kill, not an exception: no cleanup runs
            os.kill(os.getpid(), signal.SIGKILL)

    async def _remove_published(self, coll: AsyncCollection, doc: dict[str, Any]) -> int:
        done = {e["id"] for e in doc.get(OUTBOX, [])}
        while True:
            remaining = [e for e in doc.get(OUTBOX, []) if e["id"] not in done]
            # Guarded by the version read with the outbox: a concurrent $push of new events
            # moves the version, and we recompute from the fresh list instead of erasing them.
            async with _lock(coll, doc["_id"]):
                result = await coll.update_one(
                    {"_id": doc["_id"], VERSION: doc[VERSION]},
                    {"$set": {OUTBOX: remaining, PENDING: bool(remaining)}},
                )
            if result.matched_count:
                return len(done)
            doc = await coll.find_one({"_id": doc["_id"]}, {OUTBOX: 1, VERSION: 1})
            if doc is None:
                return len(done)


async def _read_tail_ids(settings: Settings, topics: Sequence[str]) -> set[str]:
    """Event ids among the last TAIL records of each partition of `topics`."""
    if not topics:
        return set()
    consumer = AIOKafkaConsumer(
        **client_kwargs(settings), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p)
            for t in topics
            for p in (consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        if not partitions:
            return set()
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(starts[tp], ends[tp] - TAIL))
        ids: set[str] = set()
        waiting = {tp for tp in partitions if ends[tp] > starts[tp]}
        while waiting:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                break
            for tp, records in batch.items():
                ids.update(filter(None, map(_event_id, records)))
                if await consumer.position(tp) >= ends[tp]:
                    waiting.discard(tp)
        return ids
    finally:
        await consumer.stop()


def _event_id(record) -> str | None:
    """The event id of a record: in its value (structured mode), or in the `ce_id` header the
    relay wrote before it followed the Kafka binding exactly."""
    for name, value in record.headers or ():
        if name == "ce_id":
            return value.decode()
    try:
        found = orjson.loads(record.value).get("id")
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return None  # not ours: nothing it could be a duplicate of
    return found if isinstance(found, str) else None


async def _partitions(consumer: AIOKafkaConsumer, name: str) -> set[int]:
    await consumer._client.force_metadata_update()  # a topic created after the consumer started
    return consumer.partitions_for_topic(name) or set()
