"""`bangkom bench city`: one city node at a real city's size, measured in one run.

It starts its own Kafka and FerretDB (the local default backend; `--backend sqlite` for the
other) and the city's enrollment and sessions services, then:

 1. a city of 100 staff: enrollment POSTs (the small-city write p50);
 2. grows it to `--staff` people (CSV imports through the API) and `--years` years of training
    history: sessions with their rosters, attendance and completion, cloned in the database
    from one session run through the API (so every document has the services' own shape);
 3. measures, at that size: an import of `--import-rows` rows (half new people, half moved to
    another unit, so every row is an event), the outbox draining those events (the
    bangkom_outbox_backlog gauge on /metrics back to 0), GET /staff pages, a unit's page and
    one person by NIP, enrollment POSTs into sessions of 40, attendance and completion of a
    40-person session, and `--cohort` enrollments at `--rate` POST/s into one e-learning
    session;
 4. reports each figure against its target and the ratio of the write p50 at full size to
    the write p50 at 100 staff; results in bench-results/city-<time>.json.

The machine's load (os.getloadavg) is recorded before and after: on a shared machine the
figures are noisy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import time
import uuid
from pathlib import Path

import typer

from deploy.local.paths import REPO_ROOT

RESULTS = REPO_ROOT / "bench-results"
CITY = "kota-besar"
SECRET = "bench-city-secret"
UNITS = [f"Dinas {i:02d}" for i in range(60)]
TARGETS = {"import_s": 10.0, "staff_page_p99_ms": 100.0, "enroll_p99_ms": 200.0,
           "outbox_drain_s": 60.0, "write_ratio": 1.5, "cohort_p99_ms": 500.0,
           "cohort_completion_ms": 5000.0}


def _nip(i: int) -> str:
    born = dt.date(1965, 1, 1) + dt.timedelta(days=i // 999)
    return f"{born:%Y%m%d}199001{1 + i % 2}{i % 999 + 1:03d}"


def _pct(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"n": len(s), "p50_ms": round(statistics.median(s) * 1000, 1),
            "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 1)}


def bench_city(
    staff: int = typer.Option(20_000, min=200, help="staff of the city"),
    years: int = typer.Option(3, min=0, help="years of training history"),
    sessions_per_year: int = typer.Option(600, min=0, help="sessions of 40 per year"),
    import_rows: int = typer.Option(10_000, min=10, help="rows of the measured import"),
    samples: int = typer.Option(100, min=10, help="requests per latency figure"),
    cohort: int = typer.Option(1_000, min=0, help="enrollments into one e-learning session"),
    rate: float = typer.Option(20.0, help="POST/s into the cohort"),
    backend: str = typer.Option("", help="FerretDB backend: pg or sqlite (default: the local default)"),
    results_dir: Path = typer.Option(RESULTS, help="where the results file goes"),
) -> None:
    """A city of 20,000 staff and three years of training: import, pages, enrollment, outbox."""
    from rich.console import Console

    from deploy.local.federation import ServiceProcess, new_tokens, token_hashes
    from deploy.local.infra import DB_BACKEND, scratch_ferretdb, scratch_kafka, setup
    from deploy.local.process import free_port, run_coroutine
    from shared.kafka_admin import ensure_topics
    from shared.topics import CITY_STREAMS, deadletter_topic, topic

    console = Console(stderr=True)
    setup(console)
    root, kafka = scratch_kafka("bangkom-bench-city-")
    db = scratch_ferretdb(root, backend or None)
    results: dict = {"started": dt.datetime.now(dt.UTC).isoformat(),
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "load_before": os.getloadavg()},
                     "backend": backend or DB_BACKEND,
                     "params": {"staff": staff, "years": years, "sessions_per_year": sessions_per_year,
                                "import_rows": import_rows, "samples": samples, "cohort": cohort,
                                "rate": rate}}
    procs = []
    try:
        kafka.spawn()
        db.start()
        kafka.wait_ready(90)
        run_coroutine(lambda: ensure_topics(kafka.bootstrap, [
            *(topic(CITY, s) for s in (*CITY_STREAMS, "insights")), deadletter_topic(CITY)]), 60)
        tokens = new_tokens([CITY])
        for service in ("sessions", "enrollment"):
            proc = ServiceProcess(node=CITY, service=service, port=free_port(),
                                  kafka_bootstrap=kafka.bootstrap, mongo_url=db.url,
                                  token_hashes=token_hashes(tokens[CITY]), pseudonym_secret=SECRET,
                                  log_dir=root / "logs", die_with_parent=True,
                                  extra_env={"outbox_gauge_seconds": "1"})
            proc.start(120)
            procs.append(proc)
        sessions, enrollment = procs
        run = CityRun(console, sessions.url, enrollment.url, db.url,
                      {"Authorization": f"Bearer {tokens[CITY]['operator']}"}, results)
        try:
            asyncio.run(run.all(staff, years, sessions_per_year, import_rows, samples, cohort, rate))
            if run._progress is not None:
                run._progress.stop()
        except Exception as error:  # noqa: BLE001 - keep what was measured before it
            if run._progress is not None:
                run._progress.stop()
            results["error"] = _failure(run.stage, error)
            console.print("[red]stopped:[/]")
            console.print(json.dumps(results["error"], indent=1), markup=False, highlight=False)
    finally:
        for proc in procs:
            proc.stop()
        db.stop()
        kafka.stop()
    results["machine"]["load_after"] = os.getloadavg()
    _report(results, console, results_dir)
    if "error" in results:
        raise typer.Exit(1)  # a run that stopped is never taken for one that finished


def _failure(stage: str, error: Exception) -> dict:
    """Where the run stopped: its stage, and for an HTTP failure the request and the answer."""
    import httpx

    said: dict = {"stage": stage, "error": f"{type(error).__name__}: {error}"}
    try:
        request = error.request if isinstance(error, httpx.HTTPError) else None
    except RuntimeError:  # an httpx error raised without its request
        request = None
    if request is not None:
        said["request"] = f"{request.method} {request.url}"
        said["request_body"] = request.content[:300].decode("utf-8", "replace")
    if isinstance(error, httpx.HTTPStatusError):
        said["answer"] = f"{error.response.status_code} {error.response.text[:500]}"
    return said


class CityRun:
    def __init__(self, console, sessions_url: str, enrollment_url: str, mongo_url: str,
                 auth: dict[str, str], results: dict) -> None:
        self.console, self.s_url, self.e_url, self.mongo = console, sessions_url, enrollment_url, mongo_url
        self.auth, self.results = auth, results
        self.person = 0  # next unused person number
        self.stage = "starting"
        self._progress = None

    def bar(self, total: int, unit: str):
        """A progress bar for the stage (counts and rate), only on a terminal: CI logs stay
        plain. Returns advance(n)."""
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                                   TextColumn, TimeElapsedColumn)

        if not self.console.is_terminal:
            return lambda n=1: None
        if self._progress is None:
            self._progress = Progress(TextColumn("  {task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TaskProgressColumn(),
                                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
        task = self._progress.add_task(unit, total=total, rate="")

        def advance(n: int = 1) -> None:
            self._progress.advance(task, n)
            shown = self._progress.tasks[task]
            if shown.elapsed:
                self._progress.update(task, rate=f"{shown.completed / shown.elapsed:,.0f} {unit}/s")
            if shown.finished:
                self._progress.remove_task(task)
        return advance

    def step(self, what: str) -> None:
        self.stage = what
        self.console.print(f"[bold]→[/] {what}  [dim](load {os.getloadavg()[0]:.2f})[/]")

    async def all(self, staff, years, per_year, import_rows, samples, cohort, rate) -> None:
        import httpx

        async with httpx.AsyncClient(headers=self.auth, timeout=300) as http:
            self.http = http
            self.step("a city of 100 staff: enrollment POSTs")
            await self.import_staff(range(0, 100))
            small = await self.enrollments(min(samples, 100), range(0, 100))
            self.results["small_city_enroll"] = _pct(small["latencies"])
            template = small["sessions"][0]
            await self.attend_and_complete(template, min(samples, 100, 40))

            self.step(f"growing the city to {staff:,} staff (imports through the API)")
            began = time.perf_counter()
            for start in range(100, staff, 10_000):
                await self.import_staff(range(start, min(staff, start + 10_000)))
            self.results["seed_staff_s"] = round(time.perf_counter() - began, 1)
            self.step(f"{years} years of history: {years * per_year:,} sessions of 40 with rosters")
            self.results["history_sessions"] = await self.clone_history(template, staff, years * per_year)
            await self.drained(600)

            self.step(f"measured: import of {import_rows:,} rows (half new, half moved)")
            half = import_rows // 2
            moved = [(i, UNITS[(i + 7) % len(UNITS)]) for i in range(100, 100 + half)]
            new = [(i, UNITS[i % len(UNITS)]) for i in range(staff, staff + import_rows - half)]
            report, took = await self.import_rows(moved + new)
            self.results["import"] = {"rows": import_rows, "seconds": round(took, 2),
                                      "created": report["created"], "updated": report["updated"],
                                      "rejected": report["rejected"]}
            self.step("measured: outbox drain of the import's events")
            drained = await self.drained(600)
            self.results["outbox_drain"] = {"events": import_rows, "seconds": drained,
                                            "events_per_s": round(import_rows / drained, 1) if drained else None}

            self.step("measured: GET /staff pages, a unit's page, one person")
            self.results["staff_page_first"] = await self.gets(samples, lambda i: ("/staff", {"limit": 100}))
            self.results["staff_page_deep"] = await self.gets(
                samples, lambda i: ("/staff", {"limit": 100, "offset": 5_000}))
            self.results["staff_unit_page"] = await self.gets(
                samples, lambda i: ("/staff", {"unit": UNITS[i % len(UNITS)], "limit": 100}))
            self.results["staff_by_nip"] = await self.gets(
                samples, lambda i: (f"/staff/{_nip(100 + i * 97 % (staff - 100))}", {}))

            self.step("measured: enrollment POSTs into sessions of 40")
            big = await self.enrollments(samples, range(100, staff))
            self.results["enroll"] = _pct(big["latencies"])
            self.results["write_ratio"] = round(
                self.results["enroll"]["p50_ms"] / self.results["small_city_enroll"]["p50_ms"], 2)
            self.step("measured: attendance and completion of a 40-person session")
            self.results["attendance_completion"] = await self.attend_and_complete(
                big["sessions"][0], min(samples, 40))
            if cohort:
                self.step(f"measured: {cohort:,} enrollments at {rate:g}/s into one e-learning session")
                self.results["cohort"] = await self.cohort(cohort, rate, staff)
                self.step(f"measured: attendance and completion of the {cohort:,}-person session")
                self.results["attendance_completion_cohort"] = await self.attend_and_complete(
                    self.results["cohort"].pop("session_id"), self.results["cohort"]["enrolled"])

    # --- steps --------------------------------------------------------------------------------

    async def import_staff(self, people: range) -> None:
        await self.import_rows([(i, UNITS[i % len(UNITS)]) for i in people])

    async def import_rows(self, rows: list[tuple[int, str]]) -> tuple[dict, float]:
        text = "nip,nama,unit_kerja,jenis_jabatan,golongan\n" + "".join(
            f"{_nip(i)},Pegawai {i:05d},{unit},umum,III\n" for i, unit in rows)
        began = time.perf_counter()
        r = await self.http.post(f"{self.e_url}/staff/import", content=text.encode(),
                                 headers={"content-type": "text/csv"})
        r.raise_for_status()
        report = r.json()
        advance, done = self.bar(len(rows), "rows"), 0
        while report["status"] == "running":
            await asyncio.sleep(0.2)
            report = (await self.http.get(f"{self.e_url}/staff/imports/{report['job_id']}")).json()
            advance(report["done"] - done)
            done = report["done"]
        advance(len(rows) - done)
        took = time.perf_counter() - began
        if report["status"] != "done" or report["rejected"]:
            raise RuntimeError(f"import failed: {json.dumps(report)[:500]}")
        return report, took

    async def new_session(self, capacity: int, method: str = "classroom") -> str:
        today = dt.date.today().isoformat()
        body = {"title": "Bench: Pelayanan Publik Digital", "competency_type": "technical",
                "competency": "e-government", "method": method, "provider": "city", "jp": 8,
                "days": 1, "start_date": today, "end_date": today, "capacity": capacity}
        body |= {"online_link": "https://lms.example.go.id/c/1"} if method == "e-learning" else {"place": "Aula"}
        r = await self.http.post(f"{self.s_url}/sessions", json=body)
        r.raise_for_status()
        session_id = r.json()["session_id"]
        for _ in range(1200):  # the enrollment service learns it from the sessions topic
            if (await self.http.get(f"{self.e_url}/sessions/{session_id}/roster")).status_code == 200:
                return session_id
            await asyncio.sleep(0.1)
        raise RuntimeError(f"enrollment never learned session {session_id}")

    async def enrollments(self, n: int, people: range) -> dict:
        session_ids = [await self.new_session(40) for _ in range(-(-n // 40))]
        latencies, advance = [], self.bar(n, "enrollments")
        for k in range(n):
            person = people[(self.person + k) % len(people)]
            began = time.perf_counter()
            r = await self.http.post(f"{self.e_url}/enrollments", json={
                "session_id": session_ids[k // 40], "nip": _nip(person), "nominated_by": "self"})
            latencies.append(time.perf_counter() - began)
            r.raise_for_status()
            advance()
        self.person += n
        return {"latencies": latencies, "sessions": session_ids}

    async def attend_and_complete(self, session_id: str, enrolled: int) -> dict:
        deadline = time.monotonic() + 120
        while True:  # the sessions service learns its participants from Kafka
            view = (await self.http.get(f"{self.s_url}/sessions/{session_id}")).json()
            if len(view.get("participants", [])) >= enrolled:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sessions service learned {len(view.get('participants', []))}"
                                   f" of the {enrolled} participants of {session_id} in 120 s")
            await asyncio.sleep(0.1)
        present = view["participants"]
        began = time.perf_counter()
        r = await self.http.post(f"{self.s_url}/sessions/{session_id}/attendance",
                                 json={"day": 1, "present": present})
        r.raise_for_status()
        attended = time.perf_counter() - began
        r = await self.http.post(f"{self.s_url}/sessions/{session_id}/complete",
                                 json={"actual_cost": 4_000_000})
        r.raise_for_status()
        return {"participants": len(present), "attendance_ms": round(attended * 1000, 1),
                "completion_ms": round((time.perf_counter() - began - attended) * 1000, 1)}

    async def clone_history(self, template: str, staff: int, count: int) -> int:
        """`count` copies of the template session in both services' databases, spread over the
        past years, each with its own ids and 40 people of the register."""
        from bson import json_util
        from pymongo import AsyncMongoClient

        from shared.pseudonym import person_id

        client = AsyncMongoClient(self.mongo, tz_aware=True)
        try:
            dbs = {s: client[f"bangkom_{CITY}_{s}".replace("-", "_")] for s in ("enrollment", "sessions")}
            docs = {s: await dbs[s]["sessions"].find_one({"_id": template}) for s in dbs}
            texts = {s: json_util.dumps(d) for s, d in docs.items()}
            roster = docs["enrollment"]["enrolled"]
            old_people = [(e["nip"], e["person_id"], e["enrollment_id"]) for e in roster]
            start_date = docs["enrollment"]["info"]["start_date"]
            batch: dict[str, list] = {s: [] for s in dbs}
            for n in range(count):
                day = (dt.date.today() - dt.timedelta(days=1 + n * 365 * 3 // max(count, 1))).isoformat()
                sid = uuid.uuid4().hex[:16]
                for s, text in texts.items():
                    for k, (nip, pid, eid) in enumerate(old_people):
                        person = 100 + (n * 40 + k) % (staff - 100)
                        new_nip = _nip(person)
                        text = text.replace(nip, new_nip).replace(pid, person_id(new_nip, SECRET))
                        text = text.replace(eid, f"{sid}{k:04d}")
                    doc = json_util.loads(text.replace(template, sid).replace(start_date, day))
                    doc.update({"_outbox": [], "_pending": False})
                    batch[s].append(doc)
                if len(batch["sessions"]) >= 100 or n == count - 1:
                    for s in dbs:
                        await dbs[s]["sessions"].insert_many(batch[s])
                        batch[s] = []
            return count
        finally:
            await client.close()

    async def drained(self, timeout: float) -> float | None:
        """Seconds until the enrollment service's outbox backlog gauge reads 0."""
        began = time.perf_counter()
        seen_pending = False
        while time.perf_counter() - began < timeout:
            text = (await self.http.get(f"{self.e_url}/metrics")).text
            value = next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                          if line.startswith("bangkom_outbox_backlog{")), None)
            seen_pending = seen_pending or bool(value)
            if value == 0 and (seen_pending or time.perf_counter() - began > 3):
                return round(time.perf_counter() - began, 1)
            await asyncio.sleep(0.5)
        return None

    async def gets(self, n: int, request) -> dict:
        latencies, advance = [], self.bar(n, "requests")
        for i in range(n):
            path, params = request(i)
            began = time.perf_counter()
            r = await self.http.get(f"{self.e_url}{path}", params=params)
            latencies.append(time.perf_counter() - began)
            r.raise_for_status()
            advance()
        return _pct(latencies)

    async def cohort(self, n: int, rate: float, staff: int) -> dict:
        session_id = await self.new_session(n, method="e-learning")
        latencies: list[float] = []
        errors = 0
        advance = self.bar(n, "enrollments")

        async def one(k: int) -> None:
            nonlocal errors
            began = time.perf_counter()
            r = await self.http.post(f"{self.e_url}/enrollments", json={
                "session_id": session_id, "nip": _nip(100 + (5_000 + k) % (staff - 100)),
                "nominated_by": "self"})
            latencies.append(time.perf_counter() - began)
            errors += r.status_code >= 400
            advance()

        began = time.perf_counter()
        tasks = []
        for k in range(n):  # open loop: a slow answer does not slow the arrivals
            await asyncio.sleep(max(0.0, began + k / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(k)))
        await asyncio.gather(*tasks)
        roster = (await self.http.get(f"{self.e_url}/sessions/{session_id}/roster")).json()
        return {**_pct(latencies), "errors": errors, "enrolled": len(roster["enrolled"]),
                "waitlisted": len(roster["waitlist"]), "session_id": session_id}


def _report(results: dict, console, results_dir: Path = RESULTS) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"city-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    figures = [
        ("import of rows (s)", results.get("import", {}).get("seconds"), TARGETS["import_s"]),
        ("staff page, first, p99 (ms)", results.get("staff_page_first", {}).get("p99_ms"), TARGETS["staff_page_p99_ms"]),
        ("staff page, offset 5,000, p99 (ms)", results.get("staff_page_deep", {}).get("p99_ms"), TARGETS["staff_page_p99_ms"]),
        ("unit page p99 (ms)", results.get("staff_unit_page", {}).get("p99_ms"), TARGETS["staff_page_p99_ms"]),
        ("person by NIP p99 (ms)", results.get("staff_by_nip", {}).get("p99_ms"), TARGETS["staff_page_p99_ms"]),
        ("enrollment POST p99 (ms)", results.get("enroll", {}).get("p99_ms"), TARGETS["enroll_p99_ms"]),
        ("outbox drain of the import (s)", results.get("outbox_drain", {}).get("seconds"), TARGETS["outbox_drain_s"]),
        ("write p50 ratio, full size / 100 staff", results.get("write_ratio"), TARGETS["write_ratio"]),
        ("cohort POST p99 (ms)", results.get("cohort", {}).get("p99_ms"), TARGETS["cohort_p99_ms"]),
        ("completion of the cohort's session (ms)",
         results.get("attendance_completion_cohort", {}).get("completion_ms"),
         TARGETS["cohort_completion_ms"]),
    ]
    results["against_targets"] = [{"figure": f, "measured": m, "target": t,
                                   "met": m is not None and m <= t} for f, m, t in figures]
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    from rich.table import Table

    table = Table(title=f"bangkom bench city ({results['backend']})")
    for col in ("figure", "measured", "target", "met"):
        table.add_column(col)
    for row in results["against_targets"]:
        table.add_row(row["figure"], str(row["measured"]), str(row["target"]), "yes" if row["met"] else "NO")
    console.print(table)
    console.print(f"results: {path}")
