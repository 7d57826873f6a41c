"""The national delta store on the real FerretDB: compaction keeps every figure, even when it
is stopped between writing the merged delta and deleting the ones it replaces."""

from __future__ import annotations

import uuid

import pytest
from pymongo import AsyncMongoClient

from deploy.datagen import generate
from services.evaluation import queries as q
from services.evaluation.figures import Figures
from services.evaluation.store import COMPACT_AT, DeltaStore
from shared.events import decode

TOPIC = "bangkom.palu.sessions"


@pytest.fixture
async def store(infra):
    client = AsyncMongoClient(infra.mongo_url)
    yield DeltaStore(client[f"bangkom_store_test_{uuid.uuid4().hex[:8]}"])
    await client.close()


async def _write_batches(store: DeltaStore, batches: dict[int, int]) -> Figures:
    """Write `batches[p]` deltas for partition p from a generated year; returns their sum."""
    events = [decode(r.value) for r in generate(["palu"], seed=5, staff=60)]
    expected, offset = Figures(), 0
    for partition, count in batches.items():
        size = len(events) // sum(batches.values())
        for _ in range(count):
            delta = Figures()
            for event in events[offset:offset + size]:
                delta.apply(*event)
            await store.write(generation=0, topic=TOPIC, partition=partition, first=offset,
                              last=offset + size - 1, records=size, delta=delta)
            expected.merge(delta)
            offset += size
    return expected


async def _count(store: DeltaStore, partition: int) -> int:
    return await store.deltas.count_documents({"partition": partition})


async def test_compaction_merges_busy_partitions_and_keeps_the_sum(store):
    expected = await _write_batches(store, {0: COMPACT_AT + 6, 1: 3})
    parts = await store.deltas.find({"partition": 0}).to_list()
    merged = await store.compact(0)
    assert merged == COMPACT_AT + 6
    assert await _count(store, 0) == 1 and await _count(store, 1) == 3  # quiet one untouched
    figures, marks = await store.load(0)
    assert q.national(figures) == q.national(expected)
    (whole,) = await store.deltas.find({"partition": 0}).to_list()
    assert (whole["first"], whole["last"], whole["records"]) == (
        min(d["first"] for d in parts), max(d["last"] for d in parts), sum(d["records"] for d in parts))
    assert marks[(TOPIC, 0)] == whole["last"]


async def test_a_compaction_stopped_before_its_delete_counts_nothing_twice(store, monkeypatch):
    expected = await _write_batches(store, {0: COMPACT_AT})

    async def crash(_ids):
        raise RuntimeError("killed between the merged write and the delete")

    monkeypatch.setattr(store, "_delete", crash)
    with pytest.raises(RuntimeError):
        await store.compact(0)
    monkeypatch.undo()
    assert await _count(store, 0) == COMPACT_AT + 1  # the merged delta beside its parts

    figures, marks = await store.load(0)
    assert q.national(figures) == q.national(expected)
    assert await _count(store, 0) == 1  # the load deleted the covered parts
    again, _ = await store.load(0)
    assert q.national(again) == q.national(expected)
