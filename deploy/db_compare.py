"""FerretDB v1 on SQLite against FerretDB v1 on PostgreSQL, on the queries a city node makes.

    python -m deploy.db_compare [--staff 20000] [--repeat 30]

For each backend: a fresh FerretDB, the enrollment service's indexes, a city register of
`--staff` people and three years of rosters written through the services' own stores and
outbox, then each query timed `--repeat` times (p50/p99, ms), and FerretDB's `explain` of the
non-`_id` filters (whether the filter reached the backend, and PostgreSQL's plan). Prints one
table and writes bench-results/db-compare-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from deploy.local.paths import REPO_ROOT

UNITS = [f"Dinas {i:02d}" for i in range(40)]


def _staff_docs(n: int) -> list[dict[str, Any]]:
    rng = random.Random(1)
    return [{"_id": f"1980010120050{i:05d}",
             "name": f"Pegawai {rng.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ')}{i:05d}",
             "unit": UNITS[i % len(UNITS)], "position_type": "general", "rank_group": "III/a",
             "sex": "F" if i % 2 else "M", "supervisor_nip": None,
             "_v": 1, "_outbox": [], "_pending": False} for i in range(n)]


def _roster_docs(n: int, per: int) -> list[dict[str, Any]]:
    start = dt.date(2024, 1, 1)
    docs = []
    for s in range(n):
        day = (start + dt.timedelta(days=s % 1095)).isoformat()
        entries = [{"enrollment_id": f"e{s}-{k}", "nip": f"n{k}", "person_id": f"p{k}", "unit": UNITS[k % 40],
                    "position_type": "general", "rank_group": "III", "sex": "F",
                    "nominated_by": "self", "requested_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                    "cancelled_at": None, "cancel_reason": None, "cancel_note": None,
                    "was_waitlisted": False} for k in range(per)]
        docs.append({"_id": f"s{s:05d}", "info": {"session_id": f"s{s:05d}", "start_date": day,
                                                   "end_date": day, "capacity": 40},
                     "status": "open", "enrolled": entries, "waitlist": [], "cancelled": [],
                     "enrollment_ids": [e["enrollment_id"] for e in entries],
                     "seen_events": [], "_v": 1, "_outbox": [], "_pending": False})
    return docs


async def _time(fn, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2)}


async def _measure(url: str, staff: int, sessions: int, repeat: int) -> dict[str, Any]:
    from pymongo import AsyncMongoClient

    from services.enrollment import store
    from shared import outbox

    client = AsyncMongoClient(url, tz_aware=True)
    db = client["city"]
    await store.ensure_indexes(db)
    docs = _staff_docs(staff)
    began = time.perf_counter()
    for i in range(0, len(docs), 1000):
        await db[store.STAFF].insert_many(docs[i:i + 1000])
    load_s = time.perf_counter() - began
    for i in range(0, sessions, 200):
        await db[store.SESSIONS].insert_many(_roster_docs(sessions, 20)[i:i + 200])
    staff_store = store.StaffStore(db, "bench")
    nips = [d["_id"] for d in docs]
    rng = random.Random(2)
    coll = db[store.STAFF]
    results: dict[str, Any] = {"insert_1000_staff_s": round(load_s / (staff / 1000), 3)}

    async def page_first():
        await staff_store.page(unit=None, limit=10, offset=0)

    async def page_unit():
        await staff_store.page(unit=rng.choice(UNITS), limit=100, offset=0)

    async def by_id():
        await staff_store.get(rng.choice(nips))

    async def update_miss():  # a version-checked update that lost its race
        await outbox.update(coll, rng.choice(nips), 99, {"name": "x"}, [])

    async def update_hit():
        nip = rng.choice(nips)
        doc = await coll.find_one({"_id": nip}, {"_v": 1})
        await outbox.update(coll, nip, doc["_v"], {"name": "Pegawai Z"}, [])

    async def roster_write():  # an enrollment: read the roster, write it back guarded
        sid = f"s{rng.randrange(sessions):05d}"
        doc = await db[store.SESSIONS].find_one({"_id": sid})
        doc["enrolled"].append(doc["enrolled"][0])
        await outbox.update(db[store.SESSIONS], sid, doc["_v"], {"enrolled": doc["enrolled"]}, [])

    async def pending_scan():  # the outbox relay's scan
        await coll.find({outbox.PENDING: True}, {"_outbox": 1}).limit(100).to_list()

    async def by_enrollment():
        await db[store.SESSIONS].find_one({"enrollment_ids": f"e{rng.randrange(sessions)}-3"})

    for name, fn in [("staff_page_10", page_first), ("staff_unit_page_100", page_unit),
                     ("staff_by_id", by_id), ("update_version_miss", update_miss),
                     ("update_version_hit", update_hit), ("roster_read_write", roster_write),
                     ("outbox_pending_scan", pending_scan),
                     ("roster_by_enrollment_id", by_enrollment)]:
        results[name] = await _time(fn, repeat)
    explains = {}
    for label, coll_name, flt in [("unit", store.STAFF, {"unit": UNITS[3]}),
                                  ("_pending", store.STAFF, {outbox.PENDING: True}),
                                  ("_id", store.STAFF, {"_id": nips[5]})]:
        try:
            plan = await db.command("explain", {"find": coll_name, "filter": flt}, verbosity="queryPlanner")
            explains[label] = {k: plan.get(k) for k in ("filterPushdown", "sortPushdown", "limitPushdown")
                               } | {"plan": json.dumps(plan.get("queryPlanner"), default=str)[:600]}
        except Exception as error:  # noqa: BLE001 - reported as the finding
            explains[label] = {"error": str(error)[:200]}
    results["explain"] = explains
    await client.close()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--staff", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=1_500)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--backends", default="sqlite,pg")
    args = parser.parse_args(argv)
    from deploy.local.infra import FerretDB, setup
    from deploy.local.process import free_port

    setup()
    out: dict[str, Any] = {"staff": args.staff, "sessions": args.sessions, "repeat": args.repeat,
                           "load_before": os.getloadavg(), "backends": {}}
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bangkom-dbcmp-{backend}-") as root:
            db = FerretDB(port=free_port(), data_dir=Path(root) / "db", backend=backend,
                          die_with_parent=True)
            db.start()
            try:
                out["backends"][backend] = asyncio.run(
                    _measure(db.url, args.staff, args.sessions, args.repeat))
            finally:
                db.stop()
        print(backend, json.dumps(out["backends"][backend], indent=1))
    out["load_after"] = os.getloadavg()
    results = REPO_ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    path = results / f"db-compare-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
