"""City console pages owned by the enrollment service, and the read-only JSON they need.

Pages: staff register with CSV import, enrollment (waitlist and promotions), training needs.
`/ui/api/people` gives the sessions pages (on the peer port) names for person ids; the
dashboard there also reads `/ui/api/cancellations`. Both are reads over the existing stores.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, Query

from shared.web import add_pages, common_router, reader

from .api import get_deps
from .domain import CANCEL_REASONS, Roster
from .handlers import Deps

router = APIRouter(tags=["web console"])
router.include_router(common_router(home="/ui/staff"))
add_pages(router, "staff", "enrollment", "needs")
_PAGE_SIZE = 1000


@router.get("/ui/api/people", dependencies=[reader("viewer")],
            summary="Everyone in the register with name and person id (for the console)")
async def people(deps: Deps = Depends(get_deps)) -> dict[str, Any]:
    """Everyone in the register with their pseudonymous id: the city joins names to JP with it."""
    items: list[dict[str, Any]] = []
    while True:
        total, members = await deps.staff.page(unit=None, limit=_PAGE_SIZE, offset=len(items))
        items += [{"person_id": deps.person_id(m.nip), "nip": m.nip, "name": m.name, "unit": m.unit}
                  for m in members]
        if not members or len(items) >= total:
            return {"total": total, "items": items}


def cancellations_by_reason(rosters: list[Roster], year: int) -> dict[str, int]:
    """Enrollments given up in `year`, by reason (busy, budget, illness, other)."""
    counts = Counter(e.cancel_reason for r in rosters for e in r.cancelled
                     if e.cancelled_at is not None and e.cancelled_at.year == year)
    return {reason: counts.get(reason, 0) for reason in CANCEL_REASONS}


@router.get("/ui/api/cancellations", dependencies=[reader("viewer")],
            summary="Enrollments cancelled in a year, by reason")
async def cancellations(deps: Deps = Depends(get_deps),
                        year: int | None = Query(None, ge=2000, le=2100)) -> dict[str, Any]:
    today = deps.clock().date()
    year = year or today.year
    rosters = await deps.rosters.catalogue(include_past=True, today=today)
    return {"year": year, "by_reason": cancellations_by_reason(rosters, year)}
