"""Offsets of handled records are committed in batches (shared.kafka.Committer): never one
still being handled, at most COMMIT_EVERY records or COMMIT_SECONDS after it, and a failed
commit is only a redelivery."""

import asyncio
from types import SimpleNamespace

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

import shared.kafka as kafka
from shared.kafka import Committer


class FakeConsumer:
    def __init__(self, fail: bool = False) -> None:
        self.commits: list[dict] = []
        self.fail = fail

    async def commit(self, offsets):
        if self.fail:
            raise CommitFailedError("rebalanced")
        self.commits.append(dict(offsets))


def _msg(consumer, partition: int, offset: int):
    record = ConsumerRecord("bangkom.palu.enrollment", partition, offset, 0, 0, None, b"", None,
                            0, 0, [])
    return SimpleNamespace(raw_message=record, consumer=consumer)


async def test_a_full_batch_commits_the_next_offset_of_each_partition(monkeypatch):
    monkeypatch.setattr(kafka, "COMMIT_EVERY", 3)
    consumer, offsets = FakeConsumer(), Committer("g")
    for partition, offset in ((0, 10), (1, 4), (0, 11)):
        await offsets.handled(_msg(consumer, partition, offset))
    tp = "bangkom.palu.enrollment"
    assert consumer.commits == [{TopicPartition(tp, 0): 12, TopicPartition(tp, 1): 5}]
    await offsets.handled(_msg(consumer, 1, 5))
    assert len(consumer.commits) == 1  # not yet: one record, the timer will take it


async def test_a_quiet_subscriber_commits_within_the_time_limit(monkeypatch):
    monkeypatch.setattr(kafka, "COMMIT_SECONDS", 0.05)
    consumer, offsets = FakeConsumer(), Committer("g")
    await offsets.handled(_msg(consumer, 2, 7))
    assert consumer.commits == []
    await asyncio.sleep(0.2)
    assert consumer.commits == [{TopicPartition("bangkom.palu.enrollment", 2): 8}]
    await offsets.flush()
    assert len(consumer.commits) == 1  # nothing pending: no empty commit


async def test_a_failed_commit_is_logged_and_the_records_are_only_delivered_again(
        monkeypatch, caplog):
    monkeypatch.setattr(kafka, "COMMIT_EVERY", 1)
    offsets = Committer("g")
    await offsets.handled(_msg(FakeConsumer(fail=True), 0, 1))
    assert offsets.pending == {} and "delivered again" in caplog.text


async def test_the_in_memory_test_broker_has_nothing_to_commit():
    offsets = Committer("g")
    await offsets.handled(SimpleNamespace(raw_message=object(), consumer=None))
    assert offsets.pending == {}
