"""MongoDB adapter of the enrollment service: documents <-> domain objects, via the outbox.

Every state change and the events it causes are one single-document write (`shared.outbox`),
guarded by the document's `_v`: a `save` that returns False lost a race and the caller retries.
Collections: `staff` (_id = NIP), `sessions` (one roster per session, _id = session id),
`needs` (_id = need id). NIPs and names live only here, never in an event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared import outbox
from shared.events import Envelope, EventData, TrainingNeedSubmitted

from .domain import Enrollment, Participant, Roster, SessionInfo, StaffMember

SERVICE = "enrollment"
STAFF, SESSIONS, NEEDS = "staff", "sessions", "needs"
COLLECTIONS = (STAFF, SESSIONS, NEEDS)
_LOOKUPS = 8  # concurrent lookups by NIP (an import, a roster's names)


@dataclass(frozen=True)
class StaffRecord:
    member: StaffMember
    version: int


async def ensure_indexes(db: AsyncDatabase) -> None:
    await outbox.ensure_indexes(db, COLLECTIONS)
    await db[STAFF].create_index([("unit", ASCENDING), ("name", ASCENDING)])
    # Cancelling by enrollment id finds its roster through this flat array of ids.
    await db[SESSIONS].create_index("enrollment_ids")
    await db[SESSIONS].create_index("info.start_date")
    await db[NEEDS].create_index([("plan_year", ASCENDING), ("unit", ASCENDING)])


def _wrap(events: Iterable[EventData], city: str, at: dt.datetime | None = None) -> list[Envelope]:
    return [Envelope.wrap(e, city=city, service=SERVICE, time=at) for e in events]


# --- staff -------------------------------------------------------------------------------------

_STAFF_FIELDS = ("name", "unit", "position_type", "rank_group", "sex", "supervisor_nip")


def _staff_doc(member: StaffMember) -> dict[str, Any]:
    return {field: getattr(member, field) for field in _STAFF_FIELDS}


def _staff_record(doc: dict[str, Any]) -> StaffRecord:
    member = StaffMember(nip=doc["_id"], **{f: doc.get(f) for f in _STAFF_FIELDS})
    return StaffRecord(member, doc[outbox.VERSION])


class StaffStore:
    def __init__(self, db: AsyncDatabase, city: str):
        self.coll = db[STAFF]
        self.city = city
        self._total: int | None = None  # the register's size, once counted

    async def get(self, nip: str) -> StaffRecord | None:
        doc = await self.coll.find_one({"_id": nip}, {outbox.OUTBOX: 0})
        return _staff_record(doc) if doc else None

    async def get_many(self, nips: Sequence[str]) -> dict[str, StaffRecord]:
        # One `_id` equality each, a few at a time: FerretDB v1 does not push `$in` down to its
        # backend, so one `$in` query converts the whole register (6.7 s for 500 NIPs among
        # 20,000 staff, measured), while an equality is an index lookup (about 5 ms).
        gate = asyncio.Semaphore(_LOOKUPS)

        async def one(nip: str) -> StaffRecord | None:
            async with gate:
                return await self.get(nip)

        records = await asyncio.gather(*(one(nip) for nip in nips))
        return {record.member.nip: record for record in records if record}

    async def put(self, member: StaffMember, previous: StaffRecord | None,
                  events: Sequence[EventData]) -> bool:
        """Insert or update against the version read; False when someone was faster."""
        envelopes = _wrap(events, self.city)
        if previous is None:
            try:
                await outbox.insert(self.coll, {"_id": member.nip, **_staff_doc(member)}, envelopes)
            except DuplicateKeyError:
                return False
            if self._total is not None:
                self._total += 1
            return True
        return await outbox.update(self.coll, member.nip, previous.version, _staff_doc(member),
                                   envelopes)

    async def create_many(self, members: Sequence[tuple[StaffMember, Sequence[EventData]]]) -> set[str]:
        """Insert new people in one round trip; returns the NIPs that existed (not written)."""
        created = [({"_id": m.nip, **_staff_doc(m)}, _wrap(events, self.city)) for m, events in members]
        existed = await outbox.insert_many(self.coll, created)
        if self._total is not None:
            self._total += len(created) - len(existed)
        return existed

    async def page(self, *, unit: str | None, limit: int, offset: int) -> tuple[int, list[StaffMember]]:
        """A unit's staff by name, or the whole register in the order it was registered.

        Shaped for FerretDB v1, which sorts and counts in its own process after converting
        every matching document (a sorted page of 20,000 staff took 8 s on SQLite, 5 s on
        PostgreSQL): a unit is one indexed equality, sorted here; the whole register is read
        in stored order, which stops after offset + limit documents, and its total is counted
        once per process, then kept by the writes (one process per service writes the staff).
        """
        if unit:
            docs = await self.coll.find({"unit": unit}, {outbox.OUTBOX: 0}).to_list()
            docs.sort(key=lambda doc: (doc["name"], doc["_id"]))
            return len(docs), [_staff_record(doc).member for doc in docs[offset:offset + limit]]
        cursor = self.coll.find({}, {outbox.OUTBOX: 0}).skip(offset).limit(limit)
        members = [_staff_record(doc).member async for doc in cursor]
        return await self.total(), members

    async def total(self) -> int:
        if self._total is None:
            # Counted at start (app.py) while nothing much is written; someone created during
            # the count itself may be missing from the total until the next start.
            self._total = await self.coll.count_documents({})
        return self._total


# --- session rosters ---------------------------------------------------------------------------

def _entry_doc(e: Enrollment) -> dict[str, Any]:
    p = e.participant
    return {
        "enrollment_id": e.enrollment_id, "nip": p.nip, "person_id": p.person_id, "unit": p.unit,
        "position_type": p.position_type, "rank_group": p.rank_group, "sex": p.sex,
        "nominated_by": e.nominated_by, "requested_at": e.requested_at,
        "cancelled_at": e.cancelled_at, "cancel_reason": e.cancel_reason,
        "cancel_note": e.cancel_note, "was_waitlisted": e.was_waitlisted,
    }


def _entry(doc: dict[str, Any]) -> Enrollment:
    participant = Participant(doc["nip"], doc["person_id"], doc["unit"], doc["position_type"],
                              doc["rank_group"], doc["sex"])
    return Enrollment(doc["enrollment_id"], participant, doc["nominated_by"], doc["requested_at"],
                      doc.get("cancelled_at"), doc.get("cancel_reason"), doc.get("cancel_note"),
                      doc.get("was_waitlisted"))


def _info_doc(info: SessionInfo) -> dict[str, Any]:
    doc = dict(info.__dict__)
    # BSON has no date type: ISO strings keep the calendar date and still sort correctly.
    doc["start_date"], doc["end_date"] = info.start_date.isoformat(), info.end_date.isoformat()
    return doc


def _info(doc: dict[str, Any]) -> SessionInfo:
    return SessionInfo(**{**doc, "start_date": dt.date.fromisoformat(doc["start_date"]),
                          "end_date": dt.date.fromisoformat(doc["end_date"])})


def _roster_state(roster: Roster) -> dict[str, Any]:
    return {
        "info": _info_doc(roster.info), "status": roster.status,
        "cancelled_reason": roster.cancelled_reason,
        "enrolled": [_entry_doc(e) for e in roster.enrolled],
        "waitlist": [_entry_doc(e) for e in roster.waitlist],
        "cancelled": [_entry_doc(e) for e in roster.cancelled],
        "enrollment_ids": roster.enrollment_ids(),
        "catalogue_time": roster.catalogue_time, "seen_events": roster.seen_events,
    }


def _roster(doc: dict[str, Any]) -> Roster:
    return Roster(
        info=_info(doc["info"]), status=doc["status"], cancelled_reason=doc.get("cancelled_reason"),
        enrolled=[_entry(d) for d in doc.get("enrolled", [])],
        waitlist=[_entry(d) for d in doc.get("waitlist", [])],
        cancelled=[_entry(d) for d in doc.get("cancelled", [])],
        catalogue_time=doc.get("catalogue_time"), seen_events=list(doc.get("seen_events", [])),
        version=doc[outbox.VERSION],
    )


class RosterStore:
    def __init__(self, db: AsyncDatabase, city: str):
        self.coll = db[SESSIONS]
        self.city = city

    async def get(self, session_id: str) -> Roster | None:
        doc = await self.coll.find_one({"_id": session_id}, {outbox.OUTBOX: 0})
        return _roster(doc) if doc else None

    async def by_enrollment(self, enrollment_id: str) -> Roster | None:
        doc = await self.coll.find_one({"enrollment_ids": enrollment_id}, {outbox.OUTBOX: 0})
        return _roster(doc) if doc else None

    async def save(self, roster: Roster) -> bool:
        """Write the roster with the events it recorded; False when the version moved."""
        envelopes = _wrap(roster.events, self.city)
        if roster.version == 0:
            try:
                await outbox.insert(self.coll, {"_id": roster.info.session_id, **_roster_state(roster)},
                                    envelopes)
            except DuplicateKeyError:
                return False
        else:
            if not await outbox.update(self.coll, roster.info.session_id, roster.version,
                                       _roster_state(roster), envelopes):
                return False
        roster.version += 1
        return True

    async def catalogue(self, *, include_past: bool, today: dt.date) -> list[Roster]:
        query = {} if include_past else {"info.start_date": {"$gte": today.isoformat()}}
        cursor = self.coll.find(query, {outbox.OUTBOX: 0}).sort(
            [("info.start_date", ASCENDING), ("_id", ASCENDING)])
        return [_roster(doc) async for doc in cursor]


# --- training needs ----------------------------------------------------------------------------

class NeedStore:
    def __init__(self, db: AsyncDatabase, city: str):
        self.coll = db[NEEDS]
        self.city = city

    async def add(self, need: TrainingNeedSubmitted, *, submitted_at: dt.datetime) -> bool:
        """False when a need with this id exists (an idempotent retry): nothing is written."""
        doc = {"_id": need.need_id, **need.model_dump(exclude={"need_id"}), "submitted_at": submitted_at}
        try:
            await outbox.insert(self.coll, doc, _wrap([need], self.city, submitted_at))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, need_id: str) -> TrainingNeedSubmitted | None:
        doc = await self.coll.find_one({"_id": need_id})
        if doc is None:
            return None
        fields = set(TrainingNeedSubmitted.model_fields) - {"need_id"}
        return TrainingNeedSubmitted(need_id=need_id, **{k: doc[k] for k in fields})

    async def search(self, *, plan_year: int | None, unit: str | None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if plan_year is not None:
            query["plan_year"] = plan_year
        if unit:
            query["unit"] = unit
        cursor = self.coll.find(query, {outbox.OUTBOX: 0, outbox.PENDING: 0, outbox.VERSION: 0}).sort(
            [("plan_year", DESCENDING), ("submitted_at", DESCENDING)])
        return [{"need_id": doc.pop("_id"), **doc} async for doc in cursor]
