"""`bangkom bench federation`: the local federation as `./dev up` starts it, measured in one run.

In a fresh run directory at a port offset (so it can run beside `./dev up`), with the caches
warm: the time `bangkom up` takes (brokers, links, services and the demo data, until every
component is healthy), then each component's memory once the demo data has reached the nation
(proportional set size: shared pages split between their processes), against the targets of
2 minutes and 6 GiB. Results in bench-results/federation-<time>.json; the federation is
stopped and its directory deleted at the end.
"""

from __future__ import annotations

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

RESULTS = REPO_ROOT / "bench-results"
TARGETS = {"up_s": 120.0, "memory_gib": 6.0}


def bench_federation(
    offset: int = typer.Option(2000, help="added to every port of the measured federation"),
    single_broker: bool = typer.Option(False, "--single-broker", help="measure that instead"),
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
        "met": {"up_s": up_s <= TARGETS["up_s"], "memory_gib": total_gib <= TARGETS["memory_gib"]},
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
    Console().print(table)
    console.print(f"results: {path.relative_to(REPO_ROOT)}")


def _fail(console, stderr: str) -> int:
    console.print(f"[red]bangkom up failed:[/]\n{stderr[-3000:]}", markup=True, highlight=False)
    return 1
