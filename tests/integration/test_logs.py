"""Every line each service writes is one JSON object, the national service's too; and a broker
outage is a handful of lines (first failure, summaries, recovery), not one per retry.

The three services run under uvicorn as deployed, on the session's real Kafka and FerretDB.
The outage is real: the session's broker is stopped for OUTAGE_SECONDS while the city goes on
working, then started again on the same port and data (its clients' connections are refused
meanwhile: each retries every few hundred milliseconds).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid

import httpx

OUTAGE_SECONDS = 15
SUMMARY_SECONDS = 5  # BANGKOM_OUTAGE_SUMMARY_SECONDS for these services (60 by default)


def await_topic(infra, city: str) -> list:
    import asyncio

    from shared.topics import topic
    return asyncio.run(infra.read_topic(topic(city, "enrollment")))


def entries(proc) -> list[dict]:
    """Every line of the service's log as JSON; a line that is not JSON fails the test.
    (The launcher, deploy/local/process.py, writes a blank line and `--- start ...` before
    each start: those are its own, not the service's.)"""
    lines = proc.log_path.read_text().splitlines()
    parsed = []
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("--- start "):
            continue
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{proc.log_path.name} line {number} is not JSON: {line[:200]}") from None
    return parsed


def recovered(proc, start: int) -> list[dict]:
    return [e for e in entries(proc)[start:] if e.get("outcome") == "recovered"]


def test_every_line_is_json_and_an_outage_is_a_few_lines(infra) -> None:
    city = f"logkota-{uuid.uuid4().hex[:4]}"
    quick = {"outage_summary_seconds": str(SUMMARY_SECONDS), "outbox_poll_seconds": "0.05"}
    enrollment = infra.start_service(city, "enrollment", **quick)
    sessions = infra.start_service(city, "sessions", **quick)
    national = infra.start_service("national", "evaluation", **quick,
                                   mongo_db=f"logs_national_{uuid.uuid4().hex[:6]}")
    procs = [enrollment, sessions, national]
    auth = infra.auth(city)
    with httpx.Client(timeout=30, headers=auth) as http:
        http.post(f"{enrollment.url}/staff", content=b'{"nip": ', headers={"content-type": "application/json"})
        http.get(f"{sessions.url}/sessions")
        http.get(f"{national.url}/figures")
        http.get(f"{national.url}/no/such/page")
        before = {p.name: len(entries(p)) for p in procs}

        infra.kafka.stop()
        try:
            stopped = time.monotonic()
            n = 0
            while time.monotonic() - stopped < OUTAGE_SECONDS:  # the city keeps working
                n += 1
                r = http.post(f"{enrollment.url}/staff", json={
                    "nip": f"198503152010121{n:03d}", "name": f"Pegawai {n}",
                    "unit": "Bappeda", "position_type": "general", "rank_group": "III/a"})
                assert r.status_code in (200, 201), r.text
                time.sleep(1)
        finally:
            infra.kafka.start(timeout=90)
        # the lag report (every 15 s) fails through the outage and says when it works again
        deadline = time.monotonic() + 60
        while not recovered(enrollment, before[enrollment.name]):
            assert time.monotonic() < deadline, "the end of the outage was never logged"
            time.sleep(1)
        for proc in procs:
            assert http.get(f"{proc.url}/health").status_code == 200

    for proc in procs:
        proc.stop()
    for proc in procs:
        found = entries(proc)
        assert found, f"{proc.name} wrote nothing"
        assert all({"time", "level", "logger", "message", "node", "service"} <= set(e) for e in found)
        assert {e["service"] for e in found} == {proc.service}
        during = [e for e in found[before[proc.name]:] if e["level"] in ("WARNING", "ERROR", "CRITICAL")]
        # one line for the first failure of each kind, then at most one per summary period;
        # one per retry was hundreds (the suppressed counts below say how many)
        last_seen: dict[tuple[str, str], float] = {}
        for e in during:
            kind = (e["logger"], re.sub(r"\d+|\(.*more like this.*\)", "", e["message"])[:60])
            at = dt.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
            if kind in last_seen:
                assert at - last_seen[kind] >= SUMMARY_SECONDS - 0.5, (proc.name, kind, e["time"])
            last_seen[kind] = at
        assert len(during) <= 80, (proc.name, len(during))
    city_lines = entries(enrollment)[before[enrollment.name]:]
    outage = [e for e in city_lines if e.get("outcome") == "outage"]
    assert outage and "failing" in outage[0]["message"]
    # the broker's client library retried hundreds of times: its lines were thinned, and said so
    assert any("more like this in the last" in e["message"] for e in city_lines
               if e["logger"].startswith("aiokafka"))
    # and nothing was lost: every staff member registered during the outage reached Kafka
    registered = [r for r in await_topic(infra, city) if b"bangkom.staff.registered.v1" in r.value]
    assert len(registered) == n
