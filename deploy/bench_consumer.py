"""`bangkom bench consumer`: how fast a city consumer (shared.kafka.subscribe_events) reads an
enrollment topic, committing each record's offset (COMMIT_EVERY=1) against the batched commits
it uses; one run, one machine, a results file in bench-results/."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
from pathlib import Path

import typer

from deploy.local.paths import REPO_ROOT

RESULTS = REPO_ROOT / "bench-results"


def bench_consumer(staff: int = typer.Option(5_000, min=100, help="staff of the generated city"),
                   results_dir: Path = typer.Option(RESULTS, help="where the results file goes"),
                   ) -> None:
    """Records/s of a city consumer: a commit per record against batched commits."""
    from rich.console import Console

    from deploy.datagen import generate, produce
    from deploy.local.infra import scratch_kafka, setup
    from deploy.local.process import run_coroutine
    from shared.kafka_admin import ensure_topics
    from shared.topics import topic

    console = Console(stderr=True)
    setup(console)
    _, kafka = scratch_kafka("bangkom-bench-consumer-")
    name = topic("palu", "enrollment")
    results: dict = {"started": dt.datetime.now(dt.UTC).isoformat(), "cpus": os.cpu_count(),
                     "staff": staff}
    try:
        kafka.spawn()
        kafka.wait_ready(90)
        run_coroutine(lambda: ensure_topics(kafka.bootstrap, [name], 3), 60)
        records = [r for r in generate(["palu"], seed=1, staff=staff) if r.topic == name]
        results["records"] = run_coroutine(lambda: produce(kafka.bootstrap, iter(records)), 300)
        logging.disable(logging.INFO)  # a line per record would measure the terminal
        for label, every in (("commit_per_record", 1), ("batched", None)):
            console.print(f"[bold]→[/] {label}: {results['records']:,} records")
            results[label] = asyncio.run(_consume(kafka.bootstrap, name, results["records"], every))
    finally:
        kafka.stop()
    per, batched = results["commit_per_record"], results["batched"]
    results["ratio"] = round(batched["records_per_s"] / per["records_per_s"], 1)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"consumer-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    console.print(f"commit per record: {per['records_per_s']:,} records/s; batched: "
                  f"{batched['records_per_s']:,} records/s; ratio {results['ratio']}×")
    console.print(f"results: {path}")


async def _consume(bootstrap: str, name: str, total: int, every: int | None) -> dict:
    from faststream.kafka import KafkaBroker

    import shared.kafka as kafka
    from shared.settings import Settings

    if every is not None:
        kafka.COMMIT_EVERY, saved = every, kafka.COMMIT_EVERY
    settings = Settings(node="palu", service="sessions", kafka_bootstrap=bootstrap)
    broker = KafkaBroker(bootstrap, logger=None)
    seen = {"n": 0, "first": 0.0}

    async def handler(_envelope, _payload) -> str:
        seen["first"] = seen["first"] or time.perf_counter()
        seen["n"] += 1
        return "ignored"  # staff events, as the sessions service's roster consumer sees them

    kafka.subscribe_events(broker, topics=[name], group=f"bench-{time.time_ns()}",
                           settings=settings, handler=handler)
    try:
        await broker.start()
        while seen["n"] < total:
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - seen["first"]
    finally:
        await broker.stop()
        if every is not None:
            kafka.COMMIT_EVERY = saved
    return {"seconds": round(seconds, 2), "records_per_s": round(total / seconds)}
