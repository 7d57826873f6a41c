"""Rules of the enrollment domain: NIP, staff register, roster with waitlist, needs."""

import datetime as dt

import pytest

from services.enrollment.domain import (
    Participant, Roster, StaffMember, normalize_rank_group, parse_nip, register, submit_need,
)
from shared.errors import ConflictError, DomainError, NotFoundError
from shared.events import (
    EnrollmentCancelled, EnrollmentCreated, EnrollmentPromoted, EnrollmentWaitlisted,
    SessionScheduled, StaffRegistered,
)

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
PID = "0123456789abcdef0123456789abcdef"


def nip(seq: int = 1, sex: str = "1") -> str:
    return f"19850315201012{sex}{seq:03d}"


def staff(seq: int = 1, **over) -> StaffMember:
    fields = dict(nip=nip(seq), name=f"Pegawai {seq}", unit="Dinas Kominfo",
                  position_type="functional", rank_group="III/a")
    return StaffMember.create(**{**fields, **over})


def person(seq: int) -> Participant:
    return Participant.of(staff(seq), f"{seq:032x}")


def scheduled(capacity: int = 2, **over) -> SessionScheduled:
    fields = dict(session_id="s-1", title="Pengelolaan Keuangan Daerah", competency_type="technical",
                  competency="regional finance", method="workshop", provider="ministry", jp=24,
                  start_date=dt.date(2026, 12, 7), end_date=dt.date(2026, 12, 9), days=3,
                  capacity=capacity, planned_cost=12_500_000)
    return SessionScheduled(**{**fields, **over})


def roster(capacity: int = 2) -> Roster:
    return Roster.scheduled(scheduled(capacity), event_id="e-1", at=NOW)


def enroll(r: Roster, seq: int, at: dt.datetime = NOW):
    return r.enroll(person(seq), enrollment_id=f"enr-{seq}", nominated_by="self", now=at)


class TestNip:
    def test_reads_birth_date_appointment_sex_and_sequence(self):
        parsed = parse_nip("19850315 201012 2 007")
        assert (parsed.value, parsed.birth_date, parsed.appointed, parsed.sex, parsed.sequence) == (
            "198503152010122007", dt.date(1985, 3, 15), (2010, 12), "F", 7)

    def test_accepts_feb_29_in_a_leap_year(self):
        assert parse_nip("198802292010121001").birth_date == dt.date(1988, 2, 29)

    def test_rejects_feb_29_in_a_common_year(self):
        with pytest.raises(DomainError, match="real birth date") as err:
            parse_nip("198702292010121001")
        assert err.value.field == "nip"

    @pytest.mark.parametrize("raw", ["12345", "19850315201012100A", "1985031520101210011"])
    def test_rejects_anything_but_18_digits(self, raw):
        with pytest.raises(DomainError, match="18 digits"):
            parse_nip(raw)

    @pytest.mark.parametrize("digit", ["0", "3", "9"])
    def test_rejects_a_sex_digit_other_than_1_or_2(self, digit):
        with pytest.raises(DomainError, match="digit 15"):
            parse_nip(f"19850315201012{digit}001")

    def test_rejects_an_appointment_before_birth(self):
        # appointed 1984-12, born 1985-03
        with pytest.raises(DomainError, match="after the birth date"):
            parse_nip("198503151984121001")

    def test_rejects_an_appointment_month_13(self):
        with pytest.raises(DomainError, match="appointment month"):
            parse_nip("198503152010131001")

    def test_rejects_sequence_000(self):
        with pytest.raises(DomainError, match="sequence"):
            parse_nip("198503152010121000")

    def test_names_the_field_it_checks(self):
        with pytest.raises(DomainError) as err:
            parse_nip("x", field_name="supervisor_nip")
        assert err.value.field == "supervisor_nip"


class TestStaffRegister:
    @pytest.mark.parametrize("raw,group", [("III", "III"), ("III/a", "III"), ("iv-e", "IV"),
                                           ("II b", "II"), ("3/c", "III"), ("I", "I")])
    def test_reads_rank_group_with_or_without_grade(self, raw, group):
        assert normalize_rank_group(raw) == group

    @pytest.mark.parametrize("raw", ["V", "III/e", "", "golongan tiga"])
    def test_rejects_unknown_rank_groups(self, raw):
        with pytest.raises(DomainError) as err:
            normalize_rank_group(raw)
        assert err.value.field == "rank_group"

    def test_takes_sex_from_the_nip_and_indonesian_position_names(self):
        member = staff(nip=nip(sex="2"), position_type="Struktural")
        assert (member.sex, member.position_type, member.rank_group) == ("F", "structural", "III")

    def test_rejects_self_supervision(self):
        with pytest.raises(DomainError) as err:
            staff(supervisor_nip=nip(1))
        assert err.value.field == "supervisor_nip"

    def test_rejects_a_blank_name(self):
        with pytest.raises(DomainError) as err:
            staff(name="   ")
        assert (err.value.field, err.value.reason) == ("name", "is required")

    def test_new_person_is_announced_without_nip_or_name(self):
        change, events = register(None, staff(), person_id=PID)
        assert change == "created"
        assert events == [StaffRegistered(person_id=PID, unit="Dinas Kominfo",
                                          position_type="functional", rank_group="III", sex="M")]

    def test_same_data_again_changes_nothing(self):
        assert register(staff(), staff(), person_id=PID) == ("unchanged", [])

    def test_a_new_name_is_an_update_without_event(self):
        assert register(staff(), staff(name="Pegawai Baru"), person_id=PID) == ("updated", [])

    def test_a_new_unit_is_announced_again(self):
        change, events = register(staff(), staff(unit="Bappeda"), person_id=PID)
        assert change == "updated" and events[0].unit == "Bappeda"


class TestEnrollment:
    def test_takes_a_seat_while_there_is_capacity(self):
        r = roster(capacity=2)
        enroll(r, 1)
        assert [e.enrollment_id for e in r.enrolled] == ["enr-1"]
        assert isinstance(r.events[0], EnrollmentCreated)
        assert (r.events[0].unit, r.events[0].rank_group, r.events[0].sex) == ("Dinas Kominfo", "III", "M")

    def test_waitlists_in_arrival_order_beyond_capacity(self):
        r = roster(capacity=1)
        for seq in (1, 2, 3):
            enroll(r, seq)
        assert [e.enrollment_id for e in r.enrolled] == ["enr-1"]
        assert [e.enrollment_id for e in r.waitlist] == ["enr-2", "enr-3"]
        assert [(type(e), getattr(e, "position", None)) for e in r.events] == [
            (EnrollmentCreated, None), (EnrollmentWaitlisted, 1), (EnrollmentWaitlisted, 2)]

    def test_refuses_double_enrollment_naming_the_nip(self):
        r = roster(capacity=1)
        enroll(r, 1)
        with pytest.raises(ConflictError) as err:
            r.enroll(person(1), enrollment_id="enr-again", nominated_by="supervisor", now=NOW)
        assert err.value.field == "nip"

    def test_refuses_double_waitlisting(self):
        r = roster(capacity=1)
        enroll(r, 1), enroll(r, 2)
        with pytest.raises(ConflictError, match="waitlist"):
            r.enroll(person(2), enrollment_id="enr-again", nominated_by="self", now=NOW)

    def test_allows_enrolling_again_after_cancelling(self):
        r = roster(capacity=1)
        enroll(r, 1)
        r.cancel("enr-1", reason="busy", now=NOW)
        r.enroll(person(1), enrollment_id="enr-1b", nominated_by="self", now=NOW)
        assert [e.enrollment_id for e in r.enrolled] == ["enr-1b"]

    def test_refuses_a_cancelled_session(self):
        r = roster()
        r.apply_cancelled("speaker unavailable", event_id="e-2", at=NOW)
        with pytest.raises(ConflictError) as err:
            enroll(r, 1)
        assert err.value.field == "session_id"

    def test_refuses_after_the_session_started(self):
        with pytest.raises(ConflictError, match=r"enrollment is closed \(to record a past session"):
            enroll(roster(), 1, at=dt.datetime(2026, 12, 8, tzinfo=dt.UTC))

    def test_records_a_past_session_when_asked_explicitly(self):
        r = roster()
        r.enroll(person(1), enrollment_id="late-1", nominated_by="supervisor",
                 now=dt.datetime(2026, 12, 8, tzinfo=dt.UTC), late=True)
        assert [e.enrollment_id for e in r.enrolled] == ["late-1"]
        assert type(r.events[-1]).__name__ == "EnrollmentCreated"

    def test_a_late_record_still_refuses_a_cancelled_session(self):
        r = roster()
        r.apply_cancelled("speaker unavailable", event_id="e-2", at=NOW)
        with pytest.raises(ConflictError, match="cancelled"):
            r.enroll(person(1), enrollment_id="x", nominated_by="supervisor", now=NOW, late=True)

    def test_refuses_an_unknown_nominator(self):
        with pytest.raises(DomainError) as err:
            roster().enroll(person(1), enrollment_id="x", nominated_by="boss", now=NOW)
        assert err.value.field == "nominated_by"


class TestCancellation:
    def full_roster(self) -> Roster:
        r = roster(capacity=1)
        for seq in (1, 2, 3):
            enroll(r, seq)
        r.events.clear()
        return r

    def test_promotes_the_first_waiting_when_a_seat_frees(self):
        r = self.full_roster()
        r.cancel("enr-1", reason="illness", now=NOW)
        assert [e.enrollment_id for e in r.enrolled] == ["enr-2"]
        assert [e.enrollment_id for e in r.waitlist] == ["enr-3"]
        cancelled, promoted = r.events
        assert isinstance(cancelled, EnrollmentCancelled) and not cancelled.was_waitlisted
        assert cancelled.reason == "illness"
        assert isinstance(promoted, EnrollmentPromoted) and promoted.enrollment_id == "enr-2"

    def test_leaving_the_waitlist_promotes_nobody(self):
        r = self.full_roster()
        r.cancel("enr-2", reason="budget", now=NOW)
        assert [e.enrollment_id for e in r.waitlist] == ["enr-3"]
        assert [type(e) for e in r.events] == [EnrollmentCancelled]
        assert r.events[0].was_waitlisted

    def test_keeps_the_reason_and_note_in_the_city(self):
        r = self.full_roster()
        done = r.cancel("enr-1", reason="other", note="tugas luar kota", now=NOW)
        assert (done.cancel_reason, done.cancel_note, r.cancelled[-1].enrollment_id) == (
            "other", "tugas luar kota", "enr-1")

    def test_unknown_enrollment_is_not_found(self):
        with pytest.raises(NotFoundError) as err:
            self.full_roster().cancel("enr-404", reason="busy", now=NOW)
        assert err.value.field == "enrollment_id"

    def test_cancelling_twice_is_a_conflict(self):
        r = self.full_roster()
        r.cancel("enr-1", reason="busy", now=NOW)
        with pytest.raises(ConflictError, match="already cancelled"):
            r.cancel("enr-1", reason="busy", now=NOW)

    def test_rejects_an_unknown_reason_and_changes_nothing(self):
        r = self.full_roster()
        with pytest.raises(DomainError) as err:
            r.cancel("enr-1", reason="bored", now=NOW)
        assert err.value.field == "reason" and len(r.enrolled) == 1 and r.events == []


class TestCatalogue:
    def test_redelivered_announcement_is_a_duplicate(self):
        r = roster()
        assert r.apply_scheduled(scheduled(), event_id="e-1", at=NOW) == "duplicate"

    def test_more_seats_promote_those_waiting_in_order(self):
        r = roster(capacity=1)
        for seq in (1, 2, 3):
            enroll(r, seq)
        r.events.clear()
        later = NOW + dt.timedelta(hours=1)
        assert r.apply_scheduled(scheduled(capacity=2), event_id="e-2", at=later) == "applied"
        assert [e.enrollment_id for e in r.events] == ["enr-2"]
        assert r.info.capacity == 2 and [e.enrollment_id for e in r.waitlist] == ["enr-3"]

    def test_a_stale_announcement_does_not_undo_a_newer_one(self):
        r = roster(capacity=5)
        r.apply_scheduled(scheduled(capacity=9), event_id="e-2", at=NOW + dt.timedelta(hours=1))
        assert r.apply_scheduled(scheduled(capacity=3), event_id="e-0", at=NOW - dt.timedelta(hours=1)) == "ignored"
        assert r.info.capacity == 9

    def test_an_announcement_does_not_revive_a_cancelled_session(self):
        r = roster()
        r.apply_cancelled("no budget", event_id="e-2", at=NOW)
        assert r.apply_scheduled(scheduled(capacity=9), event_id="e-3", at=NOW) == "ignored"
        assert r.status == "cancelled"


class TestTrainingNeeds:
    def test_a_valid_need_becomes_an_event(self):
        need = submit_need(need_id="n-1", competency_type="technical", competency="e-government",
                           unit="Dinas Kominfo", staff_count=12, priority="high", source="survey",
                           plan_year=2027)
        assert need.subject() == "need/n-1"

    def test_a_bad_field_is_named(self):
        with pytest.raises(DomainError) as err:
            submit_need(need_id="n-1", competency_type="technical", competency="e-government",
                        unit="Dinas Kominfo", staff_count=0, priority="high", source="survey",
                        plan_year=2027)
        assert err.value.field == "staff_count"
