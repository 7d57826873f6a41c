"""The local federation heals: `bangkom up` brings back whatever was killed hard.

A whole federation (Kafka, PostgreSQL, FerretDB, nine services, the demo data) runs from the real
`bangkom up` in a run directory of its own, at a port offset, so it can run beside `./dev up`
and the other tests. Each component in turn is killed with SIGKILL; `bangkom up` must then have
every component healthy within 60 s, no process of the checkout may be left that the state does
not know, and the national figures must equal a recomputation from the cities' topics (nothing
lost, nothing counted twice). `bangkom down` at the end leaves no process of the checkout.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from deploy.local.federation import Federation, RunState
from deploy.local.process import is_alive, port_holders
from services.evaluation import queries as q
from services.evaluation.figures import Figures
from shared.events import decode
from shared.topics import CITIES, CITY_STREAMS, topic

ROOT = Path(__file__).resolve().parents[2]
OFFSET = 1000  # below the ephemeral range: no free_port() of another test can take one
BANGKOM = str(Path(sys.executable).parent / "bangkom")
HEAL_SECONDS = 60
# The broker, the database's two halves, a city service and the national service.
KILLED = ["kafka", "postgres", "ferretdb", "salatiga-sessions", "national-evaluation"]


def _bangkom(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([BANGKOM, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    root = tmp_path_factory.mktemp("heal") / "run"
    env = {**os.environ, "BANGKOM_RUN_DIR": str(root), "BANGKOM_PORT_OFFSET": str(OFFSET)}
    fed = Federation(console=Console(file=open(os.devnull, "w")), state=RunState(root=root),
                     offset=OFFSET)
    busy = [port for ports in fed.ports().values() for port in ports if port_holders(port)]
    assert not busy, f"ports of the test federation are taken: {busy}"
    try:
        done = _bangkom(env, "up", timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        yield fed, env
    finally:
        _bangkom(env, "down", timeout=300)


def _unhealthy(fed: Federation) -> dict[str, str]:
    return {row["name"]: row["health"] for row in fed.status() if row["health"] != "up"}


def _unknown_processes(fed: Federation) -> list[str]:
    """Processes of the checkout's run directory that no recorded component claims."""
    known = {pid for name in fed.state.components() for pid in fed.state.processes(name)}
    from deploy.local.process import command_line

    return [f"{pid}: {command_line(pid)[:120]}" for pid in fed.state.own_processes()
            if pid not in known]


async def _recomputed(bootstrap: str, topic_records) -> dict:
    scratch = Figures()
    for city in CITIES:
        for stream in CITY_STREAMS:
            for record in await topic_records(bootstrap, topic(city, stream)):
                scratch.apply(*decode(record.value))
    return q.national(scratch)["cities"]


async def _served(url: str) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.get("/figures")
    response.raise_for_status()
    return response.json()["cities"]


async def _figures_match(fed: Federation, topic_records, timeout: float = 90) -> None:
    expected = await _recomputed(fed.kafka_bootstrap, topic_records)
    assert set(expected) == set(CITIES), f"the demo data reached only {sorted(expected)}"
    national = next(s.url for s in fed.services if s.service == "evaluation")
    deadline = time.monotonic() + timeout
    served: dict = {}
    while time.monotonic() < deadline:
        try:
            served = await _served(national)
        except httpx.HTTPError:
            served = {}
        if all(served.get(city) == expected[city] for city in CITIES):
            return
        await asyncio.sleep(1)
    differ = {city: (served.get(city), expected[city]) for city in CITIES
              if served.get(city) != expected[city]}
    raise AssertionError(f"national figures differ from the recomputation: {differ}")


async def test_every_component_killed_hard_is_brought_back_by_up(federation, topic_records):
    fed, env = federation
    assert _unhealthy(fed) == {}
    await _figures_match(fed, topic_records)
    timings = {}
    for name in KILLED:
        entry = fed.state.components()[name]
        # No wrapper: the recorded pid is the server itself, the process holding its port.
        assert entry["pid"] in port_holders(fed.ports()[name][0]), name
        os.kill(entry["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while is_alive(entry["pid"], entry["started"]):
            assert time.monotonic() < deadline, f"{name} survived SIGKILL"
            await asyncio.sleep(0.05)

        began = time.monotonic()
        done = await asyncio.to_thread(_bangkom, env, "up", timeout=HEAL_SECONDS + 60)
        assert done.returncode == 0, f"{name}: {done.stderr[-4000:]}"
        while (unhealthy := await asyncio.to_thread(_unhealthy, fed)):
            assert time.monotonic() - began < HEAL_SECONDS, f"after killing {name}: {unhealthy}"
            await asyncio.sleep(1)
        timings[name] = round(time.monotonic() - began, 1)
        assert fed.state.components()[name]["pid"] != entry["pid"], f"{name} was not restarted"
        assert _unknown_processes(fed) == [], f"after killing {name}"
        await _figures_match(fed, topic_records)
    print(f"healthy again after SIGKILL, seconds: {timings}")

    done = await asyncio.to_thread(_bangkom, env, "down")
    assert done.returncode == 0, done.stderr
    assert fed.state.own_processes() == []
