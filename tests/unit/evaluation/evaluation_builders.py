"""Builders of hand-made national events for the evaluation unit tests."""

import datetime as dt
import hashlib

from shared import events as ev

CITY = "salatiga"
UNIT = "Dinas Penanaman Modal dan PTSP"


def pid(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()  # 32 hex chars, like a real person_id


def at(month: int, day: int = 10, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, 9, 0, tzinfo=dt.UTC)


def wrap(payload: ev.EventData, when: dt.datetime, city: str = CITY):
    envelope = ev.Envelope.wrap(payload, city=city, service="test", time=when)
    return envelope, payload


def person(name: str, unit: str = UNIT) -> dict:
    return dict(person_id=pid(name), unit=unit, position_type="functional", rank_group="III",
                sex="F")


def registered(name: str, when=None, city: str = CITY):
    return wrap(ev.StaffRegistered(**person(name)), when or at(1, 5), city)


def scheduled(session_id: str, *, jp: int = 10, month: int = 3, method="workshop",
              provider="ministry", competency_type="technical",
              competency="Pengelolaan Keuangan Daerah", planned_cost=10_000_000, city=CITY):
    start = dt.date(2026, month, 2)
    return wrap(ev.SessionScheduled(
        session_id=session_id, title="Pelatihan", competency_type=competency_type,
        competency=competency, method=method, provider=provider, jp=jp, start_date=start,
        end_date=start + dt.timedelta(days=1), days=2, capacity=30, planned_cost=planned_cost,
    ), at(month - 1 if month > 1 else 1, 1), city)


def enrolled(name: str, session_id: str, month: int = 2, city: str = CITY):
    return wrap(ev.EnrollmentCreated(session_id=session_id, enrollment_id=f"{session_id}-{name}",
                                     nominated_by="supervisor", **person(name)), at(month), city)


def waitlisted(name: str, session_id: str, position: int = 1):
    return wrap(ev.EnrollmentWaitlisted(session_id=session_id, enrollment_id=f"{session_id}-{name}",
                                        nominated_by="self", position=position, **person(name)),
                at(2))


def cancelled(name: str, session_id: str, reason: str = "busy", was_waitlisted: bool = False):
    return wrap(ev.EnrollmentCancelled(session_id=session_id, enrollment_id=f"{session_id}-{name}",
                                       person_id=pid(name), reason=reason,
                                       was_waitlisted=was_waitlisted), at(2, 20))


def attended(name: str, session_id: str, day: int, present: bool = True):
    return wrap(ev.AttendanceRecorded(session_id=session_id, person_id=pid(name), day=day,
                                      present=present), at(3, 2))


def assessed(name: str, session_id: str, kind: str, score: float):
    return wrap(ev.AssessmentRecorded(session_id=session_id, person_id=pid(name), kind=kind,
                                      score=score), at(3, 2 if kind == "pre" else 3))


def completed(name: str, session_id: str, *, jp: int = 10, on=dt.date(2026, 3, 3),
              unit: str = UNIT, city: str = CITY):
    return wrap(ev.ParticipantCompleted(
        session_id=session_id, jp=jp, completed_on=on, competency_type="technical",
        method="workshop", provider="ministry", **person(name, unit),
    ), dt.datetime.combine(on, dt.time(16), tzinfo=dt.UTC), city)


def session_completed(session_id: str, participants: int, done: int, actual_cost: int):
    return wrap(ev.SessionCompleted(session_id=session_id, completed_on=dt.date(2026, 3, 3),
                                    participants=participants, completed=done,
                                    actual_cost=actual_cost), at(3, 4))


def feedback(session_id: str, score: int, fid: str):
    return wrap(ev.FeedbackSubmitted(session_id=session_id, feedback_id=fid, content=score,
                                     speaker=score, method=score, relevance=score), at(3, 3))


def followed_up(name: str, session_id: str, applies: bool):
    return wrap(ev.FollowUpRecorded(session_id=session_id, person_id=pid(name),
                                    applies_skills=applies, rating=4, weeks_after=8), at(6))


def surveyed(survey_id: str, period: str, ikm: float, unit: str = UNIT):
    return wrap(ev.PublicSatisfactionSurveyed(
        survey_id=survey_id, unit=unit, period=period, respondents=120,
        element_means=(ikm / 25,) * 9, ikm=ikm,
    ), at(int(period[5:]), 25))


def need(need_id: str, competency: str, staff: int):
    return wrap(ev.TrainingNeedSubmitted(
        need_id=need_id, competency_type="technical", competency=competency, unit=UNIT,
        staff_count=staff, priority="high", source="survey", plan_year=2026,
    ), at(1, 20))
