"""A city's link to the nation: the real MirrorMaker 2 between two real Kafka clusters.

The session's Kafka plays the national cluster; this module starts a city cluster of its own and
the city's link. The link is SIGKILLed five times while the city produces; afterwards the national
copy, read as the national service reads it (read_committed), holds every city record exactly
once, in the city's order per partition.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.local.infra import KafkaServer
from deploy.local.mirror import LinkSpec, MirrorMaker
from deploy.local.process import free_port, run_coroutine
from shared.kafka_admin import ensure_topics
from shared.topics import PARTITIONS, topic

pytestmark = pytest.mark.integration

CITY = "linktest"
KILLS = 5


@pytest.fixture(scope="module")
def link(infra):
    root = infra.root / "linktest"
    city = KafkaServer(port=free_port(), controller_port=free_port(), data_dir=root / "kafka",
                       log_dir=root / "logs", die_with_parent=True)
    city.start(timeout=180)
    streams = [topic(CITY, s) for s in ("enrollment", "sessions", "insights")]
    for bootstrap in (city.bootstrap, infra.kafka_bootstrap):
        run_coroutine(lambda b=bootstrap: ensure_topics(b, streams, PARTITIONS), timeout=60)
    mirror = MirrorMaker(LinkSpec({CITY: city.bootstrap}, infra.kafka_bootstrap),
                         data_dir=root / "mirror", log_dir=root / "logs", die_with_parent=True)
    mirror.start(timeout=240)
    try:
        yield city, mirror
    finally:
        mirror.stop()
        city.stop()
        # Its raw test records match the national pattern: a national service of a later
        # module would dead-letter (and log) every one of them.
        run_coroutine(lambda: _delete_topics(infra.kafka_bootstrap, streams), timeout=60)


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def _produce(bootstrap: str, name: str, values: list[bytes]) -> None:
    # the city's own producer settings (the outbox relay's): idempotent, acks=all
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send(name, value, key=value[-4:])
            await asyncio.sleep(0.002)  # a city's pace, so the kills land mid-stream
        await producer.flush()
    finally:
        await producer.stop()


async def _read(bootstrap: str, name: str) -> dict[int, list[bytes]]:
    """Every committed record of `name`, per partition, in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # the last stable offsets
        out: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                out[tp.partition].extend(record.value for record in batch)
        return out
    finally:
        await consumer.stop()


def _national_matches(infra, name: str, expected: dict[int, list[bytes]], seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        got = run_coroutine(lambda: _read(infra.kafka_bootstrap, name), timeout=120)
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(2)


def test_link_killed_five_times_mirrors_every_record_exactly_once(infra, link) -> None:
    city, mirror = link
    name = topic(CITY, "enrollment")
    values = [json.dumps({"id": str(uuid.uuid4()), "n": n}).encode() for n in range(6000)]
    producing = threading.Thread(
        target=lambda: run_coroutine(lambda: _produce(city.bootstrap, name, values), timeout=600))
    producing.start()
    for _ in range(KILLS):
        time.sleep(2)
        mirror.kill()  # SIGKILL: no flush, no commit, an open transaction left behind
        mirror.start(timeout=240)
    producing.join()

    expected = run_coroutine(lambda: _read(city.bootstrap, name), timeout=120)
    assert sum(map(len, expected.values())) == len(values)
    national = _national_matches(infra, name, expected, seconds=120)
    copied = [v for part in national.values() for v in part]
    assert len(copied) == len(set(copied)), "a record was mirrored twice"
    assert set(copied) == set(values), f"{len(set(values) - set(copied))} records lost"
    assert national == expected  # and each partition in the city's order


def test_insights_flow_back_to_the_city(infra, link) -> None:
    city, _ = link
    name = topic(CITY, "insights")
    value = json.dumps({"insight": str(uuid.uuid4())}).encode()
    run_coroutine(lambda: _produce(infra.kafka_bootstrap, name, [value]), timeout=60)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        got = run_coroutine(lambda: _read(city.bootstrap, name), timeout=60)
        if value in [v for part in got.values() for v in part]:
            return
        time.sleep(1)
    pytest.fail("the national insight did not reach the city within 90 s")
