"""Rules of a city's training sessions: plan, roster, attendance, tests, completion, IKM.

Pure: no I/O and no clock (callers pass `today`). A change returns the new state and the event
payloads it produced, so the store can write both in one document write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.errors import ConflictError, DomainError
from shared.events import (
    AssessmentRecorded, AttendanceRecorded, CompetencyType, EnrollmentCancelled,
    EnrollmentCreated, EnrollmentPromoted, EnrollmentWaitlisted, EventData, FeedbackSubmitted,
    FollowUpRecorded, Method, PositionType, Provider, PublicSatisfactionSurveyed,
    RankGroup, SessionCancelled, SessionCompleted, SessionScheduled, Sex, ParticipantCompleted,
)

# --- the completion rule (stated in every completion response) ----------------------------
MIN_ATTENDANCE_PERCENT = 80  # of the session's days (mentoring: of its planned meetings)
MIN_POST_TEST = 60  # post-test score, 0-100
# A JP is 45 minutes; more than 12 in one day (9 hours of teaching) is a typing error.
MAX_JP_PER_DAY = 12

COMPLETION_RULE = {
    "min_attendance_percent": MIN_ATTENDANCE_PERCENT,
    "min_post_test": MIN_POST_TEST,
    "text": (
        f"completed when present on at least {MIN_ATTENDANCE_PERCENT}% of the session's days "
        f"and post-test score at least {MIN_POST_TEST}; a day without a record counts as absent"
    ),
}

# --- IKM (PermenPANRB 14/2017): the one table of bands; correct it here if the source moves --
IKM_ELEMENTS = 9
IKM_FACTOR = 25


class IkmBand(NamedTuple):
    lowest: Decimal  # inclusive lower bound of the rounded IKM
    grade: str
    label: str  # "mutu pelayanan" as the regulation names it


IKM_BANDS: tuple[IkmBand, ...] = (  # highest first
    IkmBand(Decimal("88.31"), "A", "Sangat Baik"),
    IkmBand(Decimal("76.61"), "B", "Baik"),
    IkmBand(Decimal("65.00"), "C", "Kurang Baik"),
    IkmBand(Decimal("25.00"), "D", "Tidak Baik"),
)

# Methods taught in a room need a place; learning online needs a link.
_NEEDS_PLACE = {"classroom", "workshop", "simulation", "project-based", "mentoring", "blended"}
_NEEDS_LINK = {"e-learning", "blended"}
_PLACE_OR_LINK = {"seminar"}  # a seminar may be a webinar

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Rupiah = Annotated[int, Field(ge=0, le=10**13, description="rupiah")]
Score100 = Annotated[float, Field(ge=0, le=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- commands (what an operator asks for) -------------------------------------------------

class SessionPlan(_Model):
    """What an operator schedules. Speakers, place and link stay in the city."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    competency_type: CompetencyType
    competency: Name
    method: Method
    provider: Provider
    speakers: list[Name] = Field(default_factory=list, max_length=20)
    jp: int = Field(ge=1, le=400)
    days: int = Field(ge=1, le=366)
    start_date: dt.date
    end_date: dt.date
    place: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    online_link: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    capacity: int = Field(ge=1, le=10_000)
    planned_cost: Rupiah = 0


class SurveyInput(_Model):
    unit: Name
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM the survey closed")
    respondents: int = Field(ge=1, le=1_000_000)
    element_means: list[Annotated[float, Field(ge=1, le=4)]] = Field(
        min_length=IKM_ELEMENTS, max_length=IKM_ELEMENTS,
        description="mean score 1-4 of each of the nine service elements",
    )


# --- state --------------------------------------------------------------------------------

class RosterEntry(_Model):
    enrollment_id: str
    status: Literal["participant", "waitlisted", "cancelled"]
    unit: str
    position_type: PositionType
    rank_group: RankGroup
    sex: Sex


class Scores(_Model):
    pre: float | None = None
    post: float | None = None


class Outcome(_Model):
    """How one participant fared against the completion rule."""

    person_id: str
    days_present: int
    attendance_percent: float
    post_test: float | None
    completed: bool
    reason: str | None = None  # why not, in words an operator can act on
    certificate: str | None = None
    jp: int = 0


class Completion(_Model):
    completed_on: dt.date
    actual_cost: int
    participants: int
    completed: int
    outcomes: list[Outcome]


class FollowUp(_Model):
    person_id: str
    applies_skills: bool
    rating: int
    weeks_after: int


class Session(SessionPlan):
    session_id: str
    city: str
    status: Literal["scheduled", "cancelled", "completed"] = "scheduled"
    cancel_reason: str | None = None
    actual_cost: int | None = None
    roster: dict[str, RosterEntry] = Field(default_factory=dict)  # by person_id
    attendance: dict[int, dict[str, bool]] = Field(default_factory=dict)  # day -> person -> present
    scores: dict[str, Scores] = Field(default_factory=dict)
    completion: Completion | None = None
    followups: dict[str, FollowUp] = Field(default_factory=dict)  # "<person>-<weeks>"
    # Ids of the enrollment events already applied: a redelivery is recognised and changes nothing.
    applied_events: list[str] = Field(default_factory=list)

    def participants(self) -> list[str]:
        return sorted(p for p, e in self.roster.items() if e.status == "participant")

    def check_open(self, field: str = "session") -> None:
        if self.status != "scheduled":
            raise ConflictError(field, f"session is {self.status}")

    def check_participant(self, person_id: str, field: str) -> None:
        entry = self.roster.get(person_id)
        if entry is None or entry.status != "participant":
            raise DomainError(field, f"{person_id} is not a participant of this session")


# --- scheduling ---------------------------------------------------------------------------

def is_url(text: str) -> bool:
    parts = urlparse(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in text


def check_plan(plan: SessionPlan) -> None:
    """The rules that span several fields; each failure names the field to fix."""
    if plan.end_date < plan.start_date:
        raise DomainError("end_date", "must be on or after start_date")
    span = (plan.end_date - plan.start_date).days + 1
    if plan.days > span:
        raise DomainError(
            "days", f"{plan.days} days do not fit between start_date and end_date ({span} days)"
        )
    if plan.jp > plan.days * MAX_JP_PER_DAY:
        raise DomainError(
            "jp", f"{plan.jp} JP in {plan.days} days is more than {MAX_JP_PER_DAY} JP a day"
        )
    if plan.online_link and not is_url(plan.online_link):
        raise DomainError("online_link", "must be an http(s) URL")
    if plan.method in _NEEDS_LINK and not plan.online_link:
        raise DomainError("online_link", f"required for method {plan.method}")
    if plan.method in _NEEDS_PLACE and not plan.place:
        raise DomainError("place", f"required for method {plan.method}")
    if plan.method in _PLACE_OR_LINK and not (plan.place or plan.online_link):
        raise DomainError("place", f"a {plan.method} needs a place or an online_link")
    if plan.method == "mentoring":
        if plan.capacity != 1:
            raise DomainError("capacity", "a mentoring session pairs one mentor with one junior: 1")
        if len(plan.speakers) != 1:
            raise DomainError("speakers", "a mentoring session names exactly one mentor")


def schedule(plan: SessionPlan, *, session_id: str, city: str) -> tuple[Session, list[EventData]]:
    check_plan(plan)
    session = Session(**plan.model_dump(), session_id=session_id, city=city)
    event = SessionScheduled(
        session_id=session_id, title=plan.title, competency_type=plan.competency_type,
        competency=plan.competency, method=plan.method, provider=plan.provider, jp=plan.jp,
        start_date=plan.start_date, end_date=plan.end_date, days=plan.days,
        capacity=plan.capacity, planned_cost=plan.planned_cost,
    )
    return session, [event]


def cancel(session: Session, reason: str) -> tuple[Session, list[EventData]]:
    session.check_open()
    new = session.model_copy(deep=True)
    new.status, new.cancel_reason = "cancelled", reason
    return new, [SessionCancelled(session_id=session.session_id, reason=reason)]


# --- roster, learned from the enrollment events -------------------------------------------

RosterOutcome = Literal["applied", "duplicate", "ignored"]


def apply_enrollment(
    session: Session, event_id: str, payload: EventData
) -> tuple[Session, RosterOutcome]:
    """Fold one enrollment event into the roster; the same event twice changes nothing."""
    if event_id in session.applied_events:
        return session, "duplicate"
    if session.status != "scheduled":
        return session, "ignored"  # the roster of a finished session is history
    new = session.model_copy(deep=True)
    current = new.roster.get(getattr(payload, "person_id", ""))
    match payload:
        case EnrollmentCreated() | EnrollmentWaitlisted():
            status = "participant" if isinstance(payload, EnrollmentCreated) else "waitlisted"
            new.roster[payload.person_id] = RosterEntry(
                enrollment_id=payload.enrollment_id, status=status, unit=payload.unit,
                position_type=payload.position_type, rank_group=payload.rank_group,
                sex=payload.sex,
            )
        case EnrollmentPromoted():
            # The waitlisting came first on the same partition, with the dims we keep.
            if current is None or current.enrollment_id != payload.enrollment_id:
                return session, "ignored"
            current.status = "participant"
        case EnrollmentCancelled():
            # A late cancellation of an older enrollment must not remove a newer one.
            if current is None or current.enrollment_id != payload.enrollment_id:
                return session, "ignored"
            current.status = "cancelled"
        case _:
            return session, "ignored"
    if new.roster == session.roster:
        return session, "duplicate"  # same fact under another event id
    new.applied_events.append(event_id)
    return new, "applied"


# --- attendance and tests -----------------------------------------------------------------

def record_attendance(
    session: Session, *, day: int, present: list[str], absent: list[str]
) -> tuple[Session, list[EventData]]:
    """One day's (or, for mentoring, one meeting's) register; unchanged marks emit nothing."""
    session.check_open()
    if not 1 <= day <= session.days:
        raise DomainError("day", f"must be between 1 and {session.days}")
    both = set(present) & set(absent)
    if both:
        raise DomainError("present", f"{sorted(both)[0]} is both present and absent")
    if not present and not absent:
        raise DomainError("present", "name at least one person present or absent")
    marks = {p: True for p in present} | {p: False for p in absent}
    for person_id in marks:
        session.check_participant(person_id, "present" if marks[person_id] else "absent")
    new = session.model_copy(deep=True)
    register = new.attendance.setdefault(day, {})
    events: list[EventData] = []
    for person_id, here in sorted(marks.items()):
        if register.get(person_id) is not here:
            register[person_id] = here
            events.append(AttendanceRecorded(
                session_id=session.session_id, person_id=person_id, day=day, present=here
            ))
    return new, events


def record_scores(
    session: Session, *, kind: Literal["pre", "post"], scores: dict[str, float]
) -> tuple[Session, list[EventData]]:
    session.check_open()
    if not scores:
        raise DomainError("scores", "name at least one person and score")
    for person_id, score in scores.items():
        session.check_participant(person_id, "scores")
        if not 0 <= score <= 100:
            raise DomainError("scores", f"{score} is outside 0-100")
    new = session.model_copy(deep=True)
    events: list[EventData] = []
    for person_id, score in sorted(scores.items()):
        entry = new.scores.setdefault(person_id, Scores())
        if getattr(entry, kind) != score:
            setattr(entry, kind, score)
            events.append(AssessmentRecorded(
                session_id=session.session_id, person_id=person_id, kind=kind, score=score
            ))
    return new, events


# --- completion ---------------------------------------------------------------------------

def meets_completion_rule(days_present: int, days: int, post_test: float | None) -> bool:
    # Integer arithmetic: exactly 80% (4 of 5 days) must pass, with no float rounding doubt.
    return (
        post_test is not None
        and post_test >= MIN_POST_TEST
        and days_present * 100 >= MIN_ATTENDANCE_PERCENT * days
    )


def city_code(city: str) -> str:
    return city.replace("-", "")[:3].upper()


def certificate_number(*, city: str, year: int, session_id: str, seq: int) -> str:
    """`SAL-2026-7F3A09C2-001`: unique because session ids are unique within a city."""
    return f"{city_code(city)}-{year}-{session_id}-{seq:03d}"


def assess(session: Session, person_id: str) -> Outcome:
    present = sum(1 for day in session.attendance.values() if day.get(person_id) is True)
    post = session.scores.get(person_id, Scores()).post
    percent = round(present * 100 / session.days, 1)
    done = meets_completion_rule(present, session.days, post)
    reason = None
    if not done:
        reasons = []
        if present * 100 < MIN_ATTENDANCE_PERCENT * session.days:
            reasons.append(f"attendance {present}/{session.days} days is below {MIN_ATTENDANCE_PERCENT}%")
        if post is None:
            reasons.append("no post-test score")
        elif post < MIN_POST_TEST:
            reasons.append(f"post-test {post:g} is below {MIN_POST_TEST}")
        reason = "; ".join(reasons)
    return Outcome(
        person_id=person_id, days_present=present, attendance_percent=percent,
        post_test=post, completed=done, reason=reason,
    )


def complete(
    session: Session, *, completed_on: dt.date, actual_cost: int, today: dt.date
) -> tuple[Session, list[EventData]]:
    """Close the session: credit JP and number a certificate for everyone who met the rule."""
    session.check_open()
    if completed_on < session.end_date:
        raise DomainError("completed_on", f"is before the session's end_date {session.end_date}")
    if completed_on > today:
        raise DomainError("completed_on", "is in the future")
    if actual_cost < 0:
        raise DomainError("actual_cost", "must be zero or more rupiah")
    participants = session.participants()
    if participants:
        missing = [d for d in range(1, session.days + 1) if not session.attendance.get(d)]
        if missing:
            # Refuse rather than count a forgotten register as everybody absent.
            raise DomainError(
                "attendance", f"no attendance recorded for day {missing[0]}; record it first"
            )
    outcomes = [assess(session, p) for p in participants]
    events: list[EventData] = []
    seq = 0
    for outcome in outcomes:
        if not outcome.completed:
            continue
        seq += 1
        outcome.certificate = certificate_number(
            city=session.city, year=completed_on.year, session_id=session.session_id, seq=seq
        )
        outcome.jp = session.jp
        dims = session.roster[outcome.person_id]
        events.append(ParticipantCompleted(
            session_id=session.session_id, person_id=outcome.person_id, unit=dims.unit,
            position_type=dims.position_type, rank_group=dims.rank_group, sex=dims.sex,
            jp=session.jp, completed_on=completed_on, competency_type=session.competency_type,
            method=session.method, provider=session.provider,
        ))
    new = session.model_copy(deep=True)
    new.status, new.actual_cost = "completed", actual_cost
    new.completion = Completion(
        completed_on=completed_on, actual_cost=actual_cost, participants=len(participants),
        completed=seq, outcomes=outcomes,
    )
    events.append(SessionCompleted(
        session_id=session.session_id, completed_on=completed_on,
        participants=len(participants), completed=seq, actual_cost=actual_cost,
    ))
    return new, events


# --- evaluation inputs --------------------------------------------------------------------

def feedback(
    session: Session, *, feedback_id: str, content: int, speaker: int, method: int, relevance: int
) -> FeedbackSubmitted:
    """Reaction (Kirkpatrick level 1). The free text is kept by the caller, never published."""
    if session.status == "cancelled":
        raise ConflictError("session", "session is cancelled")
    return FeedbackSubmitted(
        session_id=session.session_id, feedback_id=feedback_id, content=content,
        speaker=speaker, method=method, relevance=relevance,
    )


def record_followup(
    session: Session, *, person_id: str, applies_skills: bool, rating: int, weeks_after: int
) -> tuple[Session, list[EventData]]:
    """Behaviour (level 3): does the person apply the skills at work, weeks after the session."""
    if session.status != "completed":
        raise ConflictError("session", "follow-ups are recorded after the session is completed")
    session.check_participant(person_id, "person_id")
    key = f"{person_id}-{weeks_after}"
    followup = FollowUp(
        person_id=person_id, applies_skills=applies_skills, rating=rating, weeks_after=weeks_after
    )
    known = session.followups.get(key)
    if known == followup:
        return session, []  # a retried request
    if known is not None:
        raise ConflictError("weeks_after", f"a follow-up after {weeks_after} weeks is already recorded")
    new = session.model_copy(deep=True)
    new.followups[key] = followup
    return new, [FollowUpRecorded(session_id=session.session_id, **followup.model_dump())]


# --- IKM ----------------------------------------------------------------------------------

def ikm_score(element_means: list[float]) -> Decimal:
    """Mean of the nine equally weighted element means x 25, rounded half-up to 2 decimals."""
    if len(element_means) != IKM_ELEMENTS:
        raise DomainError("element_means", f"needs exactly {IKM_ELEMENTS} element means")
    for mean in element_means:
        if not 1 <= mean <= 4:
            raise DomainError("element_means", f"{mean} is outside 1-4")
    total = sum((Decimal(str(m)) for m in element_means), Decimal(0))
    return (total / IKM_ELEMENTS * IKM_FACTOR).quantize(Decimal("0.01"), ROUND_HALF_UP)


def ikm_band(ikm: Decimal) -> IkmBand:
    for band in IKM_BANDS:
        if ikm >= band.lowest:
            return band
    raise DomainError("element_means", f"IKM {ikm} is below the lowest band")


def survey_id(unit: str, period: str) -> str:
    """One survey per unit and period: a deterministic id turns a resubmission into a conflict."""
    return hashlib.sha256(f"{unit.casefold()}|{period}".encode()).hexdigest()[:16]


def survey(data: SurveyInput) -> tuple[dict, PublicSatisfactionSurveyed]:
    ikm = ikm_score(data.element_means)
    band = ikm_band(ikm)
    record = {
        "survey_id": survey_id(data.unit, data.period), **data.model_dump(),
        "ikm": float(ikm), "grade": band.grade, "label": band.label,
    }
    event = PublicSatisfactionSurveyed(
        survey_id=record["survey_id"], unit=data.unit, period=data.period,
        respondents=data.respondents, element_means=tuple(data.element_means), ikm=float(ikm),
    )
    return record, event

