"""City console pages owned by the sessions service, and the read-only JSON they need.

Pages: the city dashboard, sessions (calendar, list, form), one session (attendance, tests,
completion), feedback and follow-up (phone-friendly), IKM surveys. `/ui/api/jp` computes each
person's JP credited this year from the stored completions; the dashboard joins it with the
names that only the enrollment service holds, in the browser.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Query, Request

from services.sessions.domain import Session
from shared.events import JP_TARGET
from shared.web import add_pages, common_router, reader

_ALL_SESSIONS = 100_000

router = APIRouter(tags=["web console"])
router.include_router(common_router(home="/ui/dashboard"))
add_pages(router, "dashboard", "sessions", "session", "feedback", "followup", "surveys")


def jp_by_person(sessions: Iterable[Session], year: int) -> dict[str, int]:
    """JP credited per person id by the sessions completed in `year` (certificates issued)."""
    jp: dict[str, int] = defaultdict(int)
    for session in sessions:
        done = session.completion
        if session.status != "completed" or done is None or done.completed_on.year != year:
            continue
        for outcome in done.outcomes:
            if outcome.completed:
                jp[outcome.person_id] += outcome.jp
    return dict(jp)


@router.get("/ui/api/jp", dependencies=[reader("viewer")],
            summary="JP credited per person id in a year, from stored completions")
async def jp_ledger(request: Request,
                    year: int | None = Query(None, ge=2000, le=2100)) -> dict[str, Any]:
    service = request.app.state.sessions
    year = year or service.clock().year
    completed = await service.store.list_sessions(status="completed", limit=_ALL_SESSIONS)
    return {"year": year, "target_jp": JP_TARGET, "jp": jp_by_person(completed, year)}
