"""Enrollment rules: the staff register, a session's roster with its waitlist, training needs.

Pure: no I/O, no clock, no settings. Operations return (or record in `Roster.events`) the event
payloads saying what happened; the store writes them in the same document write as the state.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Literal, NewType, get_args

from pydantic import ValidationError

from shared.errors import ConflictError, DomainError, NotFoundError
from shared.events import (
    CancelReason,
    EnrollmentCancelled,
    EnrollmentCreated,
    EnrollmentPromoted,
    EnrollmentWaitlisted,
    EventData,
    PositionType,
    RankGroup,
    SessionCancelled,
    SessionScheduled,
    Sex,
    StaffRegistered,
    TrainingNeedSubmitted,
)

SessionId = NewType("SessionId", str)
EnrollmentId = NewType("EnrollmentId", str)
Nominator = Literal["supervisor", "self"]
StaffChange = Literal["created", "updated", "unchanged"]
CatalogueOutcome = Literal["applied", "duplicate", "ignored"]

CANCEL_REASONS: tuple[str, ...] = get_args(CancelReason)
NOMINATORS: tuple[str, ...] = get_args(Nominator)
MAX_TEXT = 120
# A redelivered catalogue event is recognised by its id; a session sees only a handful of
# catalogue events in its life, so a short memory is enough.
_SEEN_EVENTS_KEPT = 50


# --- NIP ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Nip:
    """A civil-servant number: birth date, appointment month, sex and a sequence, 18 digits."""

    value: str
    birth_date: dt.date
    appointed: tuple[int, int]  # (year, month)
    sex: Sex
    sequence: int


def parse_nip(raw: str, *, field_name: str = "nip") -> Nip:
    """Validate a NIP; spaces are dropped because NIPs are usually printed as 8 6 1 3 groups."""
    value = "".join(str(raw).split())
    if not re.fullmatch(r"[0-9]{18}", value):
        raise DomainError(field_name, "must be 18 digits")
    try:
        birth = dt.date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        raise DomainError(field_name, "digits 1-8 must be a real birth date YYYYMMDD") from None
    if birth.year < 1900:
        raise DomainError(field_name, "digits 1-8: birth year before 1900")
    year, month = int(value[8:12]), int(value[12:14])
    if not 1 <= month <= 12:
        raise DomainError(field_name, "digits 9-14 must be the appointment month YYYYMM")
    if (year, month) <= (birth.year, birth.month):
        raise DomainError(field_name, "digits 9-14: appointment YYYYMM must come after the birth date")
    sex = {"1": "M", "2": "F"}.get(value[14])
    if sex is None:
        raise DomainError(field_name, "digit 15 must be 1 (male) or 2 (female)")
    if value[15:] == "000":
        raise DomainError(field_name, "digits 16-18 (sequence) start at 001")
    return Nip(value, birth, (year, month), sex, int(value[15:]))


# --- staff register -------------------------------------------------------------------------

_POSITION_ALIASES = {
    "structural": "structural", "struktural": "structural",
    "functional": "functional", "fungsional": "functional",
    "general": "general", "umum": "general", "pelaksana": "general",
    "fungsional umum": "general", "administrasi": "general",
}
_RANK = re.compile(r"^(IV|III|II|I)\s*(?:[/\-. ]?\s*([A-E]))?$")
_RANK_ARABIC = {"1": "I", "2": "II", "3": "III", "4": "IV"}


def normalize_position_type(raw: str) -> PositionType:
    key = " ".join(str(raw).lower().split())
    if key not in _POSITION_ALIASES:
        raise DomainError("position_type", "must be structural, functional or general")
    return _POSITION_ALIASES[key]  # type: ignore[return-value]


def normalize_rank_group(raw: str) -> RankGroup:
    """`III`, `III/a`, `iii-b` or `3/c` -> `III`: events carry the group, not the grade."""
    text = " ".join(str(raw).upper().split())
    if text[:1] in _RANK_ARABIC:
        text = _RANK_ARABIC[text[0]] + text[1:]
    match = _RANK.match(text)
    if match is None or (match.group(2) == "E" and match.group(1) != "IV"):
        raise DomainError("rank_group", "must be I, II, III or IV (a grade such as III/a is accepted)")
    return match.group(1)  # type: ignore[return-value]


def _text(raw: object, field_name: str) -> str:
    text = " ".join(str(raw or "").split())
    if not text:
        raise DomainError(field_name, "is required")
    if len(text) > MAX_TEXT:
        raise DomainError(field_name, f"at most {MAX_TEXT} characters")
    return text


@dataclass(frozen=True)
class StaffMember:
    nip: str
    name: str
    unit: str
    position_type: PositionType
    rank_group: RankGroup
    sex: Sex  # from the NIP, kept so events need no re-parsing
    supervisor_nip: str | None = None

    @classmethod
    def create(
        cls, *, nip: str, name: str, unit: str, position_type: str, rank_group: str,
        supervisor_nip: str | None = None,
    ) -> StaffMember:
        """Validate and normalise raw input (API body or CSV row) into a register entry."""
        parsed = parse_nip(nip)
        supervisor = None
        if supervisor_nip is not None and str(supervisor_nip).strip():
            supervisor = parse_nip(supervisor_nip, field_name="supervisor_nip").value
            if supervisor == parsed.value:
                raise DomainError("supervisor_nip", "a person cannot supervise themselves")
        return cls(
            nip=parsed.value,
            name=_text(name, "name"),
            unit=_text(unit, "unit"),
            position_type=normalize_position_type(position_type),
            rank_group=normalize_rank_group(rank_group),
            sex=parsed.sex,
            supervisor_nip=supervisor,
        )

    def dims(self) -> tuple[str, str, str, str]:
        """What the nation slices by; a change here is news, a new name is not."""
        return (self.unit, self.position_type, self.rank_group, self.sex)


def register(
    existing: StaffMember | None, incoming: StaffMember, *, person_id: str
) -> tuple[StaffChange, list[EventData]]:
    """Register or update a person; StaffRegistered only when the national dimensions change."""
    if existing == incoming:
        return "unchanged", []
    change: StaffChange = "created" if existing is None else "updated"
    if existing is not None and existing.dims() == incoming.dims():
        return change, []
    return change, [StaffRegistered(
        person_id=person_id, unit=incoming.unit, position_type=incoming.position_type,
        rank_group=incoming.rank_group, sex=incoming.sex,
    )]


# --- session roster -------------------------------------------------------------------------

@dataclass(frozen=True)
class Participant:
    """The person as the roster needs them: the NIP for the city, dims for the events."""

    nip: str
    person_id: str
    unit: str
    position_type: PositionType
    rank_group: RankGroup
    sex: Sex

    @classmethod
    def of(cls, staff: StaffMember, person_id: str) -> Participant:
        return cls(staff.nip, person_id, staff.unit, staff.position_type, staff.rank_group, staff.sex)

    def dims(self) -> dict[str, str]:
        return {"person_id": self.person_id, "unit": self.unit,
                "position_type": self.position_type, "rank_group": self.rank_group, "sex": self.sex}


@dataclass(frozen=True)
class Enrollment:
    enrollment_id: EnrollmentId
    participant: Participant
    nominated_by: Nominator
    requested_at: dt.datetime
    cancelled_at: dt.datetime | None = None
    cancel_reason: CancelReason | None = None
    cancel_note: str | None = None
    was_waitlisted: bool | None = None


@dataclass(frozen=True)
class SessionInfo:
    """The catalogue entry as announced by the sessions service (SessionScheduled)."""

    session_id: SessionId
    title: str
    competency_type: str
    competency: str
    method: str
    provider: str
    jp: int
    start_date: dt.date
    end_date: dt.date
    days: int
    capacity: int
    planned_cost: int

    @classmethod
    def from_event(cls, event: SessionScheduled) -> SessionInfo:
        return cls(**event.model_dump(include=set(cls.__dataclass_fields__)))


@dataclass
class Roster:
    """One session as enrollment sees it: catalogue facts, enrolled, waitlist (FIFO), cancelled.

    One document per session, so a cancellation and the promotion it causes are one write.
    """

    info: SessionInfo
    status: Literal["scheduled", "cancelled"] = "scheduled"
    enrolled: list[Enrollment] = field(default_factory=list)
    waitlist: list[Enrollment] = field(default_factory=list)
    cancelled: list[Enrollment] = field(default_factory=list)
    cancelled_reason: str | None = None
    catalogue_time: dt.datetime | None = None
    seen_events: list[str] = field(default_factory=list)
    version: int = 0  # 0 = not stored yet
    events: list[EventData] = field(default_factory=list)

    # catalogue (from the sessions stream) -----------------------------------------------

    @classmethod
    def scheduled(cls, event: SessionScheduled, *, event_id: str, at: dt.datetime) -> Roster:
        return cls(info=SessionInfo.from_event(event), catalogue_time=at, seen_events=[event_id])

    def apply_scheduled(self, event: SessionScheduled, *, event_id: str, at: dt.datetime) -> CatalogueOutcome:
        """A re-announcement (e.g. more seats). Replays and stale copies change nothing."""
        outcome = self._check_catalogue_event(event_id, at)
        if outcome is not None:
            return outcome
        if self.status == "cancelled":
            return "ignored"  # a cancelled session is not revived by an old announcement
        self.info = SessionInfo.from_event(event)
        self._remember(event_id, at)
        self._promote_waiting()  # more seats free places for those waiting, in order
        return "applied"

    def apply_cancelled(self, reason: str, *, event_id: str, at: dt.datetime) -> CatalogueOutcome:
        outcome = self._check_catalogue_event(event_id, at)
        if outcome is not None:
            return outcome
        self.status, self.cancelled_reason = "cancelled", reason
        self._remember(event_id, at)
        return "applied"

    def _check_catalogue_event(self, event_id: str, at: dt.datetime) -> CatalogueOutcome | None:
        if event_id in self.seen_events:
            return "duplicate"
        if self.catalogue_time is not None and at < self.catalogue_time:
            return "ignored"  # older than what we already applied (a rewound consumer)
        return None

    def _remember(self, event_id: str, at: dt.datetime) -> None:
        self.seen_events = [*self.seen_events, event_id][-_SEEN_EVENTS_KEPT:]
        self.catalogue_time = at

    # enrollment ---------------------------------------------------------------------------

    @property
    def seats_left(self) -> int:
        return max(self.info.capacity - len(self.enrolled), 0)

    def enroll(
        self, participant: Participant, *, enrollment_id: EnrollmentId, nominated_by: str,
        now: dt.datetime, late: bool = False,
    ) -> Enrollment:
        """Take a seat, or join the end of the waitlist when the session is full.

        `late` records a participant of a session that has already started: an operator
        catching up with a paper register."""
        self._check_open(now.date(), late=late)
        self._check_not_enrolled(participant.nip)
        if nominated_by not in NOMINATORS:
            raise DomainError("nominated_by", "must be supervisor or self")
        entry = Enrollment(enrollment_id, participant, nominated_by, now)  # type: ignore[arg-type]
        common = {"session_id": self.info.session_id, "enrollment_id": enrollment_id,
                  "nominated_by": nominated_by, **participant.dims()}
        # Somebody already waiting keeps their turn, even if a seat looks free.
        if self.seats_left > 0 and not self.waitlist:
            self.enrolled.append(entry)
            self.events.append(EnrollmentCreated(**common))
        else:
            self.waitlist.append(entry)
            self.events.append(EnrollmentWaitlisted(**common, position=len(self.waitlist)))
        return entry

    def cancel(
        self, enrollment_id: str, *, reason: str, now: dt.datetime, note: str | None = None
    ) -> Enrollment:
        """Give up a seat or a waitlist place; a freed seat goes to the first one waiting."""
        if reason not in CANCEL_REASONS:
            raise DomainError("reason", f"must be one of {', '.join(CANCEL_REASONS)}")
        if note is not None and len(note) > 500:
            raise DomainError("note", "at most 500 characters")
        if any(e.enrollment_id == enrollment_id for e in self.cancelled):
            raise ConflictError("enrollment_id", "is already cancelled")
        entry, was_waitlisted = self._take(enrollment_id)
        done = replace(entry, cancelled_at=now, cancel_reason=reason, cancel_note=note or None,  # type: ignore[arg-type]
                       was_waitlisted=was_waitlisted)
        self.cancelled.append(done)
        self.events.append(EnrollmentCancelled(
            session_id=self.info.session_id, enrollment_id=enrollment_id,
            person_id=entry.participant.person_id, reason=reason,  # type: ignore[arg-type]
            was_waitlisted=was_waitlisted,
        ))
        self._promote_waiting()
        return done

    def find(self, enrollment_id: str) -> Enrollment | None:
        return next((e for e in self.enrolled + self.waitlist + self.cancelled
                     if e.enrollment_id == enrollment_id), None)

    def enrollment_ids(self) -> list[str]:
        return [e.enrollment_id for e in self.enrolled + self.waitlist + self.cancelled]

    def _take(self, enrollment_id: str) -> tuple[Enrollment, bool]:
        for was_waitlisted, entries in ((False, self.enrolled), (True, self.waitlist)):
            for index, entry in enumerate(entries):
                if entry.enrollment_id == enrollment_id:
                    return entries.pop(index), was_waitlisted
        raise NotFoundError("enrollment_id", f"no enrollment {enrollment_id} in this session")

    def _promote_waiting(self) -> None:
        while self.waitlist and self.seats_left > 0:
            entry = self.waitlist.pop(0)
            self.enrolled.append(entry)
            self.events.append(EnrollmentPromoted(
                session_id=self.info.session_id, enrollment_id=entry.enrollment_id,
                person_id=entry.participant.person_id,
            ))

    def _check_open(self, today: dt.date, *, late: bool = False) -> None:
        if self.status == "cancelled":
            raise ConflictError("session_id", "the session was cancelled")
        if today > self.info.start_date and not late:
            raise ConflictError("session_id", f"the session started on {self.info.start_date}; "
                                "enrollment is closed (to record a past session, send late=true)")

    def _check_not_enrolled(self, nip: str) -> None:
        if any(e.participant.nip == nip for e in self.enrolled):
            raise ConflictError("nip", "is already enrolled in this session")
        if any(e.participant.nip == nip for e in self.waitlist):
            raise ConflictError("nip", "is already on the waitlist of this session")


def apply_catalogue_event(
    roster: Roster | None, event: SessionScheduled | SessionCancelled, *, event_id: str,
    at: dt.datetime,
) -> tuple[Roster | None, CatalogueOutcome]:
    """What a sessions-stream event does to the local catalogue; the roster to save, if any."""
    if roster is None:
        if isinstance(event, SessionCancelled):
            return None, "ignored"  # never scheduled here: nothing to cancel
        return Roster.scheduled(event, event_id=event_id, at=at), "applied"
    if isinstance(event, SessionScheduled):
        return roster, roster.apply_scheduled(event, event_id=event_id, at=at)
    return roster, roster.apply_cancelled(event.reason, event_id=event_id, at=at)


# --- training needs -------------------------------------------------------------------------

def submit_need(*, need_id: str, **fields: object) -> TrainingNeedSubmitted:
    """A need from a survey or forum; the event model is the single definition of valid."""
    try:
        return TrainingNeedSubmitted(need_id=need_id, **fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DomainError(".".join(str(p) for p in err["loc"]) or "need", err["msg"]) from None
