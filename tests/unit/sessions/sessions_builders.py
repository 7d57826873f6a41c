"""Builders shared by the sessions unit tests."""

import datetime as dt
import hashlib
import uuid

from services.sessions import domain
from shared.events import EnrollmentCancelled, EnrollmentCreated, EnrollmentPromoted, EnrollmentWaitlisted

START = dt.date(2026, 11, 2)


def pid(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()  # 32 hex chars, like a real person_id


def plan(**overrides) -> domain.SessionPlan:
    fields = dict(
        title="Pengelolaan Keuangan Daerah", competency_type="technical",
        competency="regional finance", method="classroom", provider="ministry",
        speakers=["Dr. Rina"], jp=30, days=5, start_date=START,
        end_date=START + dt.timedelta(days=4), place="Aula BKPSDM", capacity=20,
        planned_cost=12_500_000,
    )
    return domain.SessionPlan(**(fields | overrides))


def created(person: str, session_id: str = "S1", enrollment_id: str | None = None):
    return EnrollmentCreated(
        session_id=session_id, person_id=pid(person), enrollment_id=enrollment_id or f"e-{person}",
        nominated_by="supervisor", unit="Dinas Pendidikan", position_type="functional",
        rank_group="III", sex="F",
    )


def waitlisted(person: str, session_id: str = "S1"):
    return EnrollmentWaitlisted(
        session_id=session_id, person_id=pid(person), enrollment_id=f"e-{person}",
        nominated_by="self", unit="Bappeda", position_type="general", rank_group="II", sex="M",
        position=1,
    )


def promoted(person: str, session_id: str = "S1"):
    return EnrollmentPromoted(session_id=session_id, person_id=pid(person), enrollment_id=f"e-{person}")


def cancelled(person: str, session_id: str = "S1", enrollment_id: str | None = None):
    return EnrollmentCancelled(
        session_id=session_id, person_id=pid(person), enrollment_id=enrollment_id or f"e-{person}",
        reason="busy", was_waitlisted=False,
    )


def with_roster(session: domain.Session, *people: str) -> domain.Session:
    for person in people:
        session, _ = domain.apply_enrollment(session, str(uuid.uuid4()), created(person, session.session_id))
    return session




class FakeSessionStore:
    """In-memory stand-in for MongoSessionStore, with the same version guard and outbox."""

    def __init__(self):
        self.sessions: dict[str, tuple[dict, int]] = {}
        self.feedback: dict[str, dict] = {}
        self.surveys: dict[str, dict] = {}
        self.insights: dict[str, dict] = {}
        self.staged = []  # every envelope written, in order

    async def add_session(self, session, events):
        from pymongo.errors import DuplicateKeyError
        if session.session_id in self.sessions:
            raise DuplicateKeyError("duplicate _id")
        self.sessions[session.session_id] = (session.model_dump(mode="json"), 1)
        self.staged += events

    async def get_session(self, session_id):
        if session_id not in self.sessions:
            return None
        doc, version = self.sessions[session_id]
        return domain.Session.model_validate(doc), version

    async def save_session(self, session, version, events):
        if self.sessions[session.session_id][1] != version:
            return False
        self.sessions[session.session_id] = (session.model_dump(mode="json"), version + 1)
        self.staged += events
        return True

    async def list_sessions(self, *, status=None, limit=200):
        found = [domain.Session.model_validate(d) for d, _ in self.sessions.values()]
        return [s for s in found if status in (None, s.status)][:limit]

    async def add_feedback(self, record, events):
        self.feedback[record["feedback_id"]] = record
        self.staged += events

    async def add_survey(self, record, events):
        if record["survey_id"] in self.surveys:
            return False
        self.surveys[record["survey_id"]] = record
        self.staged += events
        return True

    async def list_surveys(self):
        return list(self.surveys.values())

    async def add_insight(self, record):
        stored = self.insights.get(record["insight_id"])
        if stored is not None and stored["published_at"] >= record["published_at"]:
            return False
        self.insights[record["insight_id"]] = record
        return True

    async def list_insights(self):
        return list(self.insights.values())

    def staged_types(self):
        return [e.type.split(".")[1] + "." + e.type.split(".")[2] for e in self.staged]
