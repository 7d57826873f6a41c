"""The national dashboard, served at `/` by the evaluation service.

The page reads the existing public aggregate API (`/figures`, `/timeseries`): no personal data
exists on this side, so the page needs no sign-in and no endpoint of its own.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from shared.web import common_router, page

router = APIRouter(tags=["web console"])
router.include_router(common_router(home=None, sign_in=False))


@router.get("/", include_in_schema=False)
async def national_dashboard() -> FileResponse:
    return page("national")
