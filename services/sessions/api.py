"""HTTP entry points of the sessions service: validate the body, call a use case, shape the answer.

Reads need a viewer token of this city, writes an operator token (shared.http.require).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.sessions import domain
from services.sessions.domain import Session
from services.sessions.handlers import SessionsService
from shared.events import PersonId, Score5
from shared.http import require
from shared.idempotency import IdempotencyKey

router = APIRouter(tags=["sessions"])
READ = [require("viewer")]
WRITE = [require("operator")]


def service(request: Request) -> SessionsService:
    return request.app.state.sessions


Service = Annotated[SessionsService, Depends(service)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CancelBody(_Body):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AttendanceBody(_Body):
    day: int = Field(ge=1, le=1000, description="day of the session, or meeting number for mentoring")
    present: list[PersonId] = Field(default_factory=list, max_length=10_000)
    absent: list[PersonId] = Field(default_factory=list, max_length=10_000)


class ScoresBody(_Body):
    kind: Literal["pre", "post"]
    scores: dict[PersonId, domain.Score100] = Field(min_length=1, description="person_id -> 0-100")


class CompleteBody(_Body):
    actual_cost: domain.Rupiah
    completed_on: dt.date | None = Field(None, description="default: today")


class FeedbackBody(_Body):
    content: Score5
    speaker: Score5
    method: Score5
    relevance: Score5
    comment: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None, description="kept in the city, never published")


class FollowUpBody(_Body):
    person_id: PersonId
    applies_skills: bool
    rating: Score5
    weeks_after: int = Field(ge=1, le=520)


def session_view(session: Session) -> dict[str, Any]:
    view = session.model_dump(mode="json", exclude={"applied_events"})
    view["participants"] = session.participants()
    view["completion_rule"] = domain.COMPLETION_RULE
    return view


def session_summary(session: Session) -> dict[str, Any]:
    fields = {
        "session_id", "title", "competency_type", "competency", "method", "provider", "jp",
        "days", "start_date", "end_date", "capacity", "status", "planned_cost", "actual_cost",
    }
    return session.model_dump(mode="json", include=fields) | {
        "participants": len(session.participants())
    }


@router.post("/sessions", status_code=201, dependencies=WRITE, summary="Schedule a session",
             responses={200: {"description": "the session an earlier request with the same "
                                             "Idempotency-Key scheduled; nothing new written"}})
async def schedule_session(body: domain.SessionPlan, sessions: Service,
                           key: IdempotencyKey = None) -> JSONResponse:
    session, created = await sessions.schedule(body, key=key)
    return JSONResponse(session_view(session), status_code=201 if created else 200)


@router.get("/sessions", dependencies=READ, summary="Sessions, latest start first")
async def list_sessions(
    sessions: Service,
    status: Literal["scheduled", "cancelled", "completed"] | None = Query(None),
) -> list[dict[str, Any]]:
    return [session_summary(s) for s in await sessions.list_sessions(status=status)]


@router.get("/sessions/{session_id}", dependencies=READ,
            summary="One session with roster, attendance, scores and completion")
async def get_session(session_id: str, sessions: Service) -> dict[str, Any]:
    return session_view(await sessions.get(session_id))


@router.post("/sessions/{session_id}/cancel", dependencies=WRITE)
async def cancel_session(session_id: str, body: CancelBody, sessions: Service) -> dict[str, Any]:
    return session_view(await sessions.cancel(session_id, body.reason))


@router.post("/sessions/{session_id}/attendance", dependencies=WRITE,
             summary="One day's register (mentoring: one meeting)")
async def record_attendance(
    session_id: str, body: AttendanceBody, sessions: Service
) -> dict[str, Any]:
    session, recorded = await sessions.record_attendance(
        session_id, day=body.day, present=body.present, absent=body.absent
    )
    return {"session_id": session_id, "day": body.day, "recorded": recorded,
            "attendance": session.attendance.get(body.day, {})}


@router.post("/sessions/{session_id}/assessments", dependencies=WRITE,
             summary="Pre-test or post-test scores, 0-100")
async def record_scores(session_id: str, body: ScoresBody, sessions: Service) -> dict[str, Any]:
    session, recorded = await sessions.record_scores(session_id, kind=body.kind, scores=body.scores)
    return {"session_id": session_id, "kind": body.kind, "recorded": recorded,
            "scores": session.model_dump(mode="json")["scores"]}


@router.post("/sessions/{session_id}/complete", dependencies=WRITE,
             summary="Close the session, credit JP, issue certificates")
async def complete_session(
    session_id: str, body: CompleteBody, sessions: Service
) -> dict[str, Any]:
    session = await sessions.complete(
        session_id, actual_cost=body.actual_cost, completed_on=body.completed_on
    )
    return {
        "session_id": session_id, "status": session.status, "jp": session.jp,
        "completion_rule": domain.COMPLETION_RULE,
        "completion": session.completion.model_dump(mode="json"),
    }


@router.post("/sessions/{session_id}/feedback", status_code=201, dependencies=WRITE,
             summary="A participant's reaction; the comment stays in the city")
async def submit_feedback(
    session_id: str, body: FeedbackBody, sessions: Service
) -> dict[str, Any]:
    return await sessions.submit_feedback(session_id, **body.model_dump())


@router.post("/sessions/{session_id}/followups", status_code=201, dependencies=WRITE,
             summary="Whether a participant applies the skills at work, weeks later")
async def record_followup(
    session_id: str, body: FollowUpBody, sessions: Service
) -> dict[str, Any]:
    session = await sessions.record_followup(session_id, **body.model_dump())
    key = f"{body.person_id}-{body.weeks_after}"
    return {"session_id": session_id, **session.followups[key].model_dump(mode="json")}


@router.post("/surveys", status_code=201, dependencies=WRITE, tags=["surveys"],
             summary="A public-satisfaction (IKM) survey of a service unit")
async def record_survey(body: domain.SurveyInput, sessions: Service) -> dict[str, Any]:
    record = await sessions.record_survey(body)
    return record | {"bands": [b._asdict() | {"lowest": float(b.lowest)} for b in domain.IKM_BANDS]}


@router.get("/surveys", dependencies=READ, tags=["surveys"])
async def list_surveys(sessions: Service) -> list[dict[str, Any]]:
    return await sessions.surveys()


@router.get("/insights", dependencies=READ, tags=["insights"],
            summary="What the national evaluation found for this city")
async def list_insights(sessions: Service) -> list[dict[str, Any]]:
    return await sessions.insights()
