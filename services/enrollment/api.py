"""HTTP routes of the city enrollment service: parse, call a handler, shape the answer.

Reads need a viewer token, writes an operator token (shared.http.require). Field-level
validation of NIP, rank group and position type is the domain's (400 naming the field);
malformed JSON or a missing field is FastAPI's (422 in the same error format).
"""

from __future__ import annotations

import asyncio
import codecs
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import DomainError, NotFoundError, UnstorableInput
from shared.events import CancelReason, CompetencyType, EnrollmentPromoted
from shared.http import require
from shared.idempotency import IdempotencyKey
from shared.json_guard import unstorable

from . import handlers
from .domain import Enrollment, Roster, StaffMember
from .handlers import Deps

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_OFFSET = 10_000_000  # far beyond any register, and inside the 64 bits the database stores
IMPORT_WAIT_SECONDS = 2.0  # an import that takes longer answers 202 and goes on as a job
router = APIRouter()
viewer, operator = require("viewer"), require("operator")


class PayloadTooLarge(DomainError):
    status, code = 413, "payload_too_large"


class UnsupportedMedia(DomainError):
    status, code = 415, "unsupported_media_type"


def get_deps(request: Request) -> Deps:
    return request.app.state.deps


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StaffIn(_Body):
    nip: str = Field(examples=["198503152010121002"])
    name: str
    unit: str
    position_type: str = Field(examples=["structural", "functional", "general"])
    rank_group: str = Field(examples=["III", "III/a"])
    supervisor_nip: str | None = None


class EnrollmentIn(_Body):
    session_id: str = Field(min_length=1, max_length=64)
    nip: str
    nominated_by: Literal["supervisor", "self"]
    late: bool = Field(False, description="record a participant of a session that already "
                                          "started (an operator catching up with a paper register)")


class CancelIn(_Body):
    reason: CancelReason
    note: str | None = Field(None, max_length=500, description="stays in the city")


class NeedIn(_Body):
    competency_type: CompetencyType
    competency: str
    unit: str
    staff_count: int = Field(ge=1, le=1_000_000)
    priority: Literal["high", "medium", "low"]
    source: Literal["survey", "forum"]
    plan_year: int = Field(ge=2000, le=2100)


# --- views -------------------------------------------------------------------------------------

def staff_view(member: StaffMember) -> dict[str, Any]:
    return {"nip": member.nip, "name": member.name, "unit": member.unit,
            "position_type": member.position_type, "rank_group": member.rank_group,
            "sex": member.sex, "supervisor_nip": member.supervisor_nip}


def session_view(roster: Roster) -> dict[str, Any]:
    info = roster.info
    return {**info.__dict__, "start_date": info.start_date.isoformat(),
            "end_date": info.end_date.isoformat(), "status": roster.status,
            "cancelled_reason": roster.cancelled_reason, "enrolled": len(roster.enrolled),
            "waitlisted": len(roster.waitlist), "seats_left": roster.seats_left}


def enrollment_view(roster: Roster, entry: Enrollment) -> dict[str, Any]:
    if entry.cancelled_at is not None:
        status, position = "cancelled", None
    elif entry in roster.waitlist:
        status, position = "waitlisted", roster.waitlist.index(entry) + 1
    else:
        status, position = "enrolled", None
    return {"enrollment_id": entry.enrollment_id, "session_id": roster.info.session_id,
            "nip": entry.participant.nip, "status": status, "waitlist_position": position,
            "nominated_by": entry.nominated_by, "requested_at": entry.requested_at.isoformat(),
            "cancel_reason": entry.cancel_reason}


# --- staff -------------------------------------------------------------------------------------

@router.post("/staff", tags=["staff"], dependencies=[operator], summary="Register or update a person")
async def post_staff(body: StaffIn, deps: Deps = Depends(get_deps)) -> JSONResponse:
    member = StaffMember.create(**body.model_dump())
    change = await handlers.register_staff(deps, member)
    return JSONResponse({"outcome": change, "staff": staff_view(member)},
                        status_code=201 if change == "created" else 200)


@router.get("/staff", tags=["staff"], dependencies=[viewer])
async def get_staff(
    deps: Deps = Depends(get_deps), unit: str | None = None,
    limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> dict[str, Any]:
    total, members = await handlers.list_staff(deps, unit=unit, limit=limit, offset=offset)
    return {"total": total, "items": [staff_view(m) for m in members]}


@router.get("/staff/{nip}", tags=["staff"], dependencies=[viewer])
async def get_staff_member(nip: str, deps: Deps = Depends(get_deps)) -> dict[str, Any]:
    return staff_view(await handlers.find_staff(deps, nip))


@router.post("/staff/import", tags=["staff"], dependencies=[operator],
             summary="Import a staff CSV (multipart field 'file', or a text/csv body)",
             description="The file is checked at once (a bad header is a 400). Its rows are "
                         "then written by a job: 200 with the report when it ends within "
                         f"{IMPORT_WAIT_SECONDS:.0f} s, else 202 with the job's progress so "
                         "far; follow it at /staff/imports/{job_id}.")
async def import_staff(request: Request, deps: Deps = Depends(get_deps)) -> JSONResponse:
    job = handlers.start_import(deps, await _csv_text(request))
    done, _ = await asyncio.wait([job.task], timeout=IMPORT_WAIT_SECONDS)
    if done and job.error:
        raise job.error  # the database is down: a 503, as for any other write
    return JSONResponse(job.view(), status_code=200 if done else 202)


@router.get("/staff/imports/{job_id}", tags=["staff"], dependencies=[viewer],
            summary="Progress of a staff import: rows done, rows rejected with line and reason")
async def import_progress(job_id: str, deps: Deps = Depends(get_deps)) -> dict[str, Any]:
    job = deps.imports.get(job_id)
    if job is None:
        raise NotFoundError("job_id", "no such import (or the service restarted since: "
                                      "import the file again, rows already there stay unchanged)")
    return job.view()


async def _csv_text(request: Request) -> str:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise DomainError("file", "send the CSV in a multipart field named 'file'")
        raw = await upload.read(MAX_CSV_BYTES + 1)
    elif kind in ("text/csv", "text/plain", "application/csv", "application/vnd.ms-excel"):
        raw = await request.body()
    else:
        raise UnsupportedMedia("content-type", "send text/csv, or multipart/form-data with a 'file'")
    if len(raw) > MAX_CSV_BYTES:
        raise PayloadTooLarge("file", f"larger than {MAX_CSV_BYTES // (1024 * 1024)} MB: split it")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # "Unicode text" of Excel
        text = raw.decode("utf-16", errors="replace")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")  # spreadsheets saved on Windows
    for number, line in enumerate(text.splitlines(), start=1):
        if (reason := unstorable(line)) is not None:  # before any row is written
            raise UnstorableInput("file", f"line {number} {reason}; save the sheet as CSV UTF-8")
    return text


# --- sessions and enrollments ------------------------------------------------------------------

@router.get("/sessions", tags=["sessions"], dependencies=[viewer],
            summary="The session catalogue as learned from the sessions stream")
async def get_sessions(deps: Deps = Depends(get_deps), include_past: bool = False) -> dict[str, Any]:
    rosters = await handlers.catalogue(deps, include_past=include_past)
    return {"items": [session_view(r) for r in rosters]}


@router.get("/sessions/{session_id}/roster", tags=["sessions"], dependencies=[viewer])
async def get_roster(session_id: str, deps: Deps = Depends(get_deps)) -> dict[str, Any]:
    roster, members = await handlers.roster_view(deps, session_id)

    def person(entry: Enrollment, position: int | None = None) -> dict[str, Any]:
        member = members.get(entry.participant.nip)
        return {"enrollment_id": entry.enrollment_id, "nip": entry.participant.nip,
                "name": member.name if member else None, "unit": entry.participant.unit,
                "nominated_by": entry.nominated_by, "requested_at": entry.requested_at.isoformat(),
                **({"position": position} if position else {})}

    return {"session": session_view(roster),
            "enrolled": [person(e) for e in roster.enrolled],
            "waitlist": [person(e, i) for i, e in enumerate(roster.waitlist, start=1)]}


_REPLAYED = {200: {"description": "what an earlier request with the same Idempotency-Key "
                                  "created; nothing new written"}}


@router.post("/enrollments", tags=["enrollments"], dependencies=[operator], status_code=201,
             responses=_REPLAYED)
async def post_enrollment(body: EnrollmentIn, deps: Deps = Depends(get_deps),
                          key: IdempotencyKey = None) -> JSONResponse:
    roster, entry, created = await handlers.enroll_once(deps, key=key, **body.model_dump())
    return JSONResponse(enrollment_view(roster, entry), status_code=201 if created else 200)


@router.post("/enrollments/{enrollment_id}/cancel", tags=["enrollments"], dependencies=[operator])
async def cancel_enrollment(enrollment_id: str, body: CancelIn,
                            deps: Deps = Depends(get_deps)) -> dict[str, Any]:
    roster, entry = await handlers.cancel_enrollment(deps, enrollment_id=enrollment_id, **body.model_dump())
    promoted = [e.enrollment_id for e in roster.events if isinstance(e, EnrollmentPromoted)]
    return {**enrollment_view(roster, entry), "promoted": promoted}


# --- training needs ----------------------------------------------------------------------------

@router.post("/needs", tags=["needs"], dependencies=[operator], status_code=201,
             responses=_REPLAYED)
async def post_need(body: NeedIn, deps: Deps = Depends(get_deps),
                    key: IdempotencyKey = None) -> JSONResponse:
    need, created = await handlers.submit_need(deps, key=key, **body.model_dump())
    return JSONResponse(need.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/needs", tags=["needs"], dependencies=[viewer])
async def get_needs(deps: Deps = Depends(get_deps),
                    plan_year: int | None = Query(None, ge=2000, le=2100),
                    unit: str | None = None) -> dict[str, Any]:
    items = await handlers.list_needs(deps, plan_year=plan_year, unit=unit)
    for item in items:
        item["submitted_at"] = item["submitted_at"].isoformat()
    return {"items": items}
