"""The outbox gauges tell the truth: with the relay paused, an import of 5,000 staff shows a
backlog of 5,000 on /metrics (the relay's page is 100 documents) and an age that grows, which
is what the BangkomOutboxStuck alert (deploy/prometheus/alerts_test.yml) reads."""

from __future__ import annotations

import datetime as dt
import re

import httpx

from shared import outbox

CITY = "gaugekota"
STAFF = 5_000


def _nip(i: int) -> str:
    born = dt.date(1975, 1, 1) + dt.timedelta(days=i // 999)
    return f"{born:%Y%m%d}200001{1 + i % 2}{i % 999 + 1:03d}"


def _gauge(text: str, name: str) -> float | None:
    match = re.search(rf'^{name}{{node="{CITY}",service="enrollment"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


async def test_backlog_counts_every_pending_event_and_the_age_grows(infra, eventually):
    assert STAFF > 10 * outbox.PAGE  # more than any relay round sees
    service = infra.start_service(CITY, "enrollment", fault="relay-paused",
                                  outbox_gauge_seconds="0.5")
    rows = [f"{_nip(i)},Pegawai Uji {i},Dinas {i % 30},umum,III" for i in range(STAFF)]
    csv = "nip,nama,unit_kerja,jenis_jabatan,golongan\n" + "\n".join(rows) + "\n"
    async with httpx.AsyncClient(base_url=service.url, headers=infra.auth(CITY), timeout=60) as http:
        answer = await http.post("/staff/import", content=csv, headers={"content-type": "text/csv"})
        assert answer.status_code in (200, 202), answer.text
        job = answer.json()

        async def finished():
            state = (await http.get(f"/staff/imports/{job['job_id']}")).json()
            return state if state["status"] == "done" else None

        report = await eventually(finished, timeout=240)
        assert report and report["created"] == STAFF and report["rejected"] == 0

        async def metrics():
            return (await http.get("/metrics")).text

        async def full_backlog():
            text = await metrics()
            return text if _gauge(text, "bangkom_outbox_backlog") == STAFF else None

        first = await eventually(full_backlog, timeout=60)
        assert first, "the backlog gauge never showed every pending event"
        age = _gauge(first, "bangkom_outbox_oldest_age_seconds")
        assert age and age > 0

        async def older():  # the next measurement (each reads the 5,000 pending documents)
            text = await metrics()
            return text if _gauge(text, "bangkom_outbox_oldest_age_seconds") > age + 1 else None

        later = await eventually(older, timeout=60)
        assert later, "the oldest event's age did not grow"
        assert _gauge(later, "bangkom_outbox_backlog") == STAFF  # nothing was published
