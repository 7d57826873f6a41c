"""The national figures over hand-built events: each measure, and merge == apply-all."""

import datetime as dt
import random

import pytest

from deploy.datagen import generate
from evaluation_builders import (
    CITY, assessed, attended, cancelled, completed, enrolled, feedback, followed_up, need,
    pid, registered, scheduled, session_completed, surveyed, waitlisted, wrap,
)
from services.evaluation import queries as q
from services.evaluation.figures import Figures, apply_all
from shared.events import EnrollmentPromoted, InsightPublished, decode


class TestTwentyJp:
    def test_twenty_jp_is_enough_and_nineteen_is_not(self):
        fig = apply_all([
            registered("ani"), registered("budi"), registered("citra"),
            completed("ani", "S1", jp=10), completed("ani", "S2", jp=10),
            completed("budi", "S1", jp=19),
        ])
        jp = q.summary(fig, q.Filters(year=2026), CITY)["jp"]
        assert (jp["people"], jp["at_least_target"], jp["below_target"]) == (3, 1, 2)
        assert jp["share_at_least_target"] == pytest.approx(1 / 3, abs=1e-4)
        assert q.below_target(fig, CITY, 2026) == sorted([pid("budi"), pid("citra")])

    def test_people_seen_in_any_event_count_even_when_never_registered(self):
        fig = apply_all([registered("ani"), enrolled("dewi", "S1")])
        assert q.summary(fig, city=CITY)["jp"]["people"] == 2
        assert pid("dewi") in q.below_target(fig, CITY, 2026)

    def test_jp_is_credited_to_the_calendar_year_of_completion(self):
        fig = apply_all([completed("ani", "S1", jp=24, on=dt.date(2025, 12, 30))])
        assert q.jp_ledger(fig, CITY, 2025) == {pid("ani"): 24}
        assert pid("ani") not in fig.jp.get((CITY, 2026), {})

    def test_staff_registered_earlier_stay_in_later_years(self):
        fig = apply_all([registered("ani", when=dt.datetime(2025, 1, 5, tzinfo=dt.UTC)),
                         completed("budi", "S1", jp=30)])
        assert set(q.jp_ledger(fig, CITY, 2026)) == {pid("ani"), pid("budi")}


class TestEnrollment:
    def test_cancellations_are_counted_by_reason(self):
        fig = apply_all([
            scheduled("S1"), *(enrolled(n, "S1") for n in "abcdef"), waitlisted("g", "S1"),
            cancelled("a", "S1", "busy"), cancelled("b", "S1", "busy"),
            cancelled("c", "S1", "illness"), cancelled("g", "S1", "other", was_waitlisted=True),
        ])
        enrollment = q.summary(fig, city=CITY)["enrollment"]
        assert enrollment["cancellations"] == {"busy": 2, "budget": 0, "illness": 1, "other": 1}
        assert enrollment["cancellations_total"] == 4
        assert enrollment["cancelled_from_waitlist"] == 1
        assert (enrollment["enrollments"], enrollment["waitlisted"]) == (6, 1)

    def test_attendance_and_completion_rates(self):
        fig = apply_all([
            scheduled("S1"), attended("a", "S1", 1), attended("a", "S1", 2),
            attended("b", "S1", 1), attended("b", "S1", 2, present=False),
            session_completed("S1", participants=4, done=3, actual_cost=1),
        ])
        enrollment = q.summary(fig, city=CITY)["enrollment"]
        assert enrollment["attendance_rate"] == 0.75
        assert enrollment["completion_rate"] == 0.75

    def test_events_before_the_schedule_join_the_session_dimensions(self):
        fig = apply_all([enrolled("a", "S1"), scheduled("S1", method="mentoring")])
        assert q.summary(fig, city=CITY)["by_method"]["mentoring"]["enrollment"]["enrollments"] == 1

    def test_a_session_never_scheduled_is_reported_as_unknown(self):
        fig = apply_all([enrolled("a", "S9")])
        assert "unknown" in q.summary(fig, city=CITY)["by_method"]


class TestFourLevels:
    def test_reaction_is_the_mean_feedback_score(self):
        fig = apply_all([scheduled("S1"), feedback("S1", 4, "f1"), feedback("S1", 3, "f2")])
        assert q.summary(fig, city=CITY)["reaction"]["mean_score"] == 3.5

    def test_learning_gain_pairs_pre_and_post_in_any_order(self):
        fig = apply_all([
            scheduled("S1"),
            assessed("a", "S1", "pre", 40), assessed("a", "S1", "post", 70),
            assessed("b", "S1", "post", 90), assessed("b", "S1", "pre", 80),  # post first
            assessed("c", "S1", "pre", 100), assessed("c", "S1", "post", 100),
            assessed("d", "S1", "pre", 50),  # no post yet: not a pair
        ])
        learning = q.summary(fig, city=CITY)["learning"]
        assert learning["pairs"] == 3
        assert learning["mean_gain"] == pytest.approx((30 + 10 + 0) / 3, abs=0.01)
        # (70-40)/60 = 0.5, (90-80)/20 = 0.5; a pre-test of 100 has no normalised gain
        assert learning["normalised_gain"] == 0.5
        assert learning["pre_tests"] == 4

    def test_behaviour_is_the_share_applying_skills(self):
        fig = apply_all([scheduled("S1"), followed_up("a", "S1", True),
                         followed_up("b", "S1", True), followed_up("c", "S1", False),
                         followed_up("d", "S1", True)])
        assert q.summary(fig, city=CITY)["behaviour"]["applies_skills_share"] == 0.75

    def test_results_compare_ikm_before_and_after_the_units_first_completion(self):
        fig = apply_all([
            surveyed("s1", "2026-01", 70.0), surveyed("s2", "2026-03", 72.0),  # March = before
            completed("a", "S1", on=dt.date(2026, 3, 20)),
            completed("b", "S2", on=dt.date(2026, 8, 1)),  # a later completion changes nothing
            surveyed("s3", "2026-06", 80.0), surveyed("s4", "2026-09", 82.0),
            surveyed("s5", "2026-06", 60.0, unit="Dinas Sosial"),  # never trained
        ])
        results = q.results(fig, CITY)
        assert (results["ikm_before"], results["ikm_after"], results["ikm_change"]) == (71, 81, 10)
        assert (results["units_compared"], results["units_without_training"]) == (1, 1)


class TestCost:
    def test_cost_per_participant_jp_is_actual_cost_over_jp_credited(self):
        fig = apply_all([
            scheduled("S1", jp=10, planned_cost=7_000_000),
            completed("a", "S1", jp=10), completed("b", "S1", jp=10),
            session_completed("S1", participants=2, done=2, actual_cost=6_000_000),
            scheduled("S2", planned_cost=5_000_000),  # not held yet: planned only
        ])
        cost = q.summary(fig, city=CITY)["cost"]
        assert cost["cost_per_participant_jp_rupiah"] == 300_000
        assert (cost["planned_rupiah"], cost["planned_of_completed_rupiah"]) == (12_000_000, 7_000_000)
        assert (cost["actual_rupiah"], cost["jp_credited"]) == (6_000_000, 20)


def test_needs_are_shown_next_to_what_was_delivered():
    fig = apply_all([
        need("n1", "Pengelolaan Keuangan Daerah", 10), need("n2", "Pengelolaan Keuangan Daerah", 6),
        scheduled("S1"), completed("a", "S1"), assessed("a", "S1", "post", 62),
    ])
    [item] = q.summary(fig, city=CITY)["needs"]
    assert (item["staff_needing"], item["needs"], item["completions"]) == (16, 2, 1)
    assert item["post_mean"] == 62


def test_timeseries_has_one_value_per_session_month():
    fig = apply_all([scheduled("S1", month=3), scheduled("S2", month=5),
                     enrolled("a", "S1"), enrolled("b", "S1"), enrolled("c", "S2")])
    assert q.timeseries(fig, "enrollments", city=CITY) == [
        {"month": "2026-03", "value": 2}, {"month": "2026-05", "value": 1}]


def test_insight_published_on_a_city_topic_is_ignored():
    payload = InsightPublished(insight_id="x", kind="jp-shortfall", year=2026, title="t", detail="d")
    fig = Figures()
    assert fig.apply(*wrap(payload, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))) is False
    assert fig.events == {}


def test_promotion_counts_for_the_session():
    fig = apply_all([scheduled("S1"), wrap(EnrollmentPromoted(
        session_id="S1", enrollment_id="e", person_id=pid("a")), dt.datetime(2026, 2, 1, tzinfo=dt.UTC))])
    assert q.summary(fig, city=CITY)["enrollment"]["promoted"] == 1


# --- merge ------------------------------------------------------------------------------------

def _generated_events():
    return [decode(r.value) for r in generate(["salatiga", "palu"], seed=7, staff=60)]


def _walk_doc(value, inside_list=False):
    """Fail on what FerretDB refuses: dotted or $-keys, arrays directly inside arrays."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert "." not in key and not key.startswith("$"), key
            _walk_doc(item)
    elif isinstance(value, (list, tuple)):
        assert not inside_list, "nested array"
        for item in value:
            _walk_doc(item, inside_list=True)


class TestMerge:
    def test_merging_deltas_of_any_batches_equals_applying_all_events(self):
        events = _generated_events()
        expected = q.national(apply_all(events))
        rng = random.Random(3)
        cuts = sorted(rng.sample(range(1, len(events)), 40))
        chunks = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
        rng.shuffle(chunks)  # partitions interleave arbitrarily
        total = Figures()
        for chunk in chunks:
            total.merge(Figures.from_doc(apply_all(chunk).to_doc()))
        # exact, not approximately: every stored sum is an integer
        assert q.national(total) == expected
        assert q.city_detail(total, "palu") == q.city_detail(apply_all(events), "palu")

    def test_the_document_is_mongo_safe_and_round_trips(self):
        events = _generated_events() + [surveyed("s.1", "2026-02", 70.0, unit="Kec. Sidorejo")]
        fig = apply_all(events)
        doc = fig.to_doc()
        _walk_doc(doc)
        assert q.national(Figures.from_doc(doc)) == q.national(fig)

    def test_an_unpaired_pre_test_pairs_across_deltas(self):
        first = apply_all([scheduled("S1"), assessed("a", "S1", "pre", 40)])
        second = apply_all([assessed("a", "S1", "post", 70)])
        merged = Figures().merge(second).merge(first)
        assert q.summary(merged, city=CITY)["learning"]["mean_gain"] == 30
        assert merged.unpaired == {}
