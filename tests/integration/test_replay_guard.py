"""`bangkom replay` refuses to rebuild from a log that lost records, and changes nothing.

A test-only city's events are counted by a national service with a database of its own; then
the head of one partition is deleted (`delete_records`, as retention would). The replay must
name the topic, partition and offset, exit non-zero, and leave the figures served and stored as
they were. That test comes last here, and the topics are deleted at the end: every later replay
checks every city topic of the broker.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from pymongo import AsyncMongoClient

from deploy.datagen import generate, produce
from deploy.local.process import free_port
from shared.kafka_admin import ensure_topics
from shared.topics import CITY_STREAMS, topic

ROOT = Path(__file__).resolve().parents[2]
CITY = f"replayguard-{uuid.uuid4().hex[:6]}"
TOPICS = [topic(CITY, s) for s in CITY_STREAMS]


def _replay(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    began = time.monotonic()
    done = subprocess.run([str(Path(sys.executable).parent / "bangkom"), "replay", *args],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    return done, time.monotonic() - began


@pytest.fixture(scope="module")
async def counted(infra):
    await ensure_topics(infra.kafka_bootstrap, TOPICS)
    records = list(generate([CITY], seed=5, staff=40))
    await produce(infra.kafka_bootstrap, iter(records))
    database = f"bangkom_national_guard_{uuid.uuid4().hex[:8]}"
    proc = await asyncio.to_thread(infra.start_service, "national", "evaluation", mongo_db=database)
    async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
        deadline = time.monotonic() + 120
        while True:
            cities = {c["city"]: c["events"] for c in (await http.get("/cities")).json()}
            if cities.get(CITY, 0) >= len(records):
                break
            assert time.monotonic() < deadline, f"not consumed: {cities.get(CITY)} of {len(records)}"
            await asyncio.sleep(0.5)
    yield proc, database
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(TOPICS)
    finally:
        await admin.close()


async def _stored(infra, database: str) -> tuple[list, list]:
    """The generations: `meta` as written, and those the stored deltas belong to. (Not the
    deltas themselves: the running service adds and compacts them, counting other tests'
    cities.)"""
    client = AsyncMongoClient(infra.mongo_url)
    try:
        db = client[database]
        return ([d async for d in db["meta"].find({})],
                sorted(await db["deltas"].distinct("generation")))
    finally:
        await client.close()


def test_replay_against_a_broker_that_is_down_says_so_in_one_line_within_10_s(infra):
    env = {"BANGKOM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
           "BANGKOM_MONGO_URL": infra.mongo_url, "BANGKOM_MONGO_DB": "bangkom_national_none"}
    done, seconds = _replay(env, "--yes")
    assert done.returncode == 1, done.stderr
    assert seconds < 10, f"{seconds:.1f} s"
    assert "replay refused: Kafka at 127.0.0.1:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2, lines  # the reason, and that nothing was changed


def test_replay_without_a_terminal_or_yes_asks_for_yes_and_changes_nothing(infra):
    env = {"BANGKOM_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "BANGKOM_MONGO_URL": infra.mongo_url,
           "BANGKOM_MONGO_DB": f"bangkom_national_unasked_{uuid.uuid4().hex[:6]}"}
    done, _ = _replay(env)
    assert done.returncode == 2, done.stderr
    assert "run `bangkom replay --yes`" in done.stderr


async def test_a_log_missing_its_head_is_refused_and_nothing_changes(infra, counted):
    proc, database = counted
    async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
        before = (await http.get("/figures")).json()
    before = (before["generation"], before["cities"][CITY])
    stored_before = await _stored(infra, database)
    assert stored_before[1], "nothing stored: the test would prove nothing"

    head = TopicPartition(TOPICS[0], 0)
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        low = await admin.delete_records({head: RecordsToDelete(before_offset=3)})
    finally:
        await admin.close()
    assert low[head] == 3

    env = {"BANGKOM_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "BANGKOM_MONGO_URL": infra.mongo_url,
           "BANGKOM_MONGO_DB": database}
    done, _ = await asyncio.to_thread(_replay, env, "--yes")
    assert done.returncode == 1, done.stderr
    assert f"topic {head.topic} partition 0 starts at offset 3, not 0" in done.stderr, done.stderr
    assert "The national database was not changed." in done.stderr
    assert "Traceback" not in done.stderr + done.stdout

    assert await _stored(infra, database) == stored_before
    async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
        after = (await http.get("/figures")).json()
    assert (after["generation"], after["cities"][CITY]) == before
