"""HTTP contract: auth, error format, import in both encodings, roster with names.

The app is the real router and error handling over in-memory stores (no broker, no database).
"""

import datetime as dt

import httpx
import pytest

from services.enrollment import handlers
from services.enrollment.api import router
from shared.events import Envelope, SessionScheduled
from shared.http import create_api, hash_token
from shared.settings import Settings

from enrollment_fakes import fake_deps

OPERATOR, VIEWER = "bkm.salatiga.operator.s3cret", "bkm.salatiga.viewer.s3cret"
BUDI, SRI = "198503152010121002", "199001012015032001"
CSV = f"""nip,nama,unit_kerja,jenis_jabatan,golongan,nip_atasan
{BUDI},Budi Santoso,Bappeda,struktural,IV/a,
{SRI},Sri Wahyuni,Bappeda,fungsional,III/b,{BUDI}
199913312020011001,Tanggal Salah,Bappeda,umum,II,
"""


@pytest.fixture
async def deps():
    deps = fake_deps()
    payload = SessionScheduled(
        session_id="s-1", title="Analisis Kebijakan", competency_type="technical",
        competency="policy analysis", method="workshop", provider="university", jp=24,
        start_date=dt.date(2026, 12, 14), end_date=dt.date(2026, 12, 16), days=3, capacity=1,
        planned_cost=9_000_000)
    env = Envelope.wrap(payload, city="salatiga", service="sessions")
    await handlers.apply_session_event(deps, env, env.payload())
    return deps


@pytest.fixture
async def client(deps):
    settings = Settings(node="salatiga", service="enrollment",
                        token_hashes=f"{hash_token(OPERATOR)}:operator,{hash_token(VIEWER)}:viewer")
    app = create_api(settings, title="test", service="enrollment")
    app.state.deps = deps
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {OPERATOR}"}) as c:
        yield c


def as_viewer():
    return {"Authorization": f"Bearer {VIEWER}"}


async def test_reads_need_a_token(client):
    response = await client.get("/staff", headers={"Authorization": ""})
    assert response.status_code == 401


async def test_a_viewer_cannot_write(client, deps):
    response = await client.post("/staff/import", content=CSV, headers={**as_viewer(), "content-type": "text/csv"})
    assert response.status_code == 403 and deps.staff.docs == {}


async def test_a_token_of_another_city_is_refused(client):
    response = await client.get("/staff", headers={"Authorization": "Bearer bkm.palu.viewer.x"})
    assert response.status_code == 403


async def test_a_bad_nip_names_the_field_and_writes_nothing(client, deps):
    response = await client.post("/staff", json={"nip": "198503152010123002", "name": "Budi",
                                                 "unit": "Bappeda", "position_type": "structural",
                                                 "rank_group": "IV"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "nip", "reason": "digit 15 must be 1 (male) or 2 (female)"}]
    assert deps.staff.docs == {}


async def test_registers_then_reports_unchanged(client):
    body = {"nip": BUDI, "name": "Budi", "unit": "Bappeda", "position_type": "struktural", "rank_group": "IV/a"}
    first, again = await client.post("/staff", json=body), await client.post("/staff", json=body)
    assert (first.status_code, first.json()["outcome"]) == (201, "created")
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    got = await client.get(f"/staff/{BUDI}", headers=as_viewer())
    assert got.json()["position_type"] == "structural" and got.json()["sex"] == "M"


async def test_imports_a_csv_body_then_the_same_as_a_multipart_upload(client):
    first = await client.post("/staff/import", content=CSV, headers={"content-type": "text/csv"})
    assert first.status_code == 200
    report = first.json()
    assert {k: report[k] for k in ("status", "rows", "done", "created", "updated", "unchanged",
                                   "rejected", "errors")} == {
        "status": "done", "rows": 2, "done": 2, "created": 2, "updated": 0, "unchanged": 0,
        "rejected": 1, "errors": [
            {"line": 4, "field": "nip", "reason": "digits 1-8 must be a real birth date YYYYMMDD"}]}
    again = await client.post("/staff/import", files={"file": ("pegawai.csv", CSV.encode(), "text/csv")})
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)
    listed = await client.get("/staff", params={"unit": "Bappeda"}, headers=as_viewer())
    assert [s["name"] for s in listed.json()["items"]] == ["Budi Santoso", "Sri Wahyuni"]


async def test_a_long_import_answers_at_once_with_a_job_whose_progress_can_be_followed(
        client, monkeypatch):
    from services.enrollment import api

    monkeypatch.setattr(api, "IMPORT_WAIT_SECONDS", 0.0)
    started = await client.post("/staff/import", content=CSV, headers={"content-type": "text/csv"})
    assert started.status_code == 202 and started.json()["status"] == "running"
    job_id = started.json()["job_id"]
    for _ in range(100):
        state = (await client.get(f"/staff/imports/{job_id}", headers=as_viewer())).json()
        if state["status"] == "done":
            break
    assert (state["done"], state["created"], state["rejected"]) == (2, 2, 1)
    assert state["errors"][0]["line"] == 4
    missing = await client.get("/staff/imports/nope", headers=as_viewer())
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "job_id"


async def test_a_cell_past_any_limit_is_a_row_error_not_a_500(client):
    csv = CSV + f"199001012015032002,{'y' * 300_000},Bappeda,umum,II,\n"
    response = await client.post("/staff/import", content=csv, headers={"content-type": "text/csv"})
    assert response.status_code == 200
    assert [(e["line"], e["field"]) for e in response.json()["errors"]] == [(4, "nip"), (5, "row")]


async def test_an_import_needs_csv(client):
    response = await client.post("/staff/import", json={"nip": BUDI})
    assert response.status_code == 415 and response.json()["errors"][0]["field"] == "content-type"


async def test_enroll_waitlist_cancel_and_promote(client):
    await client.post("/staff/import", content=CSV, headers={"content-type": "text/csv"})
    first = await client.post("/enrollments", json={"session_id": "s-1", "nip": BUDI, "nominated_by": "supervisor"})
    second = await client.post("/enrollments", json={"session_id": "s-1", "nip": SRI, "nominated_by": "self"})
    assert (first.status_code, first.json()["status"]) == (201, "enrolled")
    assert (second.json()["status"], second.json()["waitlist_position"]) == ("waitlisted", 1)

    double = await client.post("/enrollments", json={"session_id": "s-1", "nip": SRI, "nominated_by": "self"})
    assert double.status_code == 409 and double.json()["errors"][0]["field"] == "nip"

    roster = (await client.get("/sessions/s-1/roster", headers=as_viewer())).json()
    assert [p["name"] for p in roster["enrolled"]] == ["Budi Santoso"]
    assert [(p["name"], p["position"]) for p in roster["waitlist"]] == [("Sri Wahyuni", 1)]

    cancelled = await client.post(f"/enrollments/{first.json()['enrollment_id']}/cancel", json={"reason": "illness"})
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["promoted"] == [second.json()["enrollment_id"]]
    roster = (await client.get("/sessions/s-1/roster", headers=as_viewer())).json()
    assert ([p["name"] for p in roster["enrolled"]], roster["waitlist"]) == (["Sri Wahyuni"], [])


async def test_a_bad_cancel_reason_is_422_naming_the_field(client):
    response = await client.post("/enrollments/x/cancel", json={"reason": "lazy"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "reason"


async def test_the_catalogue_lists_upcoming_sessions_with_seats(client):
    sessions = (await client.get("/sessions", headers=as_viewer())).json()["items"]
    assert [(s["session_id"], s["capacity"], s["seats_left"]) for s in sessions] == [("s-1", 1, 1)]


async def test_needs_round_trip(client):
    body = {"competency_type": "technical", "competency": "e-government", "unit": "Dinas Kominfo",
            "staff_count": 12, "priority": "high", "source": "survey", "plan_year": 2027}
    created = await client.post("/needs", json=body)
    assert created.status_code == 201
    listed = (await client.get("/needs", params={"plan_year": 2027}, headers=as_viewer())).json()["items"]
    assert [n["need_id"] for n in listed] == [created.json()["need_id"]]
    bad = await client.post("/needs", json={**body, "staff_count": 0})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "staff_count"


async def test_a_database_outage_is_503_and_saves_nothing(client, deps):
    from pymongo.errors import ServerSelectionTimeoutError

    async def down(*_args, **_kwargs):
        raise ServerSelectionTimeoutError("no servers")

    deps.staff.get = down
    response = await client.post("/staff", json={"nip": BUDI, "name": "Budi", "unit": "Bappeda",
                                                 "position_type": "structural", "rank_group": "IV"})
    assert (response.status_code, response.json()["error"]) == (503, "database_unavailable")
    assert deps.staff.docs == {}


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(client, deps):
    await client.post("/staff", json={"nip": BUDI, "name": "Budi", "unit": "Bappeda",
                                      "position_type": "structural", "rank_group": "IV"})
    body = {"session_id": "s-1", "nip": BUDI, "nominated_by": "self"}
    first = await client.post("/enrollments", json=body, headers={"Idempotency-Key": "k-1"})
    again = await client.post("/enrollments", json=body, headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    roster = await deps.rosters.get("s-1")
    assert len(roster.enrolled + roster.waitlist) == 1
    other = await client.post("/enrollments", json={**body, "nip": SRI},
                              headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    need = {"competency_type": "technical", "competency": "e-government", "unit": "Bappeda",
            "staff_count": 4, "priority": "high", "source": "survey", "plan_year": 2027}
    made = [await client.post("/needs", json=need, headers={"Idempotency-Key": "n-1"}) for _ in range(3)]
    assert [r.status_code for r in made] == [201, 200, 200]
    assert len({r.json()["need_id"] for r in made}) == 1 and len(deps.needs.docs) == 1
    assert (await client.post("/needs", json={**need, "staff_count": 5},
                              headers={"Idempotency-Key": "n-1"})).status_code == 422
