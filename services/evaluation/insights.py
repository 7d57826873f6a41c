"""Findings the nation sends back to a city (InsightPublished). Pure.

One insight per (city, kind, year) with a deterministic `insight_id`, so a city that receives
the same finding twice recognises it. Thresholds live here, in one table, to be tuned.
"""

from __future__ import annotations

from services.evaluation import queries as q
from services.evaluation.figures import JP_TARGET, Figures
from shared.events import InsightPublished

WEAK_REACTION = 3.5  # mean feedback score (1..5) below which a provider is "weak"
MIN_FEEDBACK = 10  # ... judged only with at least this many feedback forms
LOW_POST_TEST = 65.0  # mean post-test score below which a competency is "not learned"
LOW_COVERAGE = 0.5  # completions / staff needing a competency
LOW_COMPLETION = 0.75  # completed / enrolled participants of completed sessions
MIN_PARTICIPANTS = 20
MAX_PERSON_IDS = 10_000  # keeps one insight under Kafka's default 1 MB message size


def insight_id(city: str, kind: str, year: int) -> str:
    return f"{city}:{kind}:{year}"


def findings(fig: Figures, city: str, year: int) -> list[InsightPublished]:
    detail = q.summary(fig, q.Filters(year=year), city)
    found = [_jp_shortfall(fig, city, year, detail["jp"])]
    found += [_competency_gap(city, year, detail["needs"]),
              _weak_provider(city, year, detail["by_provider"]),
              _low_completion(city, year, detail["enrollment"])]
    return [f for f in found if f is not None]


def _insight(city: str, kind: str, year: int, **fields) -> InsightPublished:
    return InsightPublished(insight_id=insight_id(city, kind, year), kind=kind, year=year, **fields)


def _jp_shortfall(fig: Figures, city: str, year: int, jp: dict) -> InsightPublished | None:
    if not jp["below_target"]:
        return None
    below = q.below_target(fig, city, year)
    return _insight(
        city, "jp-shortfall", year,
        title=f"{jp['below_target']} of {jp['people']} staff below {JP_TARGET} JP in {year}",
        detail=f"Every civil servant has the right to at least {JP_TARGET} JP a year "
               f"(PP 17/2020); plan sessions for the people listed.",
        figures={"people": jp["people"], "below_target": jp["below_target"],
                 "share_at_least_target": jp["share_at_least_target"] or 0.0,
                 "listed": min(len(below), MAX_PERSON_IDS)},
        person_ids=tuple(below[:MAX_PERSON_IDS]),
    )


def _competency_gap(city: str, year: int, needs: list[dict]) -> InsightPublished | None:
    gaps = [n for n in needs
            if (n["coverage"] is not None and n["coverage"] < LOW_COVERAGE)
            or (n["post_mean"] is not None and n["post_mean"] < LOW_POST_TEST)]
    if not gaps:
        return None
    figures: dict[str, float] = {}
    for need in gaps[:20]:
        figures[f"{need['competency']} coverage"] = need["coverage"] or 0.0
        if need["post_mean"] is not None:
            figures[f"{need['competency']} post-test mean"] = need["post_mean"]
    return _insight(
        city, "competency-gap", year,
        title=f"{len(gaps)} needed competencies under-served in {year}",
        detail="; ".join(
            f"{n['competency']}: {n['completions']} completions for {n['staff_needing']} staff"
            + (f", post-test mean {n['post_mean']}" if n["post_mean"] is not None else "")
            for n in gaps[:10]
        ),
        figures=figures,
    )


def _weak_provider(city: str, year: int, by_provider: dict) -> InsightPublished | None:
    weak = {
        provider: f["reaction"]["mean_score"] for provider, f in by_provider.items()
        if f["reaction"]["feedback"] >= MIN_FEEDBACK
        and (f["reaction"]["mean_score"] or 5) < WEAK_REACTION
    }
    if not weak:
        return None
    return _insight(
        city, "weak-provider", year,
        title=f"Participants rate {', '.join(sorted(weak))} below {WEAK_REACTION} of 5",
        detail="Reaction (level 1) mean score per provider; review speakers and material.",
        figures=weak,
    )


def _low_completion(city: str, year: int, enrollment: dict) -> InsightPublished | None:
    rate = enrollment["completion_rate"]
    if rate is None or enrollment["participants_of_completed_sessions"] < MIN_PARTICIPANTS:
        return None
    if rate >= LOW_COMPLETION:
        return None
    return _insight(
        city, "low-completion", year,
        title=f"Only {rate:.0%} of participants completed their training in {year}",
        detail="Completed / enrolled participants of completed sessions. Busy staff is the "
               "usual cause: check the cancellation reasons and the scheduling.",
        figures={"completion_rate": rate, "cancellations_busy":
                 float(enrollment["cancellations"]["busy"])},
    )
