"""Effectively-once reduction of batches into deltas, with an in-memory store and producer."""

from collections import namedtuple

from aiokafka import TopicPartition

from deploy.datagen import generate
from services.evaluation import queries as q
from services.evaluation.figures import Figures, apply_all
from services.evaluation.ingest import NationalIngest
from services.evaluation.store import Generation
from shared.events import decode
from shared.settings import Settings

Record = namedtuple("Record", "topic partition offset key value headers", defaults=((),))


class FakeStore:
    def __init__(self):
        self.docs = {}

    async def generation(self):
        return Generation(0, False)

    async def load(self, generation):
        figures, marks = Figures(), {}
        for doc in self.docs.values():
            figures.merge(Figures.from_doc(doc["figures"]))
            key = (doc["topic"], doc["partition"])
            marks[key] = max(doc["last"], marks.get(key, -1))
        return figures, marks

    async def write(self, *, generation, topic, partition, first, last, records, delta):
        self.docs[f"{topic}|{partition}|{first}"] = {
            "topic": topic, "partition": partition, "first": first, "last": last,
            "figures": delta.to_doc()}


class FakeProducer:
    def __init__(self):
        self.sent = []

    async def send_and_wait(self, topic, value, key=None, headers=None):
        self.sent.append((topic, value, dict(headers or [])))


def _ingest(store):
    ingest = NationalIngest(Settings(node="national", service="evaluation"), store)
    ingest._producer = FakeProducer()
    return ingest


async def _poll_and_write(ingest, tp, records):
    """One poll whose batch is written at once (as when the partition is caught up)."""
    await ingest._reduce(tp, records)
    batch = ingest._batches.pop(tp, None)
    if batch is not None:
        await ingest._write(tp, batch)
        return batch.last
    return None


def _partition_log(city="palu", stream="sessions"):
    topic = f"bangkom.{city}.{stream}"
    values = [r.value for r in generate([city], seed=3, staff=40) if r.topic == topic]
    return topic, [Record(topic, 0, offset, b"k", value) for offset, value in enumerate(values)]


async def test_a_redelivered_batch_changes_nothing_even_after_a_restart():
    topic, log = _partition_log()
    tp = TopicPartition(topic, 0)
    store = FakeStore()
    first = _ingest(store)
    await first.load(Generation(0, False))
    await _poll_and_write(first, tp, log[:100])
    await _poll_and_write(first, tp, log[50:300])  # overlaps: a redelivery after a lost commit
    # crash; Kafka redelivers from an older committed offset, a new process starts
    second = _ingest(store)
    await second.load(Generation(0, False))
    assert second.marks == {(topic, 0): 299}
    await _poll_and_write(second, tp, log[0:400])
    await _poll_and_write(second, tp, log[400:])
    expected = apply_all(decode(r.value) for r in log)
    assert q.national(second.figures) == q.national(expected)
    assert sorted(d["first"] for d in store.docs.values()) == [0, 100, 300, 400]


async def test_a_city_mismatch_and_garbage_are_dead_lettered_and_the_rest_counted():
    topic, log = _partition_log("palu", "enrollment")
    foreign = next(r for r in generate(["salatiga"], seed=3, staff=5))
    batch = [log[0], Record(topic, 0, 1, b"k", foreign.value), Record(topic, 0, 2, b"k", b"%$#"),
             *(r._replace(offset=r.offset + 2) for r in log[1:10])]
    ingest = _ingest(FakeStore())
    await ingest.load(Generation(0, False))
    assert await _poll_and_write(ingest, TopicPartition(topic, 0), batch) == 11
    reasons = [headers["x-bangkom-reason"].decode() for _, _, headers in ingest._producer.sent]
    assert [r.split(":")[0] for r in reasons] == ["city-mismatch", "contract"]
    assert all(t == "bangkom.national.deadletter" for t, _, _ in ingest._producer.sent)
    assert ingest.figures.events == {"palu": 10}


async def test_a_batch_gathers_several_polls_and_counts_only_once_written():
    topic, log = _partition_log()
    tp = TopicPartition(topic, 0)
    store = FakeStore()
    ingest = _ingest(store)
    await ingest.load(Generation(0, False))
    await ingest._reduce(tp, log[:100])
    await ingest._reduce(tp, log[80:200])  # the overlap is not reduced twice
    assert ingest.figures.events == {} and store.docs == {}
    await ingest._write(tp, ingest._batches.pop(tp))
    [doc] = store.docs.values()
    assert (doc["first"], doc["last"]) == (0, 199)
    assert q.national(ingest.figures) == q.national(apply_all(decode(r.value) for r in log[:200]))


async def test_a_dead_letter_redelivered_for_a_city_consumer_is_not_counted_again():
    topic, log = _partition_log()
    tp = TopicPartition(topic, 0)
    first = log[0]
    to_city = first._replace(offset=len(log), headers=(
        ("x-bangkom-redeliver-to", b"bangkom.palu.sessions.roster"),))
    to_nation = first._replace(offset=len(log) + 1, headers=(
        ("x-bangkom-redeliver-to", b"bangkom.national.evaluation.r2"),))
    ingest = _ingest(FakeStore())
    await _poll_and_write(ingest, tp, [*log, to_city, to_nation])
    expected = apply_all(decode(r.value) for r in [*log, to_nation])
    assert q.national(ingest.figures) == q.national(expected)
    assert ingest.marks[(topic, 0)] == len(log) + 1  # read past both all the same


class _Consumer:
    """What _write_due asks of the consumer; `assigned` is what the group gives it now."""

    def __init__(self, assigned):
        self.assigned, self.commits = set(assigned), []

    def assignment(self):
        return set(self.assigned)

    async def commit(self, offsets):
        self.commits.append(dict(offsets))


async def test_a_partition_revoked_while_its_batch_is_written_is_counted_once_and_not_committed():
    """The national broker stopped: the group is rejoined while a batch is being stored, and
    the revocation drops that batch. The write still counts it once; it commits no offset for a
    partition it no longer has, and when the partition comes back nothing is counted again."""
    topic, log = _partition_log()
    tp = TopicPartition(topic, 0)
    store = FakeStore()
    ingest = _ingest(store)
    await ingest.load(Generation(0, False))
    consumer = _Consumer([tp])
    stored = store.write

    async def write_during_a_rebalance(**kwargs):
        await stored(**kwargs)
        ingest._batches.pop(tp, None)  # on_partitions_revoked, as the listener does
        consumer.assigned.clear()

    store.write = write_during_a_rebalance
    await ingest._reduce(tp, log[:300])
    ingest._batches[tp].records = 10 ** 6  # full: written now
    await ingest._write_due(consumer)  # raised KeyError before, and the ingest task died
    assert consumer.commits == [] and tp not in ingest._batches
    store.write = stored
    await _poll_and_write(ingest, tp, log)  # reassigned: resumes from the stored mark
    assert q.national(ingest.figures) == q.national(apply_all(decode(r.value) for r in log))
    assert sorted(d["first"] for d in store.docs.values()) == [0, 300]
