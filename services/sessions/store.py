"""MongoDB adapter of the sessions service (runs on FerretDB v1 and MongoDB).

A session is one document (`_id` = session id) holding its roster, attendance, scores and
completion; every change is one version-guarded write that also stages its events (shared.outbox).
Feedback and surveys are documents of their own, written with their events the same way.
Insights from the nation are plain documents keyed by insight id, so a redelivery is a no-op.

FerretDB v1 does not make a guarded `update_one` atomic (its issue #3040); shared.outbox takes a
per-document lock around every conditional write, so the `_v` guard below is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared import outbox
from shared.events import Envelope
from services.sessions.domain import Session

SESSIONS, FEEDBACK, SURVEYS, INSIGHTS = "sessions", "feedback", "surveys", "insights"
OUTBOX_COLLECTIONS = (SESSIONS, FEEDBACK, SURVEYS)  # the relay publishes what these stage


def _session_doc(session: Session) -> dict[str, Any]:
    # JSON mode: dates become ISO strings and day numbers string keys, both safe on FerretDB.
    return session.model_dump(mode="json")


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    clean = outbox.clean(doc)
    clean.pop(outbox.VERSION, None)
    clean.pop("_id", None)
    return clean


class MongoSessionStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db

    async def ensure_indexes(self) -> None:
        await outbox.ensure_indexes(self.db, OUTBOX_COLLECTIONS)
        await self.db[SESSIONS].create_index([("start_date", DESCENDING)])
        await self.db[FEEDBACK].create_index("session_id")
        await self.db[SURVEYS].create_index([("period", DESCENDING)])

    # --- sessions -------------------------------------------------------------------------

    async def add_session(self, session: Session, events: Sequence[Envelope]) -> None:
        """DuplicateKeyError propagates: the caller picks another id."""
        await outbox.insert(
            self.db[SESSIONS], {"_id": session.session_id, **_session_doc(session)}, events
        )

    async def get_session(self, session_id: str) -> tuple[Session, int] | None:
        doc = await self.db[SESSIONS].find_one({"_id": session_id}, {outbox.OUTBOX: 0})
        if doc is None:
            return None
        return Session.model_validate(_plain(doc)), doc[outbox.VERSION]

    async def save_session(self, session: Session, version: int, events: Sequence[Envelope]) -> bool:
        """False when the document moved past `version`: reload and decide again."""
        return await outbox.update(
            self.db[SESSIONS], session.session_id, version, _session_doc(session), events
        )

    async def list_sessions(self, *, status: str | None = None, limit: int = 200) -> list[Session]:
        query = {"status": status} if status else {}
        cursor = self.db[SESSIONS].find(query, {outbox.OUTBOX: 0}).sort("start_date", DESCENDING)
        return [Session.model_validate(_plain(d)) async for d in cursor.limit(limit)]

    # --- feedback and surveys -------------------------------------------------------------

    async def add_feedback(self, record: dict[str, Any], events: Sequence[Envelope]) -> None:
        await outbox.insert(self.db[FEEDBACK], {"_id": record["feedback_id"], **record}, events)

    async def add_survey(self, record: dict[str, Any], events: Sequence[Envelope]) -> bool:
        """False when a survey of that unit and period is already recorded."""
        try:
            await outbox.insert(self.db[SURVEYS], {"_id": record["survey_id"], **record}, events)
        except DuplicateKeyError:
            return False
        return True

    async def list_surveys(self, *, limit: int = 500) -> list[dict[str, Any]]:
        cursor = self.db[SURVEYS].find({}, {outbox.OUTBOX: 0}).sort("period", DESCENDING)
        return [_plain(d) async for d in cursor.limit(limit)]

    # --- insights -------------------------------------------------------------------------

    async def add_insight(self, record: dict[str, Any]) -> bool:
        """Keep the newest version of each insight; False when nothing newer arrived (a
        redelivery, or an older version overtaken on the way)."""
        coll = self.db[INSIGHTS]
        try:
            await coll.insert_one({"_id": record["insight_id"], **record})
            return True
        except DuplicateKeyError:
            result = await coll.update_one(
                {"_id": record["insight_id"], "published_at": {"$lt": record["published_at"]}},
                {"$set": record})
            return bool(result.matched_count)

    async def list_insights(self, *, limit: int = 500) -> list[dict[str, Any]]:
        cursor = self.db[INSIGHTS].find({}).sort("received_at", DESCENDING)
        return [_plain(d) async for d in cursor.limit(limit)]

