"""The national evaluation against the real Kafka and FerretDB: effectively once under SIGKILL.

The cities here are test-only names, so other tests' events in the federation's topics cannot
move these figures, and the service gets its own database (and so its own consumer group).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient

from deploy.datagen import generate, produce
from services.evaluation import queries as q
from services.evaluation.figures import Figures
from shared.events import ContractError, decode
from shared.kafka_admin import ensure_topics
from shared.topics import CITY_STREAMS, PARTITIONS, deadletter_topic, topic

CITIES = ["evalkota-a", "evalkota-b", "evalkota-c"]
STAFF = 950  # about 17,500 events per city: a bit over 50,000 in all
TOPICS = [topic(c, s) for c in CITIES for s in CITY_STREAMS]
DEADLETTER = deadletter_topic("national")


@pytest.fixture(scope="module")
async def national(infra):
    await ensure_topics(infra.kafka_bootstrap, [*TOPICS, DEADLETTER])
    database = f"bangkom_national_test_{uuid.uuid4().hex[:8]}"
    records = list(generate(CITIES, seed=11, staff=STAFF))
    await produce(infra.kafka_bootstrap, iter(records))
    for city in CITIES:
        infra.token(city)  # made before the nation starts: it accepts the cities' tokens it knows
    proc = await asyncio.to_thread(infra.start_service, "national", "evaluation",
                                   mongo_db=database)
    yield proc, database, records


async def _get(url: str, path: str, **params) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return await http.get(path, params=params)


async def _below_target(infra, url: str, city: str) -> list[str]:
    """The city's own below-20-JP ids, asked with that city's viewer token."""
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=infra.auth(city, "viewer")) as http:
        response = await http.get(f"/cities/{city}/below-target")
    assert response.status_code == 200, response.text
    return response.json()["person_ids"]


async def _events_seen(url: str) -> dict[str, int]:
    try:
        response = await _get(url, "/cities")
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    return {c["city"]: c["events"] for c in response.json()}


async def _wait_for(url: str, expected: dict[str, int], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        seen = await _events_seen(url)
        if all(seen.get(c, 0) >= n for c, n in expected.items()):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"not consumed in {timeout}s: {seen} of {expected}")


async def _read_back(bootstrap: str, topics: list[str]) -> list:
    """Every record now in `topics`, straight from Kafka (no consumer group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        # every topic here was made by ensure_topics with PARTITIONS partitions
        ends = await consumer.end_offsets(partitions)
        records = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def test_sigkills_during_the_replay_change_no_figure(infra, national):
    proc, database, records = national
    expected_events = {c: sum(1 for r in records if r.topic.split(".")[1] == c) for c in CITIES}
    total = sum(expected_events.values())

    # Four crashes at random points of the catch-up, each followed by a restart.
    rng = random.Random()
    kills = 0
    progress: list[int] = []  # events counted when each kill came
    for share in sorted(rng.uniform(0.05, 0.9) for _ in range(4)):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seen = await _events_seen(proc.url)
            if sum(seen.get(c, 0) for c in CITIES) >= share * total:
                break
            await asyncio.sleep(0.02)
        proc.kill()
        kills += 1
        progress.append(sum(seen.get(c, 0) for c in CITIES))
        await asyncio.to_thread(proc.start)
    assert kills == 4
    print(f"killed at {progress} of {total} events")

    await _wait_for(proc.url, expected_events)
    await asyncio.sleep(2)  # nothing more may arrive: a double count would show now
    seen = await _events_seen(proc.url)
    assert {c: seen[c] for c in CITIES} == expected_events

    # From scratch: the events read back from Kafka, applied once each, in memory.
    scratch = Figures()
    for record in await _read_back(infra.kafka_bootstrap, TOPICS):
        scratch.apply(*decode(record.value))
    served = (await _get(proc.url, "/figures")).json()
    expected = q.national(scratch)
    for city in CITIES:
        assert served["cities"][city] == expected["cities"][city], city
    for city in CITIES:
        assert await _below_target(infra, proc.url, city) == q.below_target(scratch, city, 2026)

    # The stored deltas of each partition tile its log: no gap, no overlap.
    client = AsyncMongoClient(infra.mongo_url)
    try:
        spans: dict[tuple[str, int], list[tuple[int, int]]] = {}
        async for doc in client[database]["deltas"].find({"topic": {"$in": TOPICS}}):
            spans.setdefault((doc["topic"], doc["partition"]), []).append((doc["first"], doc["last"]))
    finally:
        await client.close()
    stored = 0
    for key, ranges in spans.items():
        ranges.sort()
        assert ranges[0][0] == 0, key
        for (_, last), (first, _) in zip(ranges, ranges[1:], strict=False):
            assert first == last + 1, f"{key}: {ranges}"
        stored += ranges[-1][1] + 1
    assert stored == total


async def test_a_city_mismatch_and_garbage_go_to_the_deadletter_and_the_rest_counts(
        infra, national):
    proc, _, records = national
    city, other = CITIES[0], CITIES[1]
    name = topic(city, "enrollment")
    foreign = next(r for r in generate([other], seed=99, staff=3) if r.topic == topic(other, "enrollment"))
    valid = next(r for r in generate([city], seed=99, staff=3) if r.topic == name)
    before = (await _events_seen(proc.url))[city]

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        # one key: the three land on one partition, in this order
        for value in (foreign.value, b"\x00 not a cloud event", valid.value):
            await producer.send_and_wait(name, value, key=b"staff/deadletter-test")
    finally:
        await producer.stop()

    await _wait_for(proc.url, {city: before + 1}, timeout=60)
    dead = [r for r in await _read_back(infra.kafka_bootstrap, [DEADLETTER])
            if dict(r.headers).get("x-bangkom-source-topic") == name.encode()]
    reasons = sorted(dict(r.headers)["x-bangkom-reason"].decode().split(":")[0] for r in dead)
    assert reasons == ["city-mismatch", "contract"]
    assert (await _events_seen(proc.url))[city] == before + 1


async def test_insights_reach_the_citys_insights_topic(infra, national):
    proc, _, _ = national
    city = CITIES[0]
    wanted = f"{city}:jp-shortfall:2026"
    # Published at most every 10 s once caught up; the tests before this one add events, so
    # the newest insight is waited for until it names exactly whom the API names now.
    deadline = time.monotonic() + 60
    latest, below = None, None
    while time.monotonic() < deadline:
        found = [decode(r.value)[1] for r in await _read_back(infra.kafka_bootstrap,
                                                               [topic(city, "insights")])]
        shortfall = [i for i in found if i.insight_id == wanted]
        below = await _below_target(infra, proc.url, city)
        latest = list(shortfall[-1].person_ids) if shortfall else None
        if latest == below[:10_000]:
            break
        await asyncio.sleep(2)
    else:
        raise AssertionError(f"newest {wanted} insight on {topic(city, 'insights')}: "
                             f"{latest and len(latest)} people, the API names {len(below or [])}")
    assert {i.kind for i in found} <= {"jp-shortfall", "competency-gap", "weak-provider",
                                        "low-completion"}


async def test_a_replay_rebuilds_the_same_figures_while_the_service_runs(infra, national):
    from services.evaluation.replay import rebuild
    from shared.settings import Settings

    proc, database, records = national
    before = (await _get(proc.url, "/figures")).json()["cities"]
    settings = Settings(node="national", service="evaluation", mongo_db=database,
                        kafka_bootstrap=infra.kafka_bootstrap, mongo_url=infra.mongo_url)
    progress: list[tuple[int, int]] = []
    rebuilt = await rebuild(settings, lambda done, total: progress.append((done, total)),
                            workers=2)
    assert rebuilt.workers == 2
    assert rebuilt.events == progress[-1][1] and progress[-1][0] == progress[-1][1]
    assert rebuilt.events >= len(records)  # every city topic, not only those of this test

    deadline = time.monotonic() + 60  # the service notices the swap, then loads the result
    while time.monotonic() < deadline:
        response = await _get(proc.url, "/figures")
        if response.status_code == 200 and response.json()["generation"] == 1:
            assert {c: response.json()["cities"][c] for c in CITIES} == {c: before[c] for c in CITIES}
            break
        await asyncio.sleep(1)
    else:
        raise AssertionError("the service did not come back with the same figures")
    client = AsyncMongoClient(infra.mongo_url)
    try:
        generations = await client[database]["deltas"].distinct("generation")
    finally:
        await client.close()
    assert generations == [1]


async def test_a_replay_that_fails_half_way_leaves_the_served_figures_even_after_a_restart(
        infra, national):
    from services.evaluation.replay import rebuild
    from services.evaluation.store import DeltaStore
    from shared.settings import Settings

    proc, database, _ = national
    before = (await _get(proc.url, "/figures")).json()
    settings = Settings(node="national", service="evaluation", mongo_db=database,
                        kafka_bootstrap=infra.kafka_bootstrap, mongo_url=infra.mongo_url)

    class Stopped(Exception):
        pass

    def on_progress(done: int, total: int) -> None:
        if total and done >= total / 2:
            raise Stopped  # as a crash of `bangkom replay` half-way would

    stopped = False
    try:
        await rebuild(settings, on_progress, workers=2)
    except* Stopped:  # out of the workers' task group
        stopped = True
    assert stopped
    client = AsyncMongoClient(infra.mongo_url)
    try:
        built = await client[database]["deltas"].count_documents(
            {"generation": before["generation"] + 1})
        served = await DeltaStore(client[database]).generation()
    finally:
        await client.close()
    assert built > 0, "the rebuild wrote nothing before it stopped: the test proves nothing"
    assert served.number == before["generation"]

    await asyncio.sleep(6)  # past the service's look for a new generation (every 5 s)
    after = (await _get(proc.url, "/figures")).json()
    assert (after["generation"], after["cities"]) == (before["generation"], before["cities"])
    proc.kill()  # a restart loads the stored figures: the served generation's, not the half
    await asyncio.to_thread(proc.start)
    deadline = time.monotonic() + 60
    while (response := await _get(proc.url, "/figures")).status_code != 200:
        assert time.monotonic() < deadline, response.text  # 503 while it loads the deltas
        await asyncio.sleep(0.5)
    restarted = response.json()
    assert (restarted["generation"], restarted["cities"]) == (before["generation"], before["cities"])


def _rebuild_workers() -> list[int]:
    """Pids of this process's rebuild workers (children running services.evaluation.replay)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
        if parent == os.getpid() and b"services.evaluation.replay" in command:
            found.append(int(stat.parent.name))
    return found


async def test_rebuild_workers_killed_midway_are_started_again_and_count_once(infra, national):
    from services.evaluation.replay import rebuild
    from services.evaluation.store import DeltaStore
    from shared.settings import Settings

    _, _, records = national
    database = f"bangkom_national_rebuild_{uuid.uuid4().hex[:8]}"  # no service reads it
    settings = Settings(node="national", service="evaluation", mongo_db=database,
                        kafka_bootstrap=infra.kafka_bootstrap, mongo_url=infra.mongo_url)
    kills: list[int] = []

    def on_progress(done: int, total: int) -> None:
        # SIGKILL one worker at a third and another at two thirds of the way
        if total and done >= total * (len(kills) + 1) / 3 and len(kills) < 2:
            workers = _rebuild_workers()
            if workers:
                victim = random.choice(workers)
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)

    rebuilt = await rebuild(settings, on_progress, workers=2)
    assert len(kills) == 2 and rebuilt.restarts == 2
    assert rebuilt.events >= len(records)

    client = AsyncMongoClient(infra.mongo_url)
    try:
        stored, _ = await DeltaStore(client[database]).load(1)
    finally:
        await client.close()
    scratch = Figures()  # the other tests here add events to these topics: read them all back
    for record in await _read_back(infra.kafka_bootstrap, TOPICS):
        with contextlib.suppress(ContractError):  # what the rebuild dead-letters, too
            envelope, payload = decode(record.value)
            if envelope.city == record.topic.split(".")[1]:
                scratch.apply(envelope, payload)
    expected, served = q.national(scratch), q.national(stored)
    for city in CITIES:
        assert served["cities"][city] == expected["cities"][city], city
        assert q.below_target(stored, city, 2026) == q.below_target(scratch, city, 2026)
