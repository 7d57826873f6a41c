"""Use cases of the enrollment service: load, let the domain decide, save (retrying lost races).

Entry points (api.py, consumers.py) call these; these call the stores in `Deps`, which the
wiring (app.py) builds from the real database and the unit tests build from in-memory fakes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from shared import metrics
from shared.errors import ConflictError, NotFoundError
from shared.idempotency import KeyReused, derived_id
from shared.events import (
    EnrollmentCancelled, EnrollmentCreated, EnrollmentPromoted, EnrollmentWaitlisted, Envelope,
    EventData, SessionCancelled, SessionScheduled, TrainingNeedSubmitted,
)
from shared.pseudonym import person_id

from . import domain
from .domain import Enrollment, Participant, Roster, StaffChange, StaffMember
from .imports import ImportJob, ImportJobs
from .staff_csv import RowError, parse_staff_csv

T = TypeVar("T")
MAX_ATTEMPTS = 25  # optimistic-concurrency retries before telling the caller to try again
IMPORT_WORKERS = 8  # rows of an import written at once
IMPORT_BATCH = 500  # new people of an import inserted per round trip
_OUTCOMES = {EnrollmentCreated: "enrolled", EnrollmentWaitlisted: "waitlisted",
             EnrollmentPromoted: "promoted", EnrollmentCancelled: "cancelled"}


class StaffRecordLike(Protocol):
    member: StaffMember
    version: int


class StaffRepository(Protocol):
    async def get(self, nip: str) -> StaffRecordLike | None: ...
    async def get_many(self, nips: Sequence[str]) -> dict[str, StaffRecordLike]: ...
    async def put(self, member: StaffMember, previous: StaffRecordLike | None,
                  events: Sequence[EventData]) -> bool: ...
    async def create_many(self, members: Sequence[tuple[StaffMember, Sequence[EventData]]]) -> set[str]: ...
    async def page(self, *, unit: str | None, limit: int, offset: int) -> tuple[int, list[StaffMember]]: ...


class RosterRepository(Protocol):
    async def get(self, session_id: str) -> Roster | None: ...
    async def by_enrollment(self, enrollment_id: str) -> Roster | None: ...
    async def save(self, roster: Roster) -> bool: ...
    async def catalogue(self, *, include_past: bool, today: dt.date) -> list[Roster]: ...


class NeedRepository(Protocol):
    async def add(self, need: TrainingNeedSubmitted, *, submitted_at: dt.datetime) -> bool: ...
    async def get(self, need_id: str) -> TrainingNeedSubmitted | None: ...
    async def search(self, *, plan_year: int | None, unit: str | None) -> list[dict[str, Any]]: ...


def _utcnow() -> dt.datetime:
    # BSON dates hold milliseconds: an answer made now and one read back later must agree
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Deps:
    staff: StaffRepository
    rosters: RosterRepository
    needs: NeedRepository
    city: str
    pseudonym_secret: str = field(repr=False)
    clock: Callable[[], dt.datetime] = _utcnow
    new_id: Callable[[], str] = _new_id
    imports: ImportJobs = field(default_factory=ImportJobs)

    def person_id(self, nip: str) -> str:
        return person_id(nip, self.pseudonym_secret)


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int
    unchanged: int
    rejected: int
    errors: list[RowError]


# --- staff -------------------------------------------------------------------------------------

async def register_staff(deps: Deps, member: StaffMember) -> StaffChange:
    """Register or update one person (POST /staff)."""
    return await _register(deps, member, await deps.staff.get(member.nip))


async def import_staff(deps: Deps, text: str) -> ImportReport:
    """Import a CSV: valid rows are registered, bad rows reported; a re-import changes nothing."""
    job = start_import(deps, text)
    await job.task
    if job.error:
        raise job.error
    return ImportReport(job.created, job.updated, job.unchanged, job.rejected, job.errors)


def start_import(deps: Deps, text: str) -> ImportJob:
    """Check the whole file now (a bad header is the caller's error), write its rows in a job."""
    parsed = parse_staff_csv(text)
    return deps.imports.start(ImportJob(len(parsed.rows), list(parsed.errors)),
                              lambda job: _import_rows(deps, parsed.rows, job))


async def _import_rows(deps: Deps, rows: Sequence[tuple[int, StaffMember]], job: ImportJob) -> None:
    # Rows are independent (the file's duplicates were rejected). Every row is first offered
    # as a new person, in batches of one round trip each: an insert is its own lookup (the
    # `_id` index refuses who is there), cheaper than looking everyone up first. People already
    # registered are then compared and updated one by one.
    one_by_one: list[tuple[int, StaffMember]] = []
    for start in range(0, len(rows), IMPORT_BATCH):
        batch = rows[start:start + IMPORT_BATCH]
        existed = await deps.staff.create_many(
            [(m, domain.register(None, m, person_id=deps.person_id(m.nip))[1]) for _, m in batch])
        for line, member in batch:
            if member.nip in existed:
                one_by_one.append((line, member))
            else:
                job.count("created")
    pending = iter(one_by_one)

    async def worker() -> None:
        for line, member in pending:
            try:
                job.count(await _register(deps, member, await deps.staff.get(member.nip)))
            except ConflictError as error:
                job.add_error(RowError(line, error.field, error.reason))
                job.done += 1

    await asyncio.gather(*(worker() for _ in range(IMPORT_WORKERS)))


async def _register(deps: Deps, member: StaffMember, record: StaffRecordLike | None) -> StaffChange:
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            record = await deps.staff.get(member.nip)
            await _pause(attempt)
        change, events = domain.register(record and record.member, member,
                                         person_id=deps.person_id(member.nip))
        if change == "unchanged" or await deps.staff.put(member, record, events):
            return change
    raise ConflictError("nip", "was changed by someone else at the same moment; try again")


async def find_staff(deps: Deps, nip: str) -> StaffMember:
    record = await deps.staff.get(domain.parse_nip(nip).value)
    if record is None:
        raise NotFoundError("nip", "is not in the staff register")
    return record.member


async def list_staff(deps: Deps, *, unit: str | None, limit: int, offset: int) -> tuple[int, list[StaffMember]]:
    return await deps.staff.page(unit=unit, limit=limit, offset=offset)


# --- enrollment --------------------------------------------------------------------------------

async def enroll(deps: Deps, *, session_id: str, nip: str, nominated_by: str,
                 late: bool = False, enrollment_id: str | None = None) -> tuple[Roster, Enrollment]:
    """Seat a registered person in a session, or put them on its waitlist."""
    member = await find_staff(deps, nip)
    participant = Participant.of(member, deps.person_id(member.nip))
    enrollment_id = enrollment_id or deps.new_id()
    return await _change_roster(
        deps, lambda: _roster_or_404(deps.rosters.get(session_id), "session_id"),
        lambda roster: roster.enroll(participant, enrollment_id=enrollment_id,
                                     nominated_by=nominated_by, now=deps.clock(), late=late))


async def enroll_once(deps: Deps, *, key: str | None, session_id: str, nip: str,
                      **fields: Any) -> tuple[Roster, Enrollment, bool]:
    """`enroll`, where a retry with the same idempotency key finds the enrollment the first
    request made (its id is derived from the key, and it lives in the roster's one document)
    and returns it with False instead of enrolling again."""
    if key is None:
        return (*await enroll(deps, session_id=session_id, nip=nip, **fields), True)
    enrollment_id = derived_id(key, scope=f"{deps.city}/enrollments")
    for attempt in (1, 2):
        roster = await deps.rosters.by_enrollment(enrollment_id)
        if roster is not None:
            entry = next(e for e in roster.enrolled + roster.waitlist + roster.cancelled
                         if e.enrollment_id == enrollment_id)
            if (roster.info.session_id, entry.participant.nip) != (session_id, nip):
                raise KeyReused()
            return roster, entry, False
        try:
            return (*await enroll(deps, session_id=session_id, nip=nip,
                                  enrollment_id=enrollment_id, **fields), True)
        except ConflictError:
            if attempt == 2:  # the first request's write landed meanwhile: answer with it
                raise
    raise AssertionError("unreachable")


async def cancel_enrollment(
    deps: Deps, *, enrollment_id: str, reason: str, note: str | None = None
) -> tuple[Roster, Enrollment]:
    """Cancel a seat or waitlist place; the freed seat is promoted in the same write."""
    return await _change_roster(
        deps, lambda: _roster_or_404(deps.rosters.by_enrollment(enrollment_id), "enrollment_id"),
        lambda roster: roster.cancel(enrollment_id, reason=reason, note=note, now=deps.clock()))


async def _roster_or_404(load: Awaitable[Roster | None], field_name: str) -> Roster:
    roster = await load
    if roster is None:
        what = "session" if field_name == "session_id" else "enrollment"
        raise NotFoundError(field_name, f"no such {what} in this city's catalogue")
    return roster


async def _change_roster(
    deps: Deps, load: Callable[[], Awaitable[Roster]], change: Callable[[Roster], T]
) -> tuple[Roster, T]:
    """Optimistic concurrency: decide on a fresh copy until our write lands on the version read."""
    for attempt in range(MAX_ATTEMPTS):
        await _pause(attempt)
        roster = await load()
        result = change(roster)
        if await deps.rosters.save(roster):
            _count(deps.city, roster.events)
            return roster, result
    raise ConflictError("session_id", "too many simultaneous changes to this session; try again")


async def _pause(attempt: int) -> None:
    if attempt:  # jitter, so racing writers do not collide again in lockstep
        await asyncio.sleep(random.uniform(0, 0.005 * min(attempt, 10)))


def _count(city: str, events: Sequence[EventData]) -> None:
    for event in events:
        outcome = _OUTCOMES.get(type(event))
        if outcome:
            metrics.ENROLLMENTS.labels(city, outcome).inc()


async def roster_view(deps: Deps, session_id: str) -> tuple[Roster, dict[str, StaffMember]]:
    """A session's roster with the register entries of everyone on it (for names)."""
    roster = await _roster_or_404(deps.rosters.get(session_id), "session_id")
    nips = [e.participant.nip for e in roster.enrolled + roster.waitlist]
    records = await deps.staff.get_many(nips)
    return roster, {nip: record.member for nip, record in records.items()}


async def catalogue(deps: Deps, *, include_past: bool) -> list[Roster]:
    return await deps.rosters.catalogue(include_past=include_past, today=deps.clock().date())


# --- catalogue (consumer of the sessions stream) -----------------------------------------------

async def apply_session_event(deps: Deps, envelope: Envelope, payload: EventData) -> str:
    """Keep the local catalogue in step with the sessions service; redelivery changes nothing."""
    if envelope.city != deps.city or not isinstance(payload, SessionScheduled | SessionCancelled):
        return "ignored"
    for attempt in range(MAX_ATTEMPTS):
        await _pause(attempt)
        roster, outcome = domain.apply_catalogue_event(
            await deps.rosters.get(payload.session_id), payload, event_id=str(envelope.id),
            at=envelope.time)
        if outcome != "applied" or await deps.rosters.save(roster):
            _count(deps.city, roster.events if roster else [])
            return outcome
    raise RuntimeError(f"catalogue event {envelope.id}: lost the race {MAX_ATTEMPTS} times")


# --- training needs ----------------------------------------------------------------------------

async def submit_need(deps: Deps, *, key: str | None = None,
                      **fields: Any) -> tuple[TrainingNeedSubmitted, bool]:
    """The need recorded, and False when an earlier request with the same idempotency key
    had recorded it (its id is derived from the key): nothing new is written."""
    need_id = derived_id(key, scope=f"{deps.city}/needs") if key else deps.new_id()
    need = domain.submit_need(need_id=need_id, **fields)
    if await deps.needs.add(need, submitted_at=deps.clock()):
        return need, True
    first = await deps.needs.get(need_id)
    if key is None or first != need:
        raise KeyReused()
    return first, False


async def list_needs(deps: Deps, *, plan_year: int | None, unit: str | None) -> list[dict[str, Any]]:
    return await deps.needs.search(plan_year=plan_year, unit=unit)
