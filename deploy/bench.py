"""`bangkom bench`: national ingest speed against Kafka's own, in one run on one machine.

One run starts its own Kafka and FerretDB (fresh, on free ports), writes one generated data set
(>= 1,000,000 events over >= 50 cities, `deploy.datagen`) to the city topics, then measures:

  (a) ceiling  Kafka's own org.apache.kafka.tools.ConsumerPerformance reading the same events.
               It takes a single --topic, so it reads a one-topic mirror of the same records.
  (b) naive    the obvious implementation on our stack: a FastStream subscriber handling one
               message at a time with one database update per event (time-boxed: its rate is
               steady, and at its speed the whole log would take many minutes).
  (c) ours     the evaluation service's rebuild from the log (`bangkom replay`'s code path:
               one worker process per core) until complete, then verified equal to an
               independent in-memory recomputation (the same events applied straight from the
               generator, no Kafka, no database).
  (d) peer     Quix Streams computing the core figures (events per city and month, JP per
               person per year, completions per city) with group-bys and state stores, then
               verified equal to the recomputation (`deploy.bench_quix`).

Each contender runs in its own process so its peak memory (max RSS) is its own; (c)'s is its
process's plus its workers' peaks, added up. Then the national service's start-up over
live-edge deltas (one event each), before and after they are compacted. Then freshness:
a city's enrollment and sessions services and the national service run on that broker, and
enrollments are POSTed at a steady rate; for each, the time until the national API counts it
(p50, p99), beside the bare Kafka produce->consume round trip at the same rate as the floor.
Results go to bench-results/ (JSON and a Markdown table).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import typer

from deploy.local.paths import REPO_ROOT

RESULTS = REPO_ROOT / "bench-results"
MIRROR = "bench.ceiling"
# The freshness city is not in the generated data: its services start on empty topics, as a
# city joining the federation would, instead of first catching up with a generated year.
CITY = "kota-bench"
# Enrollments go round-robin into sessions of this size by default, the largest class the
# generator makes (datagen: 15-40). One roster is one document, rewritten on every enrollment:
# a single 400-person session (--session-size 400) makes each write slow enough to queue.
SESSION_SIZE = 40


def bench(
    cities: int = typer.Option(50, min=1, help="generated cities"),
    staff: int = typer.Option(800, min=10, help="staff per city (about 25 events each)"),
    seed: int = typer.Option(1),
    naive_seconds: float = typer.Option(60.0, help="how long (b) runs"),
    rate: float = typer.Option(20.0, help="enrollment POSTs per second for freshness"),
    freshness_seconds: float = typer.Option(20.0, help="how long the steady POST load lasts"),
    session_size: int = typer.Option(SESSION_SIZE, min=1, help="seats per session enrolled into"),
) -> None:
    """Measure (a) Kafka's ConsumerPerformance, (b) a naive subscriber, (c) our rebuild."""
    from rich.console import Console

    from deploy.local.infra import scratch_ferretdb, scratch_kafka, setup

    console = Console(stderr=True)
    # Right after topic creation partitions are still electing leaders; aiokafka retries by
    # itself and would print a warning for each.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    setup(console)
    root, kafka = scratch_kafka("bangkom-bench-")
    ferretdb = scratch_ferretdb(root)
    results: dict = {"machine": _machine(), "started": dt.datetime.now(dt.UTC).isoformat()}
    try:
        kafka.start()
        ferretdb.start()
        params = {"cities": cities, "staff": staff, "seed": seed,
                  "bootstrap": kafka.bootstrap, "mongo": ferretdb.url}
        console.print("[bold]writing the data set[/] (city topics + one-topic mirror)")
        results["dataset"] = asyncio.run(_write_dataset(params))
        n = results["dataset"]["events"]
        console.print(f"  {n:,} events over {cities} cities")

        console.print("[bold](a)[/] Kafka ConsumerPerformance")
        results["a_ceiling"] = _child(["ceiling", json.dumps(params | {"events": n})])
        console.print("[bold](b)[/] naive FastStream subscriber, one DB update per event")
        results["b_naive"] = _child(["naive", json.dumps(params | {"seconds": naive_seconds})])
        console.print("[bold](c)[/] evaluation rebuild from the log, then verification")
        results["c_ours"] = _child(["rebuild", json.dumps(params)])
        console.print("[bold](d)[/] Quix Streams, the core figures, then verification")
        results["d_quix"] = _child([json.dumps(params | {"topic": MIRROR})], "deploy.bench_quix")
        console.print("[bold]start-up[/] of the national service over live-edge deltas")
        results["startup"] = _child(["startup", json.dumps(params | {"deltas": 6000})])
        console.print("[bold]freshness[/] under a steady POST rate")
        try:
            results["freshness"] = asyncio.run(
                _freshness(kafka.bootstrap, ferretdb.url, root, rate, freshness_seconds,
                           session_size))
        except Exception as exc:  # noqa: BLE001 - keep (a), (b), (c): they took minutes
            results["freshness"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        ferretdb.stop()
        kafka.stop()
    a, b, c, d = (results[k]["events_per_s"] for k in ("a_ceiling", "b_naive", "c_ours", "d_quix"))
    results["ratios"] = {"c_over_a": c / a, "c_over_b": c / b, "c_over_d": c / d,
                         "target_c_over_a": 0.40, "target_c_over_b": 10.0, "target_c_over_d": 5.0}
    _report(results, console)


# --- data set ---------------------------------------------------------------------------------

async def _write_dataset(p: dict) -> dict:
    from deploy.datagen import city_names, generate, produce
    from shared.kafka_admin import ensure_topics
    from shared.topics import CITY_STREAMS, topic

    names = [topic(c, s) for c in city_names(p["cities"]) for s in (*CITY_STREAMS, "insights")]
    await ensure_topics(p["bootstrap"], [*names, MIRROR, "bangkom.national.deadletter"])
    size = 0

    def measured():
        nonlocal size
        for record in generate(p["cities"], seed=p["seed"], staff=p["staff"]):
            size += len(record.value)
            yield record

    began = time.perf_counter()
    count = await produce(p["bootstrap"], measured(), mirror=MIRROR)
    elapsed = time.perf_counter() - began
    return {"events": count, "mean_event_bytes": round(size / count),
            "write_seconds": round(elapsed, 1)}


# --- contenders, each in its own process --------------------------------------------------------

def _child(args: list[str], module: str = "deploy.bench") -> dict:
    """Run `python -m <module> <args>`; it prints one JSON line with its figures."""
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench step {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_mib(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # Linux reports KiB


def _ceiling(p: dict) -> dict:
    from deploy.local.infra import kafka_libs

    cmd = ["java", "-Xmx1g", "-cp", f"{kafka_libs()}/*", "org.apache.kafka.tools.ConsumerPerformance",
           "--bootstrap-server", p["bootstrap"], "--topic", MIRROR, "--messages", str(p["events"]),
           "--group", f"bench-ceiling-{time.time_ns()}", "--timeout", "120000"]
    began = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - began
    lines = [line for line in out.splitlines() if "," in line]
    row = dict(zip([h.strip() for h in lines[0].split(",")], [v.strip() for v in lines[-1].split(",")],
                   strict=False))
    return {"events": int(row["data.consumed.in.nMsg"]),
            # nMsg.sec counts from the consumer's start, rebalance included; JVM start excluded
            "events_per_s": float(row["nMsg.sec"]), "fetch_events_per_s": float(row["fetch.nMsg.sec"]),
            "seconds": round(int(row["data.consumed.in.nMsg"]) / float(row["nMsg.sec"]), 2),
            "wall_seconds_with_jvm_start": round(wall, 2),
            "peak_rss_mib": _peak_mib(resource.RUSAGE_CHILDREN)}


async def _naive(p: dict) -> dict:
    from faststream import AckPolicy
    from faststream.kafka import KafkaBroker, KafkaMessage
    from pymongo import AsyncMongoClient

    from shared.events import decode
    from shared.topics import CITY_EVENTS_PATTERN

    collection = AsyncMongoClient(p["mongo"])["bench_naive"]["counts"]
    broker = KafkaBroker(p["bootstrap"], logger=None)
    state = {"n": 0, "first": 0.0}

    @broker.subscriber(pattern=CITY_EVENTS_PATTERN, group_id=f"bench-naive-{time.time_ns()}",
                       auto_offset_reset="earliest", ack_policy=AckPolicy.ACK)
    async def handle(msg: KafkaMessage) -> None:
        envelope, _ = decode(msg.body)
        await collection.update_one({"_id": f"{envelope.city}|{envelope.type}"},
                                    {"$inc": {"n": 1}}, upsert=True)
        if state["n"] == 0:
            state["first"] = time.perf_counter()
        state["n"] += 1

    await broker.start()
    while state["n"] == 0:
        await asyncio.sleep(0.05)
    await asyncio.sleep(p["seconds"])
    n, elapsed = state["n"], time.perf_counter() - state["first"]
    await broker.stop()
    return {"events": n, "seconds": round(elapsed, 2), "events_per_s": n / elapsed,
            "peak_rss_mib": _peak_mib()}


async def _rebuild(p: dict) -> dict:
    from deploy.datagen import generate
    from services.evaluation.figures import Figures
    from services.evaluation.replay import rebuild
    from services.evaluation.store import DeltaStore
    from shared.events import decode
    from shared.mongo import connect
    from shared.settings import Settings

    settings = Settings(node="national", service="evaluation", kafka_bootstrap=p["bootstrap"],
                        mongo_url=p["mongo"])
    began = time.perf_counter()
    rebuilt = await rebuild(settings)
    elapsed = time.perf_counter() - began
    consumed = rebuilt.events
    # the coordinating process and its workers ran side by side: their peaks are added up
    peak = _peak_mib() + rebuilt.peak_rss_mib

    client = connect(settings)
    store = DeltaStore(client[settings.database])
    stored, _ = await store.load((await store.generation()).number)
    await client.close()
    expected = Figures()
    for record in generate(p["cities"], seed=p["seed"], staff=p["staff"]):
        expected.apply(*decode(record.value))
    return {"events": consumed, "seconds": round(elapsed, 2), "events_per_s": consumed / elapsed,
            "peak_rss_mib": round(peak, 1), "worker_processes": rebuilt.workers,
            "verified_equal": _canonical(stored.to_doc()) == _canonical(expected.to_doc())}


async def _startup(p: dict) -> dict:
    """What a restart reads: at the live edge nearly every event is its own delta. Times the
    first load (which compacts them) and the next one."""
    from pymongo import AsyncMongoClient

    from deploy.datagen import generate
    from services.evaluation.figures import Figures
    from services.evaluation.store import DeltaStore
    from shared.events import decode

    client = AsyncMongoClient(p["mongo"])
    store = DeltaStore(client["bench_startup"])
    offsets: dict[str, int] = {}
    records = generate(p["cities"], seed=p["seed"], staff=p["staff"])
    for record, _ in zip(records, range(p["deltas"]), strict=False):  # the first `deltas`
        delta = Figures()
        delta.apply(*decode(record.value))
        offset = offsets[record.topic] = offsets.get(record.topic, -1) + 1
        await store.write(generation=0, topic=record.topic, partition=0, first=offset,
                          last=offset, records=1, delta=delta)
    timed = []
    for _ in range(2):
        began = time.perf_counter()
        await store.load(0)
        timed.append(round(time.perf_counter() - began, 3))
    left = await store.deltas.count_documents({})
    await client.close()
    return {"deltas": p["deltas"], "partitions": len(offsets), "first_load_seconds": timed[0],
            "deltas_after": left, "next_load_seconds": timed[1]}


def _canonical(value):
    """The figures document with its record lists sorted: their order carries no meaning
    (it depends on which partition's batch arrived first), their content is compared exactly."""
    import orjson

    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return value


# --- freshness ----------------------------------------------------------------------------------

async def _freshness(bootstrap: str, mongo: str, root: Path, rate: float, seconds: float,
                     session_size: int) -> dict:
    import httpx

    from deploy.local.federation import ServiceProcess, new_tokens, token_hashes
    from deploy.local.process import free_port

    from shared.kafka_admin import ensure_topics
    from shared.topics import CITY_STREAMS, deadletter_topic, topic

    # Before the national service starts: its pattern subscription then includes them at once.
    await ensure_topics(bootstrap, [*(topic(CITY, s) for s in (*CITY_STREAMS, "insights")),
                                    deadletter_topic(CITY)])
    tokens = new_tokens([CITY, "national"])
    common = {"kafka_bootstrap": bootstrap, "mongo_url": mongo, "log_dir": root / "logs",
              "pseudonym_secret": "bench-secret", "die_with_parent": True}
    procs = [ServiceProcess(node=node, service=service, port=free_port(),
                            token_hashes=token_hashes(tokens[node]), **common)
             for node, service in (("national", "evaluation"), (CITY, "sessions"), (CITY, "enrollment"))]
    national, sessions, enrollment = procs
    try:
        for proc in procs:
            await asyncio.to_thread(proc.start, 120)
        auth = {"Authorization": f"Bearer {tokens[CITY]['operator']}"}
        async with httpx.AsyncClient(headers=auth, timeout=30) as http:
            total = int(rate * seconds)
            session_ids = await _prepare_city(http, sessions.url, enrollment.url, total,
                                              session_size)
            baseline = await _settled_count(http, national.url)
            sent: list[float] = []
            seen: list[float] = []

            async def watch() -> None:
                while len(seen) < total:
                    count = (await _city_events(http, national.url) or baseline) - baseline
                    now = time.perf_counter()
                    seen.extend([now] * max(0, min(count, total) - len(seen)))
                    await asyncio.sleep(0.02)

            watcher = asyncio.create_task(watch())
            began = time.perf_counter()
            for i in range(total):
                await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
                sent.append(time.perf_counter())
                r = await http.post(f"{enrollment.url}/enrollments", json={
                    "session_id": session_ids[i % len(session_ids)], "nip": _nip(i),
                    "nominated_by": "self"})
                r.raise_for_status()
            await asyncio.wait_for(watcher, 120)
        latencies = sorted(s - t for s, t in zip(seen, sent, strict=False))
        floor = await _kafka_round_trip(bootstrap, rate, total)
        return {"posts": total, "rate_per_s": rate, "session_size": session_size,
                **_percentiles(latencies, "api_to_national"),
                **_percentiles(floor, "kafka_round_trip")}
    finally:
        for proc in procs:
            proc.stop()


async def _prepare_city(http, sessions_url: str, enrollment_url: str, people: int,
                        size: int) -> list[str]:
    """Staff for `people` enrollments and sessions of `size` seats to enroll them into."""
    start = dt.date.today() + dt.timedelta(days=30)
    session_ids = []
    for _ in range(-(-people // size)):
        r = await http.post(f"{sessions_url}/sessions", json={
            "title": "Bench: Pelayanan Publik Digital", "competency_type": "technical",
            "competency": "e-government", "method": "classroom", "provider": "city", "jp": 8,
            "days": 1, "start_date": str(start), "end_date": str(start),
            "capacity": size, "place": "Aula"})
        r.raise_for_status()
        session_ids.append(r.json()["session_id"])
    rows = ["nip,name,unit,position_type,rank_group"]
    rows += [f"{_nip(i)},Peserta {i},Dinas Kominfo,general,III" for i in range(people)]
    r = await http.post(f"{enrollment_url}/staff/import", content="\n".join(rows).encode(),
                        headers={"Content-Type": "text/csv"})
    r.raise_for_status()
    for _ in range(600):
        items = (await http.get(f"{enrollment_url}/sessions")).json()["items"]
        if set(session_ids) <= {s["session_id"] for s in items}:
            return session_ids
        await asyncio.sleep(0.1)
    raise RuntimeError("the enrollment service never learned the bench sessions")


def _nip(i: int) -> str:
    """A valid, unique NIP per i: birth date, appointment 2015-01, sex digit, sequence."""
    born = dt.date(1985, 1, 1) + dt.timedelta(days=i // 999)
    return f"{born:%Y%m%d}201501{1 + i % 2}{i % 999 + 1:03d}"


async def _city_events(http, national_url: str) -> int | None:
    """The freshness city's event count, or None while the nation is still loading (503)."""
    response = await http.get(f"{national_url}/cities")
    if response.status_code != 200:
        return None
    return next((c["events"] for c in response.json() if c["city"] == CITY), 0)


async def _settled_count(http, national_url: str) -> int:
    """The city's event count once the staff import's events have all arrived."""
    last, stable_since = None, time.perf_counter()
    while last is None or time.perf_counter() - stable_since < 3.0:
        count = await _city_events(http, national_url)
        if count != last:
            last, stable_since = count, time.perf_counter()
        await asyncio.sleep(0.1)
    return last


async def _kafka_round_trip(bootstrap: str, rate: float, total: int) -> list[float]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    name = f"bench.roundtrip.{time.time_ns()}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(name, b"warm-up")
        tp = TopicPartition(name, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        latencies: list[float] = []

        async def receive() -> None:
            while len(latencies) < total:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    now = time.perf_counter()
                    latencies.extend(now - float(r.value) for r in records)

        receiver = asyncio.create_task(receive())
        began = time.perf_counter()
        for i in range(total):
            await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
            await producer.send(name, repr(time.perf_counter()).encode(), partition=0)
        await asyncio.wait_for(receiver, 60)
        return sorted(latencies)
    finally:
        await consumer.stop()
        await producer.stop()


def _percentiles(values: list[float], name: str) -> dict:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {f"{name}_p50_ms": round(q[49] * 1000, 1), f"{name}_p99_ms": round(q[98] * 1000, 1)}


# --- report -------------------------------------------------------------------------------------

def _machine() -> dict:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def _report(r: dict, console) -> None:
    from rich.table import Table

    table = Table(title=f"bangkom bench: {r['dataset']['events']:,} events, one run")
    for column in ("contender", "events", "seconds", "events/s", "peak RSS MiB"):
        table.add_column(column, justify="right" if column != "contender" else "left")
    labels = {"a_ceiling": "(a) Kafka ConsumerPerformance", "b_naive": "(b) naive FastStream + 1 update/event",
              "c_ours": "(c) evaluation rebuild (verified)",
              "d_quix": "(d) Quix Streams, core figures (verified)"}
    for key, label in labels.items():
        row = r[key]
        table.add_row(label, f"{row['events']:,}", f"{row['seconds']:.1f}",
                      f"{row['events_per_s']:,.0f}", f"{row['peak_rss_mib']:.0f}")
    console.print(table)
    ratios, fresh = r["ratios"], r["freshness"]
    lines = [
        f"c/a = {ratios['c_over_a']:.1%} (target >= 40%)   c/b = {ratios['c_over_b']:.1f}x (target >= 10x)"
        f"   c/d = {ratios['c_over_d']:.1f}x (target >= 5x)",
        f"(c) equal to the independent recomputation: {r['c_ours']['verified_equal']};"
        f" (d) equal to it: {r['d_quix']['verified_equal']}",
        f"freshness failed: {fresh['error']}" if "error" in fresh else
        f"freshness at {fresh['rate_per_s']:.0f} POST/s: API->national p50 {fresh['api_to_national_p50_ms']} ms,"
        f" p99 {fresh['api_to_national_p99_ms']} ms; bare Kafka round trip p50"
        f" {fresh['kafka_round_trip_p50_ms']} ms, p99 {fresh['kafka_round_trip_p99_ms']} ms",
        "start-up over {deltas:,} one-event deltas of {partitions} partitions: first load"
        " {first_load_seconds} s (compacting them to {deltas_after:,}), next load"
        " {next_load_seconds} s".format(**r["startup"]),
    ]
    for line in lines:
        console.print(line)
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(r, indent=2))
    print(json.dumps({"ratios": ratios, "freshness": fresh, "verified": r["c_ours"]["verified_equal"],
                      "verified_d": r["d_quix"]["verified_equal"]}))


def main() -> None:
    kind, params = sys.argv[1], json.loads(sys.argv[2])
    runners = {"ceiling": lambda: _ceiling(params), "naive": lambda: asyncio.run(_naive(params)),
               "rebuild": lambda: asyncio.run(_rebuild(params)),
               "startup": lambda: asyncio.run(_startup(params))}
    print(json.dumps(runners[kind]()))


if __name__ == "__main__":
    main()
