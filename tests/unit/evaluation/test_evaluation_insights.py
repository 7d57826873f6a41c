"""Findings sent back to a city."""

from evaluation_builders import (
    CITY, completed, feedback, need, pid, registered, scheduled, session_completed,
)
from services.evaluation import insights
from services.evaluation.figures import apply_all


def _kinds(fig):
    return {i.kind: i for i in insights.findings(fig, CITY, 2026)}


def test_jp_shortfall_lists_the_people_below_twenty_jp_under_a_stable_id():
    fig = apply_all([registered("ani"), registered("budi"), completed("ani", "S1", jp=20)])
    shortfall = _kinds(fig)["jp-shortfall"]
    assert shortfall.person_ids == (pid("budi"),)
    assert shortfall.insight_id == insights.insight_id(CITY, "jp-shortfall", 2026)
    assert insights.findings(fig, CITY, 2026) == insights.findings(fig, CITY, 2026)


def test_no_shortfall_when_everyone_has_twenty_jp():
    fig = apply_all([registered("ani"), completed("ani", "S1", jp=20)])
    assert "jp-shortfall" not in _kinds(fig)


def test_weak_provider_low_completion_and_competency_gap():
    events = [scheduled("S1", provider="university"),
              session_completed("S1", participants=30, done=15, actual_cost=1),
              need("n1", "Analisis Data", 25), completed("ani", "S1")]
    events += [feedback("S1", 2, f"f{i}") for i in range(12)]
    found = _kinds(apply_all(events))
    assert found["weak-provider"].figures == {"university": 2.0}
    assert found["low-completion"].figures["completion_rate"] == 0.5
    assert "Analisis Data" in found["competency-gap"].detail
