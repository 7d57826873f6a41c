"""The demo data set (`deploy.demo`) loaded into one real city and seen by the real nation.

The city is a throw-away node given Salatiga's programme, so other tests' events on the
federation's topics cannot move its figures; the nation gets a database (and so a consumer
group) of its own and reads every city topic from the beginning.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from cloudevents.core.formats.json import JSONFormat

from deploy import demo
from services.enrollment.domain import parse_nip
from services.sessions.domain import SessionPlan, check_plan

WAIT_SECONDS = 30


# --- the plan alone (no I/O) ----------------------------------------------------------------

@pytest.mark.parametrize("city", sorted(demo.PROGRAMMES))
def test_plan_is_valid_for_the_domains_and_deterministic(city: str) -> None:
    plan = demo.plan_city(city, city, seed=7)
    again = demo.plan_city(city, city, seed=7)
    assert plan.csv_text == again.csv_text and [s.body for s in plan.sessions] == [
        s.body for s in again.sessions]
    assert demo.plan_city(city, city, seed=8).csv_text != plan.csv_text

    assert 40 <= len(plan.staff) <= 80
    for person in plan.staff:
        nip = parse_nip(person.nip)  # raises on a bad birth date, appointment or sex digit
        assert nip.appointed > (nip.birth_date.year, nip.birth_date.month)
    assert plan.csv_text.count("\n") == len(plan.staff) + plan.bad_rows + 1
    for session in plan.sessions:
        check_plan(SessionPlan(**session.body))  # the sessions service's own cross-field rules
    assert 6 <= len(plan.sessions) <= 10
    assert any(len(s.enrollees) > s.spec.capacity for s in plan.sessions), "no full session"
    reasons = [r for s in plan.sessions for _, r, _ in s.cancels]
    assert max(set(reasons), key=reasons.count) == "busy"
    ikm = {(s["unit"], s["period"]): sum(s["element_means"]) / 9 * 25 for s in plan.surveys}
    units = {u for u, _ in ikm}
    latest = {u: max(p for v, p in ikm if v == u) for u in units}
    rose = [u for u in units if ikm[(u, latest[u])] > max(v for (w, p), v in ikm.items()
                                                          if w == u and p != latest[u])]
    assert len(rose) >= len(units) - 1, "the IKM should rise after the training in most units"


# --- the load against real services ---------------------------------------------------------

@pytest.fixture(scope="module")
def city(infra):
    node = f"demotest-{uuid.uuid4().hex[:6]}"
    fast = {"outbox_poll_seconds": "0.05"}
    enrollment = infra.start_service(node, "enrollment", **fast)
    sessions = infra.start_service(node, "sessions", **fast)
    # Started after the city's topics exist, so its pattern subscription sees them at once.
    national = infra.start_service("national", "evaluation",
                                   mongo_db=f"bangkom_national_demo_{uuid.uuid4().hex[:8]}")
    urls = {f"{node}/enrollment": enrollment.url, f"{node}/sessions": sessions.url,
            "national/evaluation": national.url}
    tokens = {node: {r: infra.token(node, r) for r in ("operator", "viewer")}}
    started = time.monotonic()
    summary = demo.load(urls, tokens, programmes={node: "salatiga"}, progress=False,
                        strict=True)
    seconds = time.monotonic() - started
    print(f"demo load of one city: {seconds:.1f} s, "  # shown with -s: where the time went
          f"{summary['cities'][node].get('phase_seconds')}")
    return {"node": node, "urls": urls, "tokens": tokens, "national": national.url,
            "summary": summary, "seconds": seconds}


def _national_view(url: str, node: str, expect: dict) -> dict:
    """The nation's detail of `node` once it has every completion and survey, or the last seen."""
    deadline = time.monotonic() + WAIT_SECONDS
    seen: dict = {}
    with httpx.Client(base_url=url, timeout=10) as http:
        while time.monotonic() < deadline:
            response = http.get(f"/cities/{node}")
            if response.status_code == 200:
                seen = response.json()
                if (seen["enrollment"]["completions"] == expect["completions"]
                        and seen["enrollment"]["enrollments"] == expect["enrollments"]
                        and seen["jp"]["people"] == expect["staff_imported"]
                        and seen["results"]["units_compared"] > 0
                        and seen["behaviour"]["followups"] == expect["followups"]):
                    return seen
            time.sleep(0.5)
    return seen


def test_load_fills_one_city(city) -> None:
    row = city["summary"]["cities"][city["node"]]
    assert "error" not in row and not row.get("skipped")
    assert 40 <= row["staff_imported"] <= 80
    assert row["csv_rejected"] == 2
    assert {e["field"] for e in row["csv_errors"]} == {"nip", "rank_group"}
    assert row["sessions_completed"] >= 3 and row["sessions_cancelled"] == 1
    assert row["waitlisted"] > 0 and row["promoted"] > 0
    reasons = row["cancellation_reasons"]
    assert max(reasons, key=reasons.get) == "busy"
    assert row["completions"] > 0 and row["not_completed"] > 0 and row["missed_attendance"] > 0
    assert 0 < row["people_at_least_20_jp"] < row["people_below_20_jp"]
    assert row["feedback"] > 0 and row["followups"] > 0 and row["surveys"] > 0 and row["needs"] > 0
    # Well under a minute on an idle machine; the bound only catches a load that hangs.
    assert city["seconds"] < 240, f"the load took {city['seconds']:.1f} s: {row['phase_seconds']}"


def test_nation_sees_the_city(city) -> None:
    row = city["summary"]["cities"][city["node"]]
    view = _national_view(city["national"], city["node"], row)
    assert view, "the nation never heard of the city"
    enrollment = view["enrollment"]
    assert enrollment["enrollments"] == row["enrollments"]
    assert enrollment["waitlisted"] == row["waitlisted"]
    assert enrollment["promoted"] == row["promoted"]
    assert enrollment["cancellations_total"] == row["cancellations"]
    assert enrollment["completions"] == row["completions"]
    assert 0 < enrollment["completion_rate"] < 1
    assert view["sessions"]["completed"] == row["sessions_completed"]
    assert view["sessions"]["cancelled"] == row["sessions_cancelled"]

    jp = view["jp"]
    assert jp["people"] == row["staff_imported"]
    assert jp["jp_total"] == row["jp_credited"]
    assert jp["at_least_target"] == row["people_at_least_20_jp"]
    assert 0 < jp["jp_per_person"] < 20
    own = httpx.get(f"{city['national']}/cities/{city['node']}/below-target", timeout=10,
                    headers={"Authorization": f"Bearer {city['tokens'][city['node']]['viewer']}"})
    assert len(own.json()["person_ids"]) == row["people_below_20_jp"]
    assert httpx.get(f"{city['national']}/cities/{city['node']}/below-target").status_code == 401

    learning = view["learning"]
    assert learning["pairs"] > 0 and learning["post_mean"] > learning["pre_mean"]
    assert view["reaction"]["feedback"] == row["feedback"]
    assert view["behaviour"]["followups"] == row["followups"]

    results = view["results"]
    assert results["units_compared"] > 0
    assert results["ikm_after"] > results["ikm_before"]
    assert 0 < results["ikm_change"] < 10, "the IKM should rise modestly"
    assert any(n["coverage"] for n in view["needs"])


def test_a_second_load_changes_nothing(city) -> None:
    node = city["node"]
    again = demo.load(city["urls"], city["tokens"], programmes={node: "salatiga"},
                      progress=False, strict=True)
    assert again["cities"][node]["skipped"] is True
    with httpx.Client(base_url=city["urls"][f"{node}/sessions"], timeout=10,
                      headers={"Authorization": f"Bearer {city['tokens'][node]['viewer']}"}) as http:
        sessions = http.get("/sessions").json()
    assert len(sessions) == city["summary"]["cities"][node]["sessions"]


# --- the wire format, read by the CloudEvents project's own SDK -----------------------------

def sdk_reads(record):
    """The record as the CloudEvents Python SDK reads a Kafka message (content mode detected
    from the headers, as any consumer built on it does)."""
    from cloudevents.core.bindings import kafka as ce_kafka

    message = ce_kafka.KafkaMessage(headers={k: v for k, v in record.headers or ()},
                                    key=record.key, value=record.value)
    return ce_kafka.from_kafka(message, JSONFormat())


async def test_every_message_on_the_city_topics_is_read_by_the_cloudevents_sdk(city, infra) -> None:
    import asyncio

    from shared.events import EVENT_TYPES, decode
    from shared.topics import topic

    node = city["node"]
    deadline = time.monotonic() + WAIT_SECONDS
    while not (insights := await infra.read_topic(topic(node, "insights"))):
        assert time.monotonic() < deadline, "the nation sent the city no insight"
        await asyncio.sleep(1)
    seen_types: set[str] = set()
    for stream in ("enrollment", "sessions", "insights"):
        records = insights if stream == "insights" else await infra.read_topic(topic(node, stream))
        assert records, stream
        for record in records:
            assert dict(record.headers)["content-type"] == b"application/cloudevents+json"
            event = sdk_reads(record)
            ours, payload = decode(record.value)
            assert event.get_id() == str(ours.id) and event.get_type() == ours.type
            assert event.get_source() == ours.source and event.get_subject() == ours.subject
            assert event.get_extension("city") == node
            assert event.get_data() == payload.model_dump(mode="json")
            seen_types.add(event.get_type())
    # the demo's programme exercises nearly every contract: the check is not vacuous
    assert len(seen_types) >= len(EVENT_TYPES) - 3, sorted(set(EVENT_TYPES) - seen_types)
