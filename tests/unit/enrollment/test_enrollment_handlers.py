"""Use cases against in-memory stores: what is written, which events are staged."""

import datetime as dt

import pytest
from prometheus_client import REGISTRY

from services.enrollment import handlers
from services.enrollment.domain import StaffMember
from shared.errors import ConflictError, NotFoundError
from shared.events import Envelope, SessionCancelled, SessionScheduled, StaffRegistered
from shared.pseudonym import person_id

from enrollment_fakes import SECRET, fake_deps

CSV = """nip,nama,unit_kerja,jenis_jabatan,golongan,nip_atasan
198503152010121002,Budi Santoso,Bappeda,struktural,IV/a,
199001012015032001,Sri Wahyuni,Bappeda,fungsional,III/b,198503152010121002
199202022016011003,Agus Salim,Dinas Kominfo,umum,II/c,198503152010121002
12345,Nomor Pendek,Bappeda,umum,II,
"""
BUDI, SRI, AGUS = "198503152010121002", "199001012015032001", "199202022016011003"


def session(capacity=1, session_id="s-1", **over):
    fields = dict(session_id=session_id, title="Tata Naskah Dinas Elektronik", competency_type="technical",
                  competency="e-government", method="classroom", provider="city", jp=16,
                  start_date=dt.date(2026, 12, 1), end_date=dt.date(2026, 12, 2), days=2,
                  capacity=capacity, planned_cost=5_000_000)
    return SessionScheduled(**{**fields, **over})


def envelope(payload, city="salatiga", at=None):
    return Envelope.wrap(payload, city=city, service="sessions", time=at)


def enrollments(city, outcome):
    return REGISTRY.get_sample_value("bangkom_enrollments_total", {"city": city, "outcome": outcome}) or 0


@pytest.fixture
def deps():
    return fake_deps()


async def seeded(deps, capacity=1):
    await handlers.import_staff(deps, CSV)
    env = envelope(session(capacity))
    await handlers.apply_session_event(deps, env, env.payload())
    return deps


class TestImport:
    async def test_imports_good_rows_and_reports_the_bad_one(self, deps):
        report = await handlers.import_staff(deps, CSV)
        assert (report.created, report.updated, report.unchanged, report.rejected) == (3, 0, 0, 1)
        assert [(e.line, e.field) for e in report.errors] == [(5, "nip")]
        assert [e.person_id for e in deps.staff.events] == [person_id(n, SECRET) for n in (BUDI, SRI, AGUS)]

    async def test_importing_the_same_file_twice_changes_nothing(self, deps):
        await handlers.import_staff(deps, CSV)
        writes, events = deps.staff.writes, list(deps.staff.events)
        report = await handlers.import_staff(deps, CSV)
        assert (report.created, report.updated, report.unchanged, report.rejected) == (0, 0, 3, 1)
        assert (deps.staff.writes, deps.staff.events) == (writes, events)

    async def test_a_transfer_is_announced_again(self, deps):
        await handlers.import_staff(deps, CSV)
        report = await handlers.import_staff(deps, CSV.replace("Agus Salim,Dinas Kominfo", "Agus Salim,Bappeda"))
        assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
        assert deps.staff.events[-1] == StaffRegistered(
            person_id=person_id(AGUS, SECRET), unit="Bappeda", position_type="general",
            rank_group="II", sex="M")

    async def test_a_new_name_updates_without_an_event(self, deps):
        member = StaffMember.create(nip=BUDI, name="Budi", unit="Bappeda", position_type="structural",
                                    rank_group="IV")
        assert await handlers.register_staff(deps, member) == "created"
        changed = StaffMember.create(nip=BUDI, name="Budi Santoso, S.E.", unit="Bappeda",
                                     position_type="structural", rank_group="IV")
        assert await handlers.register_staff(deps, changed) == "updated"
        assert len(deps.staff.events) == 1 and deps.staff.docs[BUDI].member.name == "Budi Santoso, S.E."


class TestEnroll:
    async def test_second_person_is_waitlisted_and_promoted_when_the_first_cancels(self, deps):
        await seeded(deps)
        before = {o: enrollments("salatiga", o) for o in ("enrolled", "waitlisted", "cancelled", "promoted")}
        _, first = await handlers.enroll(deps, session_id="s-1", nip=BUDI, nominated_by="supervisor")
        _, second = await handlers.enroll(deps, session_id="s-1", nip=SRI, nominated_by="self")
        roster, _ = await handlers.cancel_enrollment(deps, enrollment_id=first.enrollment_id, reason="busy")
        assert [e.enrollment_id for e in roster.enrolled] == [second.enrollment_id]
        assert [type(e).__name__ for e in deps.rosters.events] == [
            "EnrollmentCreated", "EnrollmentWaitlisted", "EnrollmentCancelled", "EnrollmentPromoted"]
        assert {o: enrollments("salatiga", o) - before[o] for o in before} == {
            "enrolled": 1, "waitlisted": 1, "cancelled": 1, "promoted": 1}

    async def test_events_carry_a_pseudonym_and_never_a_nip_or_name(self, deps):
        await seeded(deps)
        await handlers.enroll(deps, session_id="s-1", nip=BUDI, nominated_by="self")
        text = " ".join(e.model_dump_json() for e in deps.rosters.events + deps.staff.events)
        assert person_id(BUDI, SECRET) in text
        for secret in (BUDI, SRI, AGUS, "Budi", "Santoso", "Wahyuni"):
            assert secret not in text

    async def test_retries_when_another_writer_got_there_first(self, deps):
        await seeded(deps, capacity=1)
        deps.rosters.interfere = 3
        _, entry = await handlers.enroll(deps, session_id="s-1", nip=BUDI, nominated_by="self")
        assert [e.enrollment_id for e in deps.rosters.docs["s-1"].enrolled] == [entry.enrollment_id]
        assert len(deps.rosters.events) == 1

    async def test_gives_up_with_409_after_too_many_lost_races(self, deps):
        await seeded(deps)
        deps.rosters.interfere = handlers.MAX_ATTEMPTS
        with pytest.raises(ConflictError):
            await handlers.enroll(deps, session_id="s-1", nip=BUDI, nominated_by="self")
        assert deps.rosters.events == []

    async def test_double_enrollment_is_a_conflict_and_writes_nothing(self, deps):
        await seeded(deps)
        await handlers.enroll(deps, session_id="s-1", nip=BUDI, nominated_by="self")
        with pytest.raises(ConflictError) as err:
            await handlers.enroll(deps, session_id="s-1", nip=BUDI, nominated_by="self")
        assert err.value.field == "nip" and len(deps.rosters.events) == 1

    @pytest.mark.parametrize("session_id,nip,field", [("s-404", BUDI, "session_id"),
                                                      ("s-1", "198001012005011001", "nip")])
    async def test_unknown_session_or_person_is_not_found(self, deps, session_id, nip, field):
        await seeded(deps)
        with pytest.raises(NotFoundError) as err:
            await handlers.enroll(deps, session_id=session_id, nip=nip, nominated_by="self")
        assert err.value.field == field

    async def test_cancelling_an_unknown_enrollment_is_not_found(self, deps):
        await seeded(deps)
        with pytest.raises(NotFoundError) as err:
            await handlers.cancel_enrollment(deps, enrollment_id="nope", reason="busy")
        assert err.value.field == "enrollment_id"


class TestCatalogue:
    async def test_redelivery_changes_nothing(self, deps):
        env = envelope(session(capacity=3))
        assert await handlers.apply_session_event(deps, env, env.payload()) == "applied"
        version = deps.rosters.docs["s-1"].version
        assert await handlers.apply_session_event(deps, env, env.payload()) == "duplicate"
        assert deps.rosters.docs["s-1"].version == version

    async def test_cancellation_closes_the_session(self, deps):
        await seeded(deps)
        env = envelope(SessionCancelled(session_id="s-1", reason="narasumber berhalangan"))
        assert await handlers.apply_session_event(deps, env, env.payload()) == "applied"
        with pytest.raises(ConflictError, match="cancelled"):
            await handlers.enroll(deps, session_id="s-1", nip=BUDI, nominated_by="self")

    async def test_ignores_other_cities_and_unknown_sessions(self, deps):
        other = envelope(session(), city="palu")
        unknown = envelope(SessionCancelled(session_id="s-9", reason="x"))
        assert await handlers.apply_session_event(deps, other, other.payload()) == "ignored"
        assert await handlers.apply_session_event(deps, unknown, unknown.payload()) == "ignored"
        assert deps.rosters.docs == {}


async def test_a_training_need_is_stored_and_announced(deps):
    need, _ = await handlers.submit_need(deps, competency_type="managerial", competency="leadership",
                                      unit="Bappeda", staff_count=8, priority="medium", source="forum",
                                      plan_year=2027)
    assert deps.needs.events == [need]
    assert [n["need_id"] for n in await handlers.list_needs(deps, plan_year=2027, unit=None)] == [need.need_id]
