"""Use cases of the sessions service: load, let the domain decide, save state and events at once.

The same use cases serve the HTTP API and the Kafka consumers. Changes of one session are taken
one at a time in this process (a striped lock), so ten registers posted at once queue instead of
exhausting their retries; the save stays guarded by the document version all the same, and a
save that loses a race reloads and decides again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import uuid
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from pymongo.errors import DuplicateKeyError

from services.sessions import domain
from services.sessions.domain import Session
from shared import metrics
from shared.errors import ConflictError, DomainError, NotFoundError
from shared.events import Envelope, EventData, InsightPublished
from shared.idempotency import KeyReused, derived_id
from shared.settings import Settings

log = logging.getLogger(__name__)
SERVICE = "sessions"
SAVE_ATTEMPTS = 8
LOCK_STRIPES = 64  # bounded memory, whatever the number of sessions


class SessionStore(Protocol):
    async def add_session(self, session: Session, events: Sequence[Envelope]) -> None: ...
    async def get_session(self, session_id: str) -> tuple[Session, int] | None: ...
    async def save_session(self, session: Session, version: int, events: Sequence[Envelope]) -> bool: ...
    async def list_sessions(self, *, status: str | None = None, limit: int = 200) -> list[Session]: ...
    async def add_feedback(self, record: dict[str, Any], events: Sequence[Envelope]) -> None: ...
    async def add_survey(self, record: dict[str, Any], events: Sequence[Envelope]) -> bool: ...
    async def list_surveys(self) -> list[dict[str, Any]]: ...
    async def add_insight(self, record: dict[str, Any]) -> bool: ...
    async def list_insights(self) -> list[dict[str, Any]]: ...


Decision = Callable[[Session], tuple[Session, list[EventData]]]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SessionsService:
    def __init__(self, store: SessionStore, settings: Settings, clock: Callable[[], dt.datetime] = _utcnow):
        self.store = store
        self.city = settings.node
        self.clock = clock
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

    def _wrap(self, payloads: Sequence[EventData]) -> list[Envelope]:
        now = self.clock()
        return [Envelope.wrap(p, city=self.city, service=SERVICE, time=now) for p in payloads]

    async def _load(self, session_id: str) -> tuple[Session, int]:
        loaded = await self.store.get_session(session_id)
        if loaded is None:
            raise NotFoundError("session_id", f"no session {session_id!r} in {self.city}")
        return loaded

    async def _change(self, session_id: str, decide: Decision) -> tuple[Session, list[EventData]]:
        async with self._locks[zlib.crc32(session_id.encode()) % LOCK_STRIPES]:
            return await self._change_now(session_id, decide)

    async def _change_now(self, session_id: str, decide: Decision) -> tuple[Session, list[EventData]]:
        for _ in range(SAVE_ATTEMPTS):
            session, version = await self._load(session_id)
            new, payloads = decide(session)
            if new == session and not payloads:
                return session, []  # nothing to write: a retried request or a redelivery
            if await self.store.save_session(new, version, self._wrap(payloads)):
                return new, payloads
        raise ConflictError("session", "changed by others too often; try again")

    # --- sessions -------------------------------------------------------------------------

    async def schedule(self, plan: domain.SessionPlan, *, key: str | None = None) -> tuple[Session, bool]:
        """The session scheduled, and False when it is the one an earlier request with the
        same idempotency key already scheduled (nothing new is written)."""
        for _ in range(SAVE_ATTEMPTS):
            # Short ids keep certificate numbers readable; a clash just draws another.
            session_id = (derived_id(key, scope=f"{self.city}/sessions", length=8).upper()
                          if key else secrets.token_hex(4).upper())
            session, payloads = domain.schedule(plan, session_id=session_id, city=self.city)
            try:
                await self.store.add_session(session, self._wrap(payloads))
                return session, True
            except DuplicateKeyError:
                if not key:
                    continue
                first, _ = await self._load(session_id)
                if first.model_dump(include=set(plan.model_fields)) != session.model_dump(
                        include=set(plan.model_fields)):
                    raise KeyReused() from None
                return first, False
        raise ConflictError("session_id", "could not draw a free session id; try again")

    async def cancel(self, session_id: str, reason: str) -> Session:
        session, _ = await self._change(session_id, lambda s: domain.cancel(s, reason))
        return session

    async def record_attendance(
        self, session_id: str, *, day: int, present: list[str], absent: list[str]
    ) -> tuple[Session, int]:
        session, events = await self._change(
            session_id,
            lambda s: domain.record_attendance(s, day=day, present=present, absent=absent),
        )
        return session, len(events)

    async def record_scores(
        self, session_id: str, *, kind: Literal["pre", "post"], scores: dict[str, float]
    ) -> tuple[Session, int]:
        session, events = await self._change(
            session_id, lambda s: domain.record_scores(s, kind=kind, scores=scores)
        )
        return session, len(events)

    async def complete(
        self, session_id: str, *, actual_cost: int, completed_on: dt.date | None = None
    ) -> Session:
        today = self.clock().date()
        session, _ = await self._change(
            session_id,
            lambda s: domain.complete(
                s, completed_on=completed_on or today, actual_cost=actual_cost, today=today
            ),
        )
        # Counted once the completion events are staged: the write is what makes them true.
        credited = session.completion.completed
        metrics.COMPLETIONS.labels(self.city).inc(credited)
        metrics.JP_CREDITED.labels(self.city).inc(credited * session.jp)
        return session

    async def get(self, session_id: str) -> Session:
        session, _ = await self._load(session_id)
        return session

    async def list_sessions(self, *, status: str | None = None) -> list[Session]:
        return await self.store.list_sessions(status=status)

    # --- evaluation inputs ----------------------------------------------------------------

    async def submit_feedback(
        self, session_id: str, *, content: int, speaker: int, method: int, relevance: int,
        comment: str | None,
    ) -> dict[str, Any]:
        session, _ = await self._load(session_id)
        payload = domain.feedback(
            session, feedback_id=uuid.uuid4().hex, content=content, speaker=speaker,
            method=method, relevance=relevance,
        )
        # The comment is stored here only: free text may name people and never leaves the city.
        record = payload.model_dump(mode="json") | {
            "comment": comment, "submitted_at": self.clock()
        }
        await self.store.add_feedback(record, self._wrap([payload]))
        return record

    async def record_followup(
        self, session_id: str, *, person_id: str, applies_skills: bool, rating: int, weeks_after: int
    ) -> Session:
        session, _ = await self._change(
            session_id,
            lambda s: domain.record_followup(
                s, person_id=person_id, applies_skills=applies_skills, rating=rating,
                weeks_after=weeks_after,
            ),
        )
        return session

    async def record_survey(self, data: domain.SurveyInput) -> dict[str, Any]:
        record, payload = domain.survey(data)
        record["recorded_at"] = self.clock()
        if not await self.store.add_survey(record, self._wrap([payload])):
            raise ConflictError(
                "period", f"a survey of {data.unit} for {data.period} is already recorded"
            )
        return record

    async def surveys(self) -> list[dict[str, Any]]:
        return await self.store.list_surveys()

    # --- consumers ------------------------------------------------------------------------

    async def apply_enrollment_event(self, envelope: Envelope, payload: EventData) -> str:
        """Roster from the enrollment stream; returns applied | duplicate | ignored."""
        session_id = getattr(payload, "session_id", None)
        if session_id is None or not hasattr(payload, "enrollment_id"):
            return "ignored"  # staff and needs share the topic; they are not roster facts
        if envelope.city != self.city:
            raise DomainError("city", f"event of {envelope.city} on the {self.city} topic")
        outcome = "ignored"

        def decide(session: Session) -> tuple[Session, list[EventData]]:
            nonlocal outcome
            new, outcome = domain.apply_enrollment(session, str(envelope.id), payload)
            return new, []

        await self._change(session_id, decide)
        if outcome == "ignored":
            log.info("roster: %s for session %s ignored", envelope.type, session_id)
        return outcome

    async def store_insight(self, envelope: Envelope, payload: EventData) -> str:
        if not isinstance(payload, InsightPublished):
            return "ignored"
        record = payload.model_dump(mode="json") | {
            "published_at": envelope.time, "received_at": self.clock(), "source": envelope.source,
        }
        return "applied" if await self.store.add_insight(record) else "duplicate"

    async def insights(self) -> list[dict[str, Any]]:
        return await self.store.list_insights()
