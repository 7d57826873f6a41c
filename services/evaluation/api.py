"""National read API: aggregates over every city's events.

Handlers are `async def` on purpose: they run on the event loop, between two batches the
ingest merges, never in a thread while a merge is changing the dicts they read.

No authentication for the aggregates (counts, rates, rupiah): they hold no person. Person ids
are personal data all the same (every city holds the pseudonym key, and the NIP space is small
enough to try every NIP), so the below-20-JP list is served only to the city the people belong
to, with one of that city's tokens (`BANGKOM_CITY_TOKEN_HASHES`): never publicly, never to
another city. Writing is impossible: the figures come only from Kafka.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.evaluation import queries as q
from services.evaluation.figures import Figures
from shared.errors import NotFoundError
from shared.events import CompetencyType, Method, Provider
from shared.http import hash_token

log = logging.getLogger(__name__)
router = APIRouter(tags=["national evaluation"])
_bearer = HTTPBearer(auto_error=False)

Rate = Annotated[float | None, Field(description="0..1; null when there is nothing to divide by")]


class Sessions(BaseModel):
    scheduled: int
    cancelled: int
    completed: int


class Enrollment(BaseModel):
    enrollments: int
    waitlisted: int
    promoted: int
    cancellations: dict[str, int] = Field(description="by reason: busy, budget, illness, other")
    cancellations_total: int
    cancelled_from_waitlist: int
    attendance_rate: Rate = Field(description="present / attendance records")
    completion_rate: Rate = Field(
        description="completed / enrolled participants of completed sessions")
    participants_of_completed_sessions: int
    completions: int


class Reaction(BaseModel):
    """Level 1: participant feedback, scores 1..5."""
    feedback: int
    mean_score: float | None = Field(description="mean of the four scores")
    content: float | None
    speaker: float | None
    method: float | None
    relevance: float | None


class Learning(BaseModel):
    """Level 2: pre/post tests, scores 0..100."""
    pre_tests: int
    post_tests: int
    pre_mean: float | None
    post_mean: float | None
    pairs: int = Field(description="participants with both a pre and a post test")
    mean_gain: float | None = Field(description="mean of post - pre")
    normalised_gain: float | None = Field(description="mean of (post - pre) / (100 - pre)")


class Behaviour(BaseModel):
    """Level 3: supervisor follow-ups weeks after the training."""
    followups: int
    applies_skills_share: Rate
    mean_rating: float | None


class Cost(BaseModel):
    planned_rupiah: int = Field(description="planned cost of all scheduled sessions")
    actual_rupiah: int = Field(description="actual cost of completed sessions")
    planned_of_completed_rupiah: int
    jp_credited: int
    cost_per_participant_jp_rupiah: float | None = Field(
        description="actual cost / JP credited, over completed sessions")


class Training(BaseModel):
    sessions: Sessions
    enrollment: Enrollment
    reaction: Reaction
    learning: Learning
    behaviour: Behaviour
    cost: Cost


class JP(BaseModel):
    year: int | None
    target_jp: int
    people: int = Field(description="registered by then, or seen in an event that year")
    at_least_target: int
    below_target: int
    share_at_least_target: Rate
    jp_total: int
    jp_per_person: float | None


class Results(BaseModel):
    """Level 4: public satisfaction (IKM 25..100) of units before vs after their staff trained."""
    units_compared: int
    units_without_training: int
    ikm_before: float | None
    ikm_after: float | None
    ikm_change: float | None


class Need(BaseModel):
    competency_type: str
    competency: str
    staff_needing: int
    needs: int
    completions: int
    post_mean: float | None
    coverage: Rate = Field(description="completions / staff needing (may exceed 1)")


class Summary(Training):
    events: int
    jp: JP
    results: Results
    needs: list[Need]
    by_competency_type: dict[str, Training]
    by_method: dict[str, Training]
    by_provider: dict[str, Training]


class Reporting(BaseModel):
    """How current a city's figures here are: a city that is up beats every few seconds, so
    `behind` means its broker, its link or its services are down (services.evaluation.heard)."""

    last_event_time: float | None = Field(description="epoch seconds of the newest event counted")
    last_heard: float | None = Field(description="epoch seconds of the newest heartbeat")
    behind: bool = Field(description="nothing heard from the city for `behind_seconds`")


class NationalFigures(BaseModel):
    generation: int = Field(description="rebuild generation (+1 per `bangkom replay`)")
    cities_reporting: int
    national: Summary
    cities: dict[str, Summary]
    reporting: dict[str, Reporting] = Field(
        description="every city counted or heard from: its newest event and heartbeat")


class CityDetail(Summary, Reporting):
    city: str


class BelowTarget(BaseModel):
    city: str
    year: int | None
    person_ids: list[str] = Field(description="pseudonymous ids of staff below 20 JP in `year`")


class City(Reporting):
    city: str
    events: int


class Point(BaseModel):
    month: str = Field(description="YYYY-MM")
    value: float | None


class Timeseries(BaseModel):
    metric: str
    city: str | None
    points: list[Point]


async def figures(request: Request) -> Figures:
    ingest = request.app.state.ingest
    if not ingest.ready.is_set():
        raise HTTPException(503, "The national figures are being loaded; try again shortly.",
                            {"Retry-After": "2"})
    return ingest.figures


def filters(
    year: Annotated[int | None, Query(ge=2000, le=2100, description="calendar year")] = None,
    competency_type: CompetencyType | None = None,
    method: Method | None = None,
    provider: Provider | None = None,
) -> q.Filters:
    return q.Filters(year, competency_type, method, provider)


Fig = Annotated[Figures, Depends(figures)]
Filt = Annotated[q.Filters, Depends(filters)]


def _known(fig: Figures, city: str) -> None:
    if city not in fig.events:
        raise NotFoundError("city", f"no events from {city!r} have been received")


@router.get("/figures", response_model=NationalFigures,
            summary="National summary and every city's summary")
async def get_figures(request: Request, fig: Fig, f: Filt) -> dict:
    heard = request.app.state.heard
    cities = sorted({*fig.cities, *heard.last})
    return {"generation": request.app.state.ingest.generation.number, **q.national(fig, f),
            "reporting": {c: heard.report(c, fig.last_event.get(c)) for c in cities}}


@router.get("/cities", response_model=list[City], summary="Cities the nation has heard from")
async def get_cities(request: Request, fig: Fig) -> list[dict]:
    heard = request.app.state.heard
    return [{"city": c, "events": fig.events.get(c, 0), **heard.report(c, fig.last_event.get(c))}
            for c in sorted({*fig.cities, *heard.last})]


@router.get("/cities/{city}", response_model=CityDetail,
            summary="One city in detail, with the staff below 20 JP")
async def get_city(request: Request, city: str, fig: Fig, f: Filt) -> dict:
    _known(fig, city)
    return {**q.city_detail(fig, city, f),
            **request.app.state.heard.report(city, fig.last_event.get(city))}


def city_token_table(settings) -> dict[str, str]:
    """sha256 hex of a city's token -> that city, from `city:hash` entries (the setting's and
    its file's; a file that cannot be read admits no one more and is logged)."""
    entries = settings.city_token_hashes
    if settings.city_token_hashes_file:
        try:
            entries += "," + Path(settings.city_token_hashes_file).read_text().replace("\n", ",")
        except OSError as error:
            log.error("city token hashes not read from %s: %s", settings.city_token_hashes_file,
                      error)
    table: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in entries.split(","))):
        city, _, digest = item.partition(":")
        if city and digest:
            table[digest.lower()] = city
    return table


async def own_city(request: Request, city: str,
                   credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    """Admit a token of `city` itself (viewer or operator), as configured at the nation."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, f"Person ids are given only to {city}: send one of its tokens "
                                 "as 'Authorization: Bearer <token>'.", challenge)
    digest = hash_token(credentials.credentials)
    owner = next((c for h, c in city_token_table(request.app.state.settings).items()
                  if hmac.compare_digest(h, digest)), None)
    if owner is None:
        raise HTTPException(401, "Unknown or revoked token.", challenge)
    if owner != city:
        raise HTTPException(403, f"This token belongs to {owner}; these people belong to {city}.")
    return owner


@router.get("/cities/{city}/below-target", response_model=BelowTarget,
            summary="The city's own staff below 20 JP (person ids): that city's token only")
async def get_below_target(fig: Fig, city: Annotated[str, Depends(own_city)],
                           year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> dict:
    _known(fig, city)
    year = year or q.latest_year(fig, city)
    return {"city": city, "year": year,
            "person_ids": q.below_target(fig, city, year) if year is not None else []}


@router.get("/timeseries", response_model=Timeseries, summary="One measure per month")
async def get_timeseries(
    fig: Fig, f: Filt,
    metric: Annotated[Literal[q.METRICS], Query(description="the measure")],  # type: ignore[valid-type]
    city: Annotated[str | None, Query(description="one city; all when omitted")] = None,
) -> dict:
    if city is not None:
        _known(fig, city)
    return {"metric": metric, "city": city, "points": q.timeseries(fig, metric, f, city)}
