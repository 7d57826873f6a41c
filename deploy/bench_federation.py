"""`bangkom bench federation`: the local federation as `./dev up` starts it, measured in one run.

In a fresh run directory at a port offset (so it can run beside `./dev up`), with the caches
warm: the time `bangkom up` takes (brokers, links, services and the demo data, until every
component is healthy), then each component's memory once the demo data has reached the nation
(proportional set size: shared pages split between their processes), against the targets of
2 minutes and 6 GiB. Then freshness through the link: a person registered at a city
(`POST /staff`) until the nation lists that person's id among the city's staff below 20 JP
(matched by id, not by counting), p50 and p99 over `--samples`; beside it, in the same run, the
bare Kafka round trip (produce, then consume the same record) on that city's broker and on the
national one. Target: p99 within 20x the bare round trip. Results in
bench-results/federation-<time>.json; the federation is stopped and its directory deleted at
the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

from deploy.local.paths import REPO_ROOT
from shared.topics import NATIONAL

RESULTS = REPO_ROOT / "bench-results"
TARGETS = {"up_s": 120.0, "memory_gib": 6.0, "freshness_p99_over_round_trip": 20.0}
CITY = "salatiga"  # the one whose registrations are timed


def bench_federation(
    offset: int = typer.Option(2000, help="added to every port of the measured federation"),
    single_broker: bool = typer.Option(False, "--single-broker", help="measure that instead"),
    samples: int = typer.Option(200, min=10, help="registrations timed through the link"),
) -> None:
    """Time `bangkom up` and the federation's memory; results in bench-results/."""
    from rich.console import Console
    from rich.table import Table

    from deploy.local.federation import Federation, RunState, pss_kib

    console = Console(stderr=True)
    root = Path(tempfile.mkdtemp(prefix="bangkom-bench-federation-")) / "run"
    env = {**os.environ, "BANGKOM_RUN_DIR": str(root), "BANGKOM_PORT_OFFSET": str(offset)}
    bangkom = str(Path(sys.executable).parent / "bangkom")
    load_before = os.getloadavg()
    try:
        console.print(f"[bold]→[/] bangkom up{' --single-broker' if single_broker else ''} "
                      f"in {root} (ports +{offset})")
        began = time.monotonic()
        done = subprocess.run([bangkom, "up", *(["--single-broker"] if single_broker else [])],
                              env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=900)
        up_s = round(time.monotonic() - began, 1)
        if done.returncode != 0:
            raise typer.Exit(_fail(console, done.stderr))
        federation = Federation(state=RunState(root=root), offset=offset)
        time.sleep(10)  # the links and the nation take in the demo year
        memory = {name: round(pss_kib(federation.state.processes(name)) / 1024)
                  for name in federation.state.components()}
        console.print(f"[bold]→[/] freshness: {samples} registrations at {CITY} until the nation "
                      "lists them, and the bare Kafka round trip")
        freshness = asyncio.run(_freshness(federation, samples))
    finally:
        subprocess.run([bangkom, "down"], env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=300)
        shutil.rmtree(root.parent, ignore_errors=True)
    total_gib = round(sum(memory.values()) / 1024, 2)
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": load_before, "load_after": os.getloadavg()},
        "topology": "single-broker" if single_broker else "federated",
        "up_s": up_s, "memory_mib": memory, "memory_gib": total_gib, "targets": TARGETS,
        "freshness": freshness,
        "met": {"up_s": up_s <= TARGETS["up_s"], "memory_gib": total_gib <= TARGETS["memory_gib"],
                "freshness_p99_over_round_trip": freshness["p99_over_round_trip"]
                <= TARGETS["freshness_p99_over_round_trip"]},
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"federation-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")

    table = Table(title=f"bangkom bench federation ({result['topology']})")
    for column in ("figure", "result", "target", "met"):
        table.add_column(column)
    table.add_row("bangkom up, warm caches", f"{up_s} s", f"{TARGETS['up_s']:g} s",
                  "yes" if result["met"]["up_s"] else "NO")
    table.add_row("memory, all components", f"{total_gib} GiB", f"{TARGETS['memory_gib']:g} GiB",
                  "yes" if result["met"]["memory_gib"] else "NO")
    for name, mib in sorted(memory.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {name}", f"{mib} MiB", "", "")
    link, bare = freshness["through_link_ms"], freshness["round_trip_ms"]
    table.add_row(f"city POST → national figure, p50 / p99 ({samples})",
                  f"{link['p50']:g} / {link['p99']:g} ms", "", "")
    for broker, trip in bare.items():
        table.add_row(f"  bare Kafka round trip, {broker} broker, p50 / p99",
                      f"{trip['p50']:g} / {trip['p99']:g} ms", "", "")
    table.add_row("  p99 through the link / p99 bare round trip",
                  f"{freshness['p99_over_round_trip']:g}x",
                  f"{TARGETS['freshness_p99_over_round_trip']:g}x",
                  "yes" if result["met"]["freshness_p99_over_round_trip"] else "NO")
    Console().print(table)
    console.print(f"results: {path.relative_to(REPO_ROOT)}")


def _quantiles(values_s: list[float]) -> dict[str, float]:
    ordered = sorted(values_s)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.50), "p99": at(0.99), "max": round(1000 * ordered[-1], 1),
            "n": len(ordered)}


async def _freshness(federation, samples: int) -> dict:
    """Registrations at CITY timed until the nation lists the person, one at a time; the bare
    round trip on the city's and the nation's broker, measured between them (same load)."""
    import httpx

    from shared.pseudonym import person_id

    tokens = federation.tokens()
    enrollment = next(s.url for s in federation.services
                      if (s.node, s.service) == (CITY, "enrollment"))
    national = next(s.url for s in federation.services if s.service == "evaluation")
    secret = federation.pseudonym_secret()
    year = dt.datetime.now(dt.UTC).year
    through: list[float] = []
    trips: dict[str, list[float]] = {"city": [], "national": []}
    # as the operator on secured brokers: the bench's own topic is nobody else's
    brokers = {"city": federation.kafka_admin(CITY), "national": federation.kafka_admin(NATIONAL)}
    async with httpx.AsyncClient(base_url=enrollment, timeout=30, headers={
            "Authorization": f"Bearer {tokens[CITY]['operator']}"}) as city, \
            httpx.AsyncClient(base_url=national, timeout=30, headers={
                "Authorization": f"Bearer {tokens[CITY]['viewer']}"}) as nation:
        # Registration 0 warms up and is not counted: it waits behind the demo year, which the
        # links and the nation may still be catching up with (measured: over 120 s).
        for n in range(samples + 1):
            # born 1959: no demo person (born from 1967) and no test person (196x) has the NIP
            nip = f"19590101198503{1 + n % 2}{1 + n // 2:03d}"
            began = time.monotonic()
            answer = await city.post("/staff", json={
                "nip": nip, "name": f"Pegawai Ukur {n}", "unit": "Sekretariat Daerah",
                "position_type": "general", "rank_group": "III/a"})
            if answer.status_code != 201:
                raise RuntimeError(f"POST /staff answered {answer.status_code}: {answer.text}")
            wanted = person_id(nip, secret)
            while True:
                listed = await nation.get(f"/cities/{CITY}/below-target", params={"year": year})
                if listed.status_code == 200 and wanted in listed.json()["person_ids"]:
                    break
                limit = 900 if n == 0 else 120
                if time.monotonic() - began > limit:
                    raise RuntimeError(f"registration {n} did not reach the nation in {limit} s")
                await asyncio.sleep(0.01)
            if n == 0:
                continue
            through.append(time.monotonic() - began)
            if n % max(1, samples // 50) == 0:  # round trips spread over the same minutes
                for name, bootstrap in brokers.items():
                    trips[name] += await _round_trips(bootstrap, 5)
    round_trip = {name: _quantiles(values) for name, values in trips.items()}
    link = _quantiles(through)
    bare_p99 = max(trip["p99"] for trip in round_trip.values())
    return {"city": CITY, "through_link_ms": link, "round_trip_ms": round_trip,
            "p99_over_round_trip": round(link["p99"] / bare_p99, 1)}


async def _round_trips(kafka, count: int) -> list[float]:
    """Produce one record and consume it back, `count` times: acks=all, as the services do."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from shared.kafka_admin import ensure_topics
    from shared.kafka_auth import client_kwargs
    from shared.settings import Settings

    name = "bangkom-bench.roundtrip"
    await ensure_topics(kafka, [name], partitions=1)
    where = client_kwargs(kafka) if isinstance(kafka, Settings) else {"bootstrap_servers": kafka}
    producer = AIOKafkaProducer(**where, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(**where, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        partition = TopicPartition(name, 0)
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        await consumer.position(partition)
        out = []
        for n in range(count):
            began = time.monotonic()
            await producer.send_and_wait(name, str(n).encode())
            while not (await consumer.getmany(partition, timeout_ms=1000)).get(partition):
                pass
            out.append(time.monotonic() - began)
        return out
    finally:
        await producer.stop()
        await consumer.stop()


def _fail(console, stderr: str) -> int:
    console.print(f"[red]bangkom up failed:[/]\n{stderr[-3000:]}", markup=True, highlight=False)
    return 1
