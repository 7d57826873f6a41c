"""In-memory stand-ins for services.enrollment.store with the same version semantics."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from dataclasses import dataclass, replace
from typing import Any

from services.enrollment.domain import Roster, StaffMember
from services.enrollment.handlers import Deps
from shared.events import EventData, TrainingNeedSubmitted

SECRET = "unit-test-secret"
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Record:
    member: StaffMember
    version: int


class FakeStaff:
    def __init__(self) -> None:
        self.docs: dict[str, Record] = {}
        self.events: list[EventData] = []
        self.writes = 0

    async def get(self, nip: str) -> Record | None:
        return self.docs.get(nip)

    async def get_many(self, nips) -> dict[str, Record]:
        return {n: self.docs[n] for n in nips if n in self.docs}

    async def put(self, member, previous, events) -> bool:
        current = self.docs.get(member.nip)
        if (current and current.version) != (previous and previous.version):
            return False
        self.docs[member.nip] = Record(member, (current.version if current else 0) + 1)
        self.events.extend(events)
        self.writes += 1
        return True

    async def create_many(self, members) -> set[str]:
        existed = {m.nip for m, _ in members if m.nip in self.docs}
        for member, events in members:
            if member.nip not in existed:
                await self.put(member, None, events)
        return existed

    async def page(self, *, unit, limit, offset):
        members = sorted((r.member for r in self.docs.values() if not unit or r.member.unit == unit),
                         key=lambda m: (m.unit, m.name, m.nip))
        return len(members), members[offset:offset + limit]


class FakeRosters:
    def __init__(self) -> None:
        self.docs: dict[str, Roster] = {}
        self.events: list[EventData] = []
        self.interfere = 0  # how many of the next saves lose a race against another writer

    def _copy(self, roster: Roster | None) -> Roster | None:
        return replace(copy.deepcopy(roster), events=[]) if roster else None

    async def get(self, session_id: str) -> Roster | None:
        return self._copy(self.docs.get(session_id))

    async def by_enrollment(self, enrollment_id: str) -> Roster | None:
        return self._copy(next((r for r in self.docs.values() if enrollment_id in r.enrollment_ids()), None))

    async def save(self, roster: Roster) -> bool:
        current = self.docs.get(roster.info.session_id)
        if self.interfere and current is not None:
            self.interfere -= 1
            current.version += 1
            return False
        if (current.version if current else 0) != roster.version:
            return False
        roster.version += 1
        self.docs[roster.info.session_id] = self._copy(roster)
        self.events.extend(roster.events)
        return True

    async def catalogue(self, *, include_past: bool, today: dt.date) -> list[Roster]:
        return [self._copy(r) for r in sorted(self.docs.values(), key=lambda r: r.info.start_date)
                if include_past or r.info.start_date >= today]


class FakeNeeds:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.events: list[EventData] = []

    async def add(self, need: TrainingNeedSubmitted, *, submitted_at) -> bool:
        if any(d["need_id"] == need.need_id for d in self.docs):
            return False
        self.docs.append({**need.model_dump(), "submitted_at": submitted_at})
        self.events.append(need)
        return True

    async def get(self, need_id: str):
        found = [d for d in self.docs if d["need_id"] == need_id]
        return TrainingNeedSubmitted(**{k: v for k, v in found[0].items() if k != "submitted_at"}) if found else None

    async def search(self, *, plan_year, unit):
        return [dict(d) for d in self.docs
                if (plan_year is None or d["plan_year"] == plan_year) and (not unit or d["unit"] == unit)]


def fake_deps(city: str = "salatiga") -> Deps:
    ids = itertools.count(1)
    return Deps(staff=FakeStaff(), rosters=FakeRosters(), needs=FakeNeeds(), city=city,
                pseudonym_secret=SECRET, clock=lambda: NOW, new_id=lambda: f"id-{next(ids)}")
