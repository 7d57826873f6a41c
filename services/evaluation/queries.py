"""Read side of `Figures`: means, rates and breakdowns derived from the stored sums. Pure.

Every function returns plain dicts (JSON-ready) so the API, the insights and the tests share
one definition of each measure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from services.evaluation.figures import (
    CANCEL_REASONS, GAIN_SCALE, JP_TARGET, SCORE_SCALE, UNKNOWN, Figures,
)


@dataclass(frozen=True)
class Filters:
    """Slices a reader may ask for; None means all."""

    year: int | None = None
    competency_type: str | None = None
    method: str | None = None
    provider: str | None = None


@dataclass(frozen=True)
class SessionRow:
    city: str
    session_id: str
    competency_type: str
    competency: str
    method: str
    provider: str
    month: str  # start month, or the first month the session was seen in when not scheduled
    n: dict[str, float]


def session_rows(fig: Figures, filters: Filters = Filters(), city: str | None = None) -> list[SessionRow]:
    rows = []
    for (row_city, session_id), session in fig.sessions.items():
        if city is not None and row_city != city:
            continue
        dims = session["dims"]
        row = SessionRow(
            city=row_city, session_id=session_id,
            competency_type=dims.get("competency_type", UNKNOWN),
            competency=dims.get("competency", UNKNOWN), method=dims.get("method", UNKNOWN),
            provider=dims.get("provider", UNKNOWN), month=dims.get("month") or dims["seen"],
            n=session["n"],
        )
        if _matches(row, filters):
            rows.append(row)
    return rows


def _matches(row: SessionRow, f: Filters) -> bool:
    return (
        (f.year is None or row.month.startswith(f"{f.year:04d}-"))
        and (f.competency_type is None or row.competency_type == f.competency_type)
        and (f.method is None or row.method == f.method)
        and (f.provider is None or row.provider == f.provider)
    )


def _ratio(part: float, whole: float, digits: int = 4, scale: int = 1) -> float | None:
    """part / whole rounded for display; `scale` undoes the integer units of stored sums."""
    return round(part / whole / scale, digits) if whole else None


def training(rows: Iterable[SessionRow]) -> dict[str, Any]:
    """Enrollment, the first three evaluation levels and cost over some sessions."""
    total: dict[str, int] = defaultdict(int)
    for row in rows:
        for name, amount in row.n.items():
            total[name] += amount
        if row.n.get("session_completed"):
            # cost per participant-JP compares like with like: sessions with an actual cost
            total["planned_cost_of_completed"] += row.n.get("planned_cost", 0)
            total["jp_of_completed"] += row.n.get("jp_credited", 0)
    t = total
    feedback_scores = t["fb_content"] + t["fb_speaker"] + t["fb_method"] + t["fb_relevance"]
    return {
        "sessions": {
            "scheduled": int(t["scheduled"]), "cancelled": int(t["session_cancelled"]),
            "completed": int(t["session_completed"]),
        },
        "enrollment": {
            "enrollments": int(t["enrolled"]), "waitlisted": int(t["waitlisted"]),
            "promoted": int(t["promoted"]),
            "cancellations": {r: int(t[f"cancelled_{r}"]) for r in CANCEL_REASONS},
            "cancellations_total": int(sum(t[f"cancelled_{r}"] for r in CANCEL_REASONS)),
            "cancelled_from_waitlist": int(t["cancelled_from_waitlist"]),
            "attendance_rate": _ratio(t["present"], t["attendance"]),
            "completion_rate": _ratio(t["completed"], t["participants"]),
            "participants_of_completed_sessions": int(t["participants"]),
            "completions": int(t["completions"]),
        },
        "reaction": {
            "feedback": int(t["feedback"]),
            "mean_score": _ratio(feedback_scores, 4 * t["feedback"], 3),
            "content": _ratio(t["fb_content"], t["feedback"], 3),
            "speaker": _ratio(t["fb_speaker"], t["feedback"], 3),
            "method": _ratio(t["fb_method"], t["feedback"], 3),
            "relevance": _ratio(t["fb_relevance"], t["feedback"], 3),
        },
        "learning": {
            "pre_tests": int(t["pre_n"]), "post_tests": int(t["post_n"]),
            "pre_mean": _ratio(t["pre_sum"], t["pre_n"], 2, SCORE_SCALE),
            "post_mean": _ratio(t["post_sum"], t["post_n"], 2, SCORE_SCALE),
            "pairs": int(t["pairs"]),
            "mean_gain": _ratio(t["gain_sum"], t["pairs"], 2, SCORE_SCALE),
            "normalised_gain": _ratio(t["ngain_sum"], t["ngain_n"], 4, GAIN_SCALE),
        },
        "behaviour": {
            "followups": int(t["followups"]),
            "applies_skills_share": _ratio(t["applies_skills"], t["followups"]),
            "mean_rating": _ratio(t["fu_rating"], t["followups"], 3),
        },
        "cost": {
            "planned_rupiah": int(t["planned_cost"]),
            "actual_rupiah": int(t["actual_cost"]),
            "planned_of_completed_rupiah": int(t["planned_cost_of_completed"]),
            "jp_credited": int(t["jp_credited"]),
            "cost_per_participant_jp_rupiah": _ratio(t["actual_cost"], t["jp_of_completed"], 0),
        },
    }


def latest_year(fig: Figures, city: str | None = None) -> int | None:
    years = [y for (c, y) in fig.jp if city is None or c == city]
    return max(years, default=None)


def jp_ledger(fig: Figures, city: str, year: int) -> dict[str, int]:
    """person -> JP in `year`, for everyone registered by then or seen that year in the city."""
    ledger = {p: 0 for p, since in fig.staff.get(city, {}).items() if since <= year}
    ledger.update(fig.jp.get((city, year), {}))
    return ledger


def jp_summary(ledgers: Iterable[dict[str, int]], year: int | None) -> dict[str, Any]:
    people = at_target = jp_total = 0
    for ledger in ledgers:
        people += len(ledger)
        at_target += sum(1 for jp in ledger.values() if jp >= JP_TARGET)
        jp_total += sum(ledger.values())
    return {
        "year": year, "target_jp": JP_TARGET, "people": people,
        "at_least_target": at_target, "below_target": people - at_target,
        "share_at_least_target": _ratio(at_target, people), "jp_total": jp_total,
        "jp_per_person": _ratio(jp_total, people, 2),
    }


def below_target(fig: Figures, city: str, year: int) -> list[str]:
    return sorted(p for p, jp in jp_ledger(fig, city, year).items() if jp < JP_TARGET)


def results(fig: Figures, city: str | None = None, year: int | None = None) -> dict[str, Any]:
    """Level 4: each unit's IKM before its staff were first trained vs after.

    A survey closing in the month of the first completion counts as "before": it was mostly
    answered before the training could change anything.
    """
    before = [0, 0]
    after = [0, 0]
    units = untrained = 0
    for (unit_city, unit), periods in fig.ikm.items():
        if city is not None and unit_city != city:
            continue
        first = fig.first_completion.get((unit_city, unit))
        if first is None:
            untrained += 1
            continue
        cells = [
            (period <= first, cell) for period, cell in periods.items()
            if year is None or period.startswith(f"{year:04d}-")
        ]
        if not (any(b for b, _ in cells) and any(not b for b, _ in cells)):
            continue  # compare only units measured on both sides
        units += 1
        for is_before, (total, count) in cells:
            side = before if is_before else after
            side[0] += total
            side[1] += count
    mean_before = _ratio(before[0], before[1], 2, SCORE_SCALE)
    mean_after = _ratio(after[0], after[1], 2, SCORE_SCALE)
    return {
        "units_compared": units, "units_without_training": untrained,
        "ikm_before": mean_before, "ikm_after": mean_after,
        "ikm_change": round(mean_after - mean_before, 2) if units else None,
    }


def needs(fig: Figures, rows: list[SessionRow], city: str | None, year: int | None) -> list[dict]:
    """Training needs by competency next to what was delivered in that competency."""
    delivered: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        cell = delivered[(row.competency_type, row.competency)]
        cell[0] += row.n.get("completions", 0)
        cell[1] += row.n.get("post_sum", 0)
        cell[2] += row.n.get("post_n", 0)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (need_city, plan_year, ctype, competency), (staff, count) in fig.needs.items():
        if (city is not None and need_city != city) or (year is not None and plan_year != year):
            continue
        item = out.setdefault((ctype, competency), {
            "competency_type": ctype, "competency": competency, "staff_needing": 0, "needs": 0,
        })
        item["staff_needing"] += staff
        item["needs"] += count
    for (ctype, competency), item in out.items():
        completions, post_sum, post_n = delivered.get((ctype, competency), (0, 0, 0))
        item["completions"] = int(completions)
        item["post_mean"] = _ratio(post_sum, post_n, 2, SCORE_SCALE)
        item["coverage"] = _ratio(completions, item["staff_needing"])
    return sorted(out.values(), key=lambda i: (-i["staff_needing"], i["competency"]))


def _by(rows: list[SessionRow], dim: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[SessionRow]] = defaultdict(list)
    for row in rows:
        groups[getattr(row, dim)].append(row)
    return {key: training(group) for key, group in sorted(groups.items())}


def summary(fig: Figures, filters: Filters = Filters(), city: str | None = None,
            rows: list[SessionRow] | None = None) -> dict[str, Any]:
    """Everything for one city (or the nation when city is None)."""
    rows = session_rows(fig, filters, city) if rows is None else rows
    cities = [city] if city is not None else fig.cities
    year = filters.year or latest_year(fig, city)
    ledgers = [jp_ledger(fig, c, year) for c in cities] if year is not None else []
    return {
        "events": sum(fig.events.get(c, 0) for c in cities),
        **training(rows),
        "jp": jp_summary(ledgers, year),
        "results": results(fig, city, filters.year),
        "needs": needs(fig, rows, city, filters.year),
        "by_competency_type": _by(rows, "competency_type"),
        "by_method": _by(rows, "method"),
        "by_provider": _by(rows, "provider"),
    }


def national(fig: Figures, filters: Filters = Filters()) -> dict[str, Any]:
    rows = session_rows(fig, filters)
    per_city: dict[str, list[SessionRow]] = {c: [] for c in fig.cities}
    for row in rows:
        per_city.setdefault(row.city, []).append(row)
    return {
        "cities_reporting": len(fig.cities),
        "national": summary(fig, filters, rows=rows),
        "cities": {c: summary(fig, filters, c, rows=r) for c, r in sorted(per_city.items())},
    }


def city_detail(fig: Figures, city: str, filters: Filters = Filters()) -> dict[str, Any]:
    return {"city": city, **summary(fig, filters, city)}


# metric name -> (section, field) of `training()`; "ikm" comes from the surveys instead
TIMESERIES_METRICS: dict[str, tuple[str, str]] = {
    "enrollments": ("enrollment", "enrollments"),
    "waitlisted": ("enrollment", "waitlisted"),
    "cancellations": ("enrollment", "cancellations_total"),
    "attendance_rate": ("enrollment", "attendance_rate"),
    "completion_rate": ("enrollment", "completion_rate"),
    "completions": ("enrollment", "completions"),
    "reaction": ("reaction", "mean_score"),
    "learning_gain": ("learning", "mean_gain"),
    "normalised_gain": ("learning", "normalised_gain"),
    "behaviour": ("behaviour", "applies_skills_share"),
    "planned_cost": ("cost", "planned_rupiah"),
    "actual_cost": ("cost", "actual_rupiah"),
    "jp_credited": ("cost", "jp_credited"),
    "cost_per_participant_jp": ("cost", "cost_per_participant_jp_rupiah"),
}
METRICS = (*TIMESERIES_METRICS, "ikm")


def timeseries(fig: Figures, metric: str, filters: Filters = Filters(),
               city: str | None = None) -> list[dict[str, Any]]:
    """One value per month ("YYYY-MM"), oldest first; sessions by start month, IKM by period."""
    if metric == "ikm":
        return list(_ikm_by_month(fig, filters.year, city))
    section, field = TIMESERIES_METRICS[metric]
    months: dict[str, list[SessionRow]] = defaultdict(list)
    for row in session_rows(fig, filters, city):
        months[row.month].append(row)
    return [
        {"month": month, "value": training(rows)[section][field]}
        for month, rows in sorted(months.items())
    ]


def _ikm_by_month(fig: Figures, year: int | None, city: str | None) -> Iterator[dict[str, Any]]:
    months: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (unit_city, _unit), periods in fig.ikm.items():
        if city is not None and unit_city != city:
            continue
        for period, (total, count) in periods.items():
            if year is None or period.startswith(f"{year:04d}-"):
                months[period][0] += total
                months[period][1] += count
    for month, (total, count) in sorted(months.items()):
        yield {"month": month, "value": _ratio(total, count, 2, SCORE_SCALE)}
