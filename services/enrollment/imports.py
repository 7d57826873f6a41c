"""Staff imports as jobs: a large CSV is checked at once, then written in the background while
the operator watches its progress (rows done, rows rejected with line and reason).

Each row is its own single-document write, so a job that stops midway (the service killed)
leaves every row either written in full or not at all, and importing the same file again
finishes it: rows already there come back "unchanged". Jobs live in the process (a node runs
one process per service), the newest KEEP of them; a restart forgets them, not their rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .staff_csv import RowError

KEEP = 50
ERRORS_SHOWN = 1_000  # a file of 20,000 bad rows would otherwise make a 2 MB status answer


@dataclass
class ImportJob:
    total: int
    errors: list[RowError]
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = "running"  # running | done | failed
    done: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failure: str | None = None
    error: Exception | None = field(default=None, repr=False)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    finished_at: dt.datetime | None = None
    task: asyncio.Task | None = field(default=None, repr=False)

    def count(self, change: str) -> None:
        setattr(self, change, getattr(self, change) + 1)
        self.done += 1

    def add_error(self, error: RowError) -> None:
        self.errors.append(error)

    @property
    def rejected(self) -> int:
        return len({e.line for e in self.errors})

    def view(self) -> dict[str, Any]:
        errors = sorted(self.errors, key=lambda e: e.line)
        return {"job_id": self.job_id, "status": self.status, "rows": self.total,
                "done": self.done, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected,
                "errors": [{"line": e.line, "field": e.field, "reason": e.reason}
                           for e in errors[:ERRORS_SHOWN]],
                "errors_not_shown": max(0, len(errors) - ERRORS_SHOWN),
                "failure": self.failure, "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


class ImportJobs:
    def __init__(self) -> None:
        self._jobs: dict[str, ImportJob] = {}

    def start(self, job: ImportJob, work: Callable[[ImportJob], Awaitable[None]]) -> ImportJob:
        async def run() -> None:
            try:
                await work(job)
                job.status = "done"
            except Exception as error:  # noqa: BLE001 - the database went away: say so
                job.status, job.failure = "failed", f"stopped after {job.done} rows: {error}"
                job.error = error
            finally:
                job.finished_at = dt.datetime.now(dt.UTC)

        job.task = asyncio.create_task(run(), name=f"staff-import-{job.job_id}")
        self._jobs[job.job_id] = job
        while len(self._jobs) > KEEP:
            oldest = next(iter(self._jobs))
            if self._jobs[oldest].status == "running":
                break
            del self._jobs[oldest]
        return job

    def get(self, job_id: str) -> ImportJob | None:
        return self._jobs.get(job_id)
