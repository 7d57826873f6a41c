"""The pure rules of the sessions service."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from services.sessions import domain
from sessions_builders import START, cancelled, created, pid, plan, promoted, waitlisted, with_roster
from shared.errors import ConflictError, DomainError
from shared.events import (
    AssessmentRecorded, AttendanceRecorded, ParticipantCompleted, SessionCancelled,
    SessionCompleted, SessionScheduled,
)

END = START + dt.timedelta(days=4)


def attend(session, person, days_present, days=5):
    for day in range(1, days + 1):
        present, absent = ([pid(person)], []) if day <= days_present else ([], [pid(person)])
        session, _ = domain.record_attendance(session, day=day, present=present, absent=absent)
    return session


def post_test(session, person, score):
    session, _ = domain.record_scores(session, kind="post", scores={pid(person): score})
    return session


def finish(session):
    end = session.end_date
    return domain.complete(session, completed_on=end, actual_cost=11_000_000, today=end)


class TestScheduling:
    def test_schedules_a_session_and_announces_it_without_local_details(self):
        session, events = domain.schedule(plan(), session_id="S1", city="salatiga")
        assert session.status == "scheduled"
        assert [type(e) for e in events] == [SessionScheduled]
        assert events[0].jp == 30 and events[0].planned_cost == 12_500_000
        assert "speakers" not in events[0].model_dump()

    @pytest.mark.parametrize("overrides, field", [
        ({"end_date": START - dt.timedelta(days=1)}, "end_date"),
        ({"days": 6}, "days"),
        ({"jp": 61}, "jp"),
        ({"method": "e-learning", "place": None}, "online_link"),
        ({"method": "e-learning", "online_link": "zoom meeting 123"}, "online_link"),
        ({"method": "blended", "online_link": None}, "online_link"),
        ({"place": None}, "place"),
        ({"method": "seminar", "place": None}, "place"),
        ({"method": "mentoring", "capacity": 2}, "capacity"),
        ({"method": "mentoring", "capacity": 1, "speakers": []}, "speakers"),
    ])
    def test_rejects_an_inconsistent_plan_naming_the_field(self, overrides, field):
        with pytest.raises(DomainError) as err:
            domain.schedule(plan(**overrides), session_id="S1", city="salatiga")
        assert err.value.field == field

    def test_accepts_fewer_days_than_the_calendar_span(self):
        session, _ = domain.schedule(plan(days=3), session_id="S1", city="salatiga")
        assert session.days == 3

    def test_e_learning_needs_only_a_link(self):
        session, _ = domain.schedule(
            plan(method="e-learning", place=None, online_link="https://lms.example.go.id/c/12"),
            session_id="S1", city="salatiga",
        )
        assert session.online_link.startswith("https://")

    def test_a_webinar_seminar_needs_no_place(self):
        session, _ = domain.schedule(
            plan(method="seminar", place=None, online_link="https://zoom.us/j/1"),
            session_id="S1", city="salatiga",
        )
        assert session.method == "seminar"

    def test_cancelling_announces_the_reason_and_only_once(self, session):
        cancelled_session, events = domain.cancel(session, "budget cut")
        assert cancelled_session.status == "cancelled"
        assert events == [SessionCancelled(session_id="S1", reason="budget cut")]
        with pytest.raises(ConflictError):
            domain.cancel(cancelled_session, "again")


class TestRoster:
    def test_created_and_promoted_enrollments_are_participants_waitlisted_are_not(self, session):
        for event in (created("ani"), waitlisted("budi"), created("citra")):
            session, outcome = domain.apply_enrollment(session, str(uuid.uuid4()), event)
            assert outcome == "applied"
        assert session.participants() == sorted([pid("ani"), pid("citra")])
        session, outcome = domain.apply_enrollment(session, "ev-p", promoted("budi"))
        assert outcome == "applied"
        assert pid("budi") in session.participants()
        # the promoted person keeps the dims learned from the waitlisting
        assert session.roster[pid("budi")].unit == "Bappeda"

    def test_a_redelivered_event_changes_nothing(self, session):
        once, first = domain.apply_enrollment(session, "ev-1", created("ani"))
        twice, second = domain.apply_enrollment(once, "ev-1", created("ani"))
        assert (first, second) == ("applied", "duplicate")
        assert twice == once
        assert twice.applied_events == ["ev-1"]

    def test_the_same_fact_under_another_event_id_is_a_duplicate(self, session):
        once, _ = domain.apply_enrollment(session, "ev-1", created("ani"))
        again, outcome = domain.apply_enrollment(once, "ev-2", created("ani"))
        assert outcome == "duplicate" and again == once

    def test_cancellation_removes_a_participant(self, session):
        session = with_roster(session, "ani", "budi")
        session, outcome = domain.apply_enrollment(session, "ev-c", cancelled("ani"))
        assert outcome == "applied"
        assert session.participants() == [pid("budi")]

    def test_a_stale_cancellation_does_not_remove_a_newer_enrollment(self, session):
        session, _ = domain.apply_enrollment(session, "ev-1", created("ani", enrollment_id="e-new"))
        after, outcome = domain.apply_enrollment(session, "ev-2", cancelled("ani", enrollment_id="e-old"))
        assert outcome == "ignored"
        assert after.participants() == [pid("ani")]

    def test_promotion_of_an_unknown_enrollment_is_ignored(self, session):
        after, outcome = domain.apply_enrollment(session, "ev-p", promoted("ghost"))
        assert outcome == "ignored" and after.participants() == []

    def test_the_roster_of_a_completed_session_is_frozen(self, session):
        session = with_roster(session, "ani")
        session = post_test(attend(session, "ani", 5), "ani", 90)
        done, _ = finish(session)
        after, outcome = domain.apply_enrollment(done, "ev-late", cancelled("ani"))
        assert outcome == "ignored" and after.participants() == [pid("ani")]


class TestAttendanceAndTests:
    def test_records_each_mark_once(self, session):
        session = with_roster(session, "ani", "budi")
        session, events = domain.record_attendance(
            session, day=1, present=[pid("ani")], absent=[pid("budi")]
        )
        assert {(e.person_id, e.present) for e in events} == {(pid("ani"), True), (pid("budi"), False)}
        assert all(isinstance(e, AttendanceRecorded) and e.day == 1 for e in events)
        again, repeat = domain.record_attendance(session, day=1, present=[pid("ani")], absent=[])
        assert repeat == [] and again == session

    def test_a_correction_is_a_new_event(self, session):
        session = with_roster(session, "ani")
        session, _ = domain.record_attendance(session, day=1, present=[], absent=[pid("ani")])
        session, events = domain.record_attendance(session, day=1, present=[pid("ani")], absent=[])
        assert [e.present for e in events] == [True]
        assert session.attendance[1][pid("ani")] is True

    @pytest.mark.parametrize("day", [0, 6])
    def test_rejects_a_day_outside_the_session(self, session, day):
        session = with_roster(session, "ani")
        with pytest.raises(DomainError) as err:
            domain.record_attendance(session, day=day, present=[pid("ani")], absent=[])
        assert err.value.field == "day"

    def test_rejects_someone_not_on_the_roster(self, session):
        session = with_roster(session, "ani")
        session, _ = domain.apply_enrollment(session, "w", waitlisted("budi"))
        with pytest.raises(DomainError) as err:
            domain.record_attendance(session, day=1, present=[pid("budi")], absent=[])
        assert err.value.field == "present"

    def test_rejects_a_person_both_present_and_absent(self, session):
        session = with_roster(session, "ani")
        with pytest.raises(DomainError):
            domain.record_attendance(session, day=1, present=[pid("ani")], absent=[pid("ani")])

    def test_records_pre_and_post_scores(self, session):
        session = with_roster(session, "ani")
        session, pre = domain.record_scores(session, kind="pre", scores={pid("ani"): 40})
        session, post = domain.record_scores(session, kind="post", scores={pid("ani"): 75.5})
        assert [(type(e), e.kind, e.score) for e in pre + post] == [
            (AssessmentRecorded, "pre", 40), (AssessmentRecorded, "post", 75.5)]
        assert session.scores[pid("ani")] == domain.Scores(pre=40, post=75.5)

    def test_rejects_a_score_above_100(self, session):
        session = with_roster(session, "ani")
        with pytest.raises(DomainError) as err:
            domain.record_scores(session, kind="post", scores={pid("ani"): 101})
        assert err.value.field == "scores"


class TestCompletionRule:
    @pytest.mark.parametrize("present, days, post, passes", [
        (4, 5, 60, True),      # exactly 80% and exactly 60
        (3, 5, 100, False),    # 60% attendance
        (5, 5, 59.99, False),  # just under the post-test bar
        (5, 5, None, False),   # no post-test
        (8, 10, 60.0, True),
        (7, 10, 99, False),
        (1, 1, 60, True),
        (0, 1, 100, False),
    ])
    def test_edges(self, present, days, post, passes):
        assert domain.meets_completion_rule(present, days, post) is passes

    def test_completion_credits_jp_and_numbers_certificates(self, session):
        session = with_roster(session, "ani", "budi", "citra")
        for person, days, score in (("ani", 4, 60), ("budi", 5, 59), ("citra", 3, 95)):
            session = post_test(attend(session, person, days), person, score)
        done, events = finish(session)
        completed = [e for e in events if isinstance(e, ParticipantCompleted)]
        assert [e.person_id for e in completed] == [pid("ani")]
        assert completed[0].jp == 30 and completed[0].unit == "Dinas Pendidikan"
        assert completed[0].method == "classroom" and completed[0].provider == "ministry"
        summary = events[-1]
        assert isinstance(summary, SessionCompleted)
        assert (summary.participants, summary.completed, summary.actual_cost) == (3, 1, 11_000_000)
        outcomes = {o.person_id: o for o in done.completion.outcomes}
        assert outcomes[pid("ani")].certificate == "SAL-2026-S1-001"
        assert outcomes[pid("budi")].reason == "post-test 59 is below 60"
        assert "attendance 3/5" in outcomes[pid("citra")].reason
        assert done.status == "completed" and done.actual_cost == 11_000_000

    def test_certificate_numbers_are_unique(self):
        numbers = set()
        for session_id in ("7F3A09C2", "7F3A09C3"):
            session, _ = domain.schedule(plan(), session_id=session_id, city="pematangsiantar")
            people = [f"p{i}" for i in range(12)]
            session = with_roster(session, *people)
            for person in people:
                session = post_test(attend(session, person, 5), person, 80)
            done, _ = finish(session)
            numbers |= {o.certificate for o in done.completion.outcomes}
        assert len(numbers) == 24
        assert "PEM-2026-7F3A09C2-012" in numbers

    def test_completion_needs_every_day_recorded(self, session):
        session = with_roster(session, "ani")
        session, _ = domain.record_attendance(session, day=1, present=[pid("ani")], absent=[])
        with pytest.raises(DomainError) as err:
            finish(session)
        assert err.value.field == "attendance"

    def test_completion_before_the_end_date_is_refused(self, session):
        with pytest.raises(DomainError) as err:
            domain.complete(session, completed_on=START, actual_cost=0, today=END)
        assert err.value.field == "completed_on"

    def test_a_session_without_participants_completes_with_none(self, session):
        done, events = finish(session)
        assert events == [SessionCompleted(
            session_id="S1", completed_on=END, participants=0, completed=0, actual_cost=11_000_000)]
        assert done.completion.completed == 0

    def test_a_completed_session_cannot_be_completed_or_cancelled_again(self, session):
        done, _ = finish(session)
        with pytest.raises(ConflictError):
            finish(done)
        with pytest.raises(ConflictError):
            domain.cancel(done, "too late")

    def test_cancelled_participants_do_not_complete(self, session):
        session = with_roster(session, "ani", "budi")
        for person in ("ani", "budi"):
            session = post_test(attend(session, person, 5), person, 90)
        session, _ = domain.apply_enrollment(session, "c", cancelled("budi"))
        _, events = finish(session)
        assert [e.person_id for e in events if isinstance(e, ParticipantCompleted)] == [pid("ani")]
        assert events[-1].participants == 1


class TestMentoring:
    def mentoring(self):
        session, _ = domain.schedule(
            plan(method="mentoring", capacity=1, speakers=["Bu Sri (senior analyst)"], days=4,
                 jp=8, end_date=START + dt.timedelta(days=27), place="Bagian Umum"),
            session_id="M1", city="salatiga",
        )
        return session

    def test_a_mentee_who_met_the_mentor_enough_earns_the_jp(self):
        session = with_roster(self.mentoring(), "junior")
        session = post_test(attend(session, "junior", 4, days=4), "junior", 70)
        done, events = finish(session)
        assert isinstance(events[0], ParticipantCompleted) and events[0].jp == 8
        assert events[0].method == "mentoring"
        assert done.completion.outcomes[0].certificate == "SAL-2026-M1-001"

    def test_meetings_are_attendance_days(self):
        session = with_roster(self.mentoring(), "junior")
        session = post_test(attend(session, "junior", 3, days=4), "junior", 100)
        done, _ = finish(session)  # 3 of 4 meetings = 75% < 80%
        assert done.completion.completed == 0


class TestEvaluationInputs:
    def test_feedback_carries_scores_only(self, session):
        event = domain.feedback(session, feedback_id="f1", content=5, speaker=4, method=3, relevance=5)
        assert event.model_dump(exclude={"session_id", "feedback_id"}) == {
            "content": 5, "speaker": 4, "method": 3, "relevance": 5}

    def test_follow_up_after_completion_once(self, session):
        session = with_roster(session, "ani")
        session = post_test(attend(session, "ani", 5), "ani", 90)
        done, _ = finish(session)
        args = dict(person_id=pid("ani"), applies_skills=True, rating=4, weeks_after=12)
        followed, events = domain.record_followup(done, **args)
        assert events[0].rating == 4 and events[0].weeks_after == 12
        retried, none = domain.record_followup(followed, **args)
        assert none == [] and retried == followed
        with pytest.raises(ConflictError):
            domain.record_followup(followed, **(args | {"rating": 2}))

    def test_follow_up_before_completion_is_refused(self, session):
        session = with_roster(session, "ani")
        with pytest.raises(ConflictError):
            domain.record_followup(session, person_id=pid("ani"), applies_skills=True, rating=4,
                                   weeks_after=4)


class TestIkm:
    def test_ikm_is_the_mean_element_score_times_25(self):
        assert domain.ikm_score([3.0] * 9) == Decimal("75.00")
        assert domain.ikm_score([4] * 9) == Decimal("100.00")
        assert domain.ikm_score([1] * 9) == Decimal("25.00")
        assert domain.ikm_score([3.2, 3.1, 3.4, 3.0, 3.3, 3.5, 2.9, 3.2, 3.6]) == Decimal("81.11")

    @pytest.mark.parametrize("ikm, grade", [
        ("100", "A"), ("88.31", "A"), ("88.30", "B"), ("76.61", "B"), ("76.60", "C"),
        ("65.00", "C"), ("64.99", "D"), ("25.00", "D"),
    ])
    def test_band_boundaries(self, ikm, grade):
        assert domain.ikm_band(Decimal(ikm)).grade == grade

    def test_rounding_decides_the_band_at_the_edge(self):
        # mean 3.5324 x 25 = 88.31 (A); mean 3.532 x 25 = 88.30 (B)
        assert domain.ikm_band(domain.ikm_score([3.5324] * 9)).grade == "A"
        assert domain.ikm_band(domain.ikm_score([3.532] * 9)).grade == "B"

    def test_a_survey_record_and_event(self):
        record, event = domain.survey(domain.SurveyInput(
            unit="DPMPTSP", period="2026-10", respondents=150, element_means=[3.6] * 9))
        assert (record["ikm"], record["grade"], record["label"]) == (90.0, "A", "Sangat Baik")
        assert event.ikm == 90.0 and event.element_means == (3.6,) * 9
        assert event.survey_id == domain.survey_id("dpmptsp", "2026-10")

    def test_rejects_an_element_outside_1_to_4(self):
        with pytest.raises(DomainError):
            domain.ikm_score([3] * 8 + [4.5])
