"""The web edge of every service: pages and assets served, the read-only JSON the pages need,
auth and same-host CORS on it, and dictionaries that cover every text the pages show."""

import datetime as dt
import json
import re
import uuid

import httpx
import pytest

from services.enrollment import web as enrollment_web
from services.enrollment.api import router as enrollment_api
from services.enrollment.domain import Enrollment, Participant, Roster, SessionInfo, StaffMember
from services.enrollment.handlers import Deps
from services.evaluation import web as evaluation_web
from services.sessions import domain
from services.sessions import web as sessions_web
from services.sessions.app import build_api
from services.sessions.handlers import SessionsService
from shared.events import EnrollmentCreated
from shared.http import create_api, hash_token
from shared.settings import Settings
from shared.web import STATIC

OPERATOR, VIEWER = "bkm.salatiga.operator.op-secret", "bkm.salatiga.viewer.view-secret"
HASHES = f"{hash_token(OPERATOR)}:operator,{hash_token(VIEWER)}:viewer"
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
BUDI, SRI = "198503152010121002", "199001012015032001"


# --- fakes: only what the web edge reads -----------------------------------------------------

class Staff:
    def __init__(self, members):
        self.members = sorted(members, key=lambda m: (m.unit, m.name))

    async def page(self, *, unit, limit, offset):
        return len(self.members), self.members[offset:offset + limit]


class Rosters:
    def __init__(self, rosters):
        self.rosters = rosters

    async def catalogue(self, *, include_past, today):
        return self.rosters


class SessionStore:
    def __init__(self, sessions):
        self.sessions = sessions

    async def list_sessions(self, *, status=None, limit=200):
        return [s for s in self.sessions if status in (None, s.status)][:limit]


def member(nip: str, name: str) -> StaffMember:
    return StaffMember.create(nip=nip, name=name, unit="Bappeda", position_type="functional",
                              rank_group="III/a")


def client_for(app, token: str | None = OPERATOR) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8011",
                             headers=headers)


def enrollment_app(deps: Deps):
    app = create_api(Settings(node="salatiga", service="enrollment", token_hashes=HASHES),
                     title="test", service="enrollment")
    app.state.deps = deps
    app.include_router(enrollment_api)
    app.include_router(enrollment_web.router)
    return app


def deps_with(members=(), rosters=()) -> Deps:
    return Deps(staff=Staff(list(members)), rosters=Rosters(list(rosters)), needs=None, city="salatiga",
                pseudonym_secret="secret", clock=lambda: NOW)


# --- pages and assets ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/ui/staff", "/ui/enrollment", "/ui/needs", "/ui/login"])
async def test_enrollment_serves_its_pages_without_a_token(path):
    async with client_for(enrollment_app(deps_with()), token=None) as http:
        response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<main id="main">' in response.text


async def test_root_of_a_city_service_leads_to_its_first_page():
    async with client_for(enrollment_app(deps_with())) as http:
        response = await http.get("/")
    assert (response.status_code, response.headers["location"]) == (307, "/ui/staff")


async def test_assets_are_served_with_their_type_and_nothing_outside_the_folder():
    async with client_for(enrollment_app(deps_with())) as http:
        script = await http.get("/ui/static/js/core.js")
        outside = await http.get("/ui/static/..%2F__init__.py")
        missing = await http.get("/ui/static/js/nothing.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert outside.status_code == 404 and missing.status_code == 404


async def test_a_page_takes_no_parameter_that_could_name_another_file():
    async with client_for(enrollment_app(deps_with())) as http:
        response = await http.get("/ui/needs?name=../../pages/login")
    assert response.status_code == 200 and "needs.js" in response.text


async def test_the_national_dashboard_is_the_evaluation_root_and_needs_no_sign_in():
    app = create_api(Settings(node="national", service="evaluation"), title="t", service="evaluation")
    app.include_router(evaluation_web.router)
    async with client_for(app, token=None) as http:
        response = await http.get("/")
        login = await http.get("/ui/login")
    assert response.status_code == 200 and 'data-service="evaluation"' in response.text
    assert login.status_code == 404


# --- who am I, people, cancellations (enrollment) -------------------------------------------

async def test_whoami_tells_the_role_so_a_viewer_page_can_disable_its_forms():
    async with client_for(enrollment_app(deps_with()), token=VIEWER) as http:
        body = (await http.get("/ui/api/whoami")).json()
    assert body == {"city": "salatiga", "role": "viewer", "service": "enrollment"}


async def test_people_lists_every_registered_person_with_the_pseudonymous_id():
    deps = deps_with([member(BUDI, "Budi Santoso"), member(SRI, "Sri Wahyuni")])
    async with client_for(enrollment_app(deps), token=VIEWER) as http:
        body = (await http.get("/ui/api/people")).json()
    assert body["total"] == 2
    assert {(p["name"], p["person_id"]) for p in body["items"]} == {
        ("Budi Santoso", deps.person_id(BUDI)), ("Sri Wahyuni", deps.person_id(SRI))}


async def test_the_peer_port_of_the_same_host_may_read_people_and_sees_auth_errors():
    same_host = {"Origin": "http://127.0.0.1:8012"}
    async with client_for(enrollment_app(deps_with([member(BUDI, "Budi")]))) as http:
        ok = await http.get("/ui/api/people", headers=same_host)
        preflight = await http.options("/ui/api/people", headers=same_host)
        foreign = await http.get("/ui/api/people", headers={"Origin": "http://evil.example"})
        refused = await http.get("/ui/api/people", headers={**same_host, "Authorization": ""})
    assert ok.headers["access-control-allow-origin"] == "http://127.0.0.1:8012"
    assert preflight.status_code == 204 and "Authorization" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-origin" not in foreign.headers
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "http://127.0.0.1:8012"
    assert refused.json()["error"] == "unauthenticated"


def roster_with_cancellations(*reasons_and_years) -> Roster:
    info = SessionInfo("S1", "Kursus", "technical", "x", "workshop", "city", 10,
                       dt.date(2026, 12, 1), dt.date(2026, 12, 2), 2, 10, 0)
    roster = Roster(info=info)
    who = Participant(BUDI, "p" * 32, "Bappeda", "functional", "III", "M")
    for reason, year in reasons_and_years:
        at = dt.datetime(year, 6, 1, tzinfo=dt.UTC)
        roster.cancelled.append(Enrollment(uuid.uuid4().hex, who, "self", at, at, reason))
    return roster


def test_cancellations_are_counted_by_reason_within_the_year():
    roster = roster_with_cancellations(("busy", 2026), ("busy", 2026), ("budget", 2026), ("illness", 2025))
    assert enrollment_web.cancellations_by_reason([roster], 2026) == {
        "busy": 2, "budget": 1, "illness": 0, "other": 0}


async def test_cancellations_endpoint_defaults_to_this_year():
    deps = deps_with(rosters=[roster_with_cancellations(("other", 2026))])
    async with client_for(enrollment_app(deps)) as http:
        body = (await http.get("/ui/api/cancellations")).json()
    assert body == {"year": 2026, "by_reason": {"busy": 0, "budget": 0, "illness": 0, "other": 1}}


# --- JP per person (sessions) ----------------------------------------------------------------

def completed_session(session_id: str, jp: int, on: dt.date, passing: list[str], failing: list[str]):
    plan = domain.SessionPlan(
        title="Kursus", competency_type="technical", competency="x", method="workshop",
        provider="city", jp=jp, days=1, start_date=on, end_date=on, place="Aula", capacity=10)
    session, _ = domain.schedule(plan, session_id=session_id, city="salatiga")
    for person in passing + failing:
        event = EnrollmentCreated(session_id=session_id, person_id=person, enrollment_id=uuid.uuid4().hex,
                                  nominated_by="self", unit="Bappeda", position_type="general",
                                  rank_group="II", sex="M")
        session, _ = domain.apply_enrollment(session, uuid.uuid4().hex, event)
    session, _ = domain.record_attendance(session, day=1, present=passing + failing, absent=[])
    session, _ = domain.record_scores(session, kind="post", scores={p: 80 for p in passing} | {p: 10 for p in failing})
    session, _ = domain.complete(session, completed_on=on, actual_cost=0, today=on)
    return session


A, B, C = "a" * 32, "b" * 32, "c" * 32


def test_jp_adds_up_certificates_of_the_year_only():
    sessions = [
        completed_session("S1", 12, dt.date(2026, 3, 1), [A, B], [C]),
        completed_session("S2", 10, dt.date(2026, 9, 1), [A], []),
        completed_session("S3", 12, dt.date(2025, 9, 1), [C], []),
    ]
    assert sessions_web.jp_by_person(sessions, 2026) == {A: 22, B: 12}


async def test_jp_endpoint_reads_completed_sessions_from_the_store():
    settings = Settings(node="salatiga", service="sessions", token_hashes=HASHES)
    store = SessionStore([completed_session("S1", 12, dt.date(2026, 11, 2), [A], [B])])
    app = build_api(settings, SessionsService(store, settings, clock=lambda: NOW))
    async with client_for(app, token=VIEWER) as http:
        body = (await http.get("/ui/api/jp")).json()
        page = await http.get("/ui/dashboard")
    assert body == {"year": 2026, "target_jp": 20, "jp": {A: 12}}
    assert page.status_code == 200 and 'data-service="sessions"' in page.text


# --- dictionaries ----------------------------------------------------------------------------

def dictionary(lang: str) -> dict:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def test_both_languages_have_the_same_keys():
    assert set(dictionary("id")) == set(dictionary("en"))


def test_every_literal_text_key_of_the_pages_is_in_the_dictionary():
    keys = set(dictionary("id"))
    used = set()
    for html in (STATIC / "pages").glob("*.html"):
        text = html.read_text(encoding="utf-8")
        used |= set(re.findall(r'data-i18n="([^"]+)"', text))
        used |= {pair.split(":")[1] for attr in re.findall(r'data-i18n-attr="([^"]+)"', text)
                 for pair in attr.split(";")}
    for script in (STATIC / "js").rglob("*.js"):
        used |= set(re.findall(r'\bt\("([a-z0-9_.-]+)"[,)]', script.read_text(encoding="utf-8")))
    assert used - keys == set()


def test_indonesian_reason_patterns_are_valid_and_translate_a_nip_error():
    reasons = dictionary("id")["_reasons"]
    for pattern, _ in reasons:
        re.compile(pattern)
    assert any(re.fullmatch(p, "must be 18 digits") for p, _ in reasons)
