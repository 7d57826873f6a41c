"""The national read API over figures held in memory (no Kafka, no database)."""

import httpx
import pytest

from evaluation_builders import CITY, completed, enrolled, registered, scheduled
from services.evaluation.app import build_api
from services.evaluation.figures import apply_all
from services.evaluation.ingest import NationalIngest
from shared.http import hash_token
from shared.settings import Settings


OWN, OTHER = f"bkm.{CITY}.viewer.s3cret", "bkm.palu.operator.s3cret"


@pytest.fixture
async def client():
    settings = Settings(node="national", service="evaluation",
                        city_token_hashes=f"{CITY}:{hash_token(OWN)},palu:{hash_token(OTHER)}")
    ingest = NationalIngest(settings, store=None)
    ingest.figures = apply_all([registered("ani"), registered("budi"), scheduled("S1"),
                                enrolled("ani", "S1"), completed("ani", "S1", jp=24)])
    app = build_api(settings, ingest)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c, ingest


async def test_figures_wait_until_loaded_then_answer(client):
    http, ingest = client
    assert (await http.get("/figures")).status_code == 503
    ingest.ready.set()
    body = (await http.get("/figures", params={"year": 2026})).json()
    assert body["cities_reporting"] == 1
    assert body["national"]["jp"]["at_least_target"] == 1
    assert body["cities"][CITY]["enrollment"]["enrollments"] == 1


async def test_city_detail_counts_staff_below_twenty_jp_and_names_nobody(client):
    http, ingest = client
    ingest.ready.set()
    detail = (await http.get(f"/cities/{CITY}")).json()
    assert detail["jp"]["below_target"] == 1
    assert "person_id" not in str(detail) and not any(
        len(value) == 32 for value in _strings(detail)), "a pseudonymous id in a public answer"
    assert (await http.get("/cities")).json()[0]["city"] == CITY


async def test_the_person_ids_go_only_to_their_own_city_with_its_token(client):
    http, ingest = client
    ingest.ready.set()
    url = f"/cities/{CITY}/below-target"
    assert (await http.get(url)).status_code == 401
    assert (await http.get(url, headers={"Authorization": "Bearer bkm.x.viewer.guess"})).status_code == 401
    other = await http.get(url, headers={"Authorization": f"Bearer {OTHER}"})
    assert other.status_code == 403 and "palu" in other.json()["message"]
    own = (await http.get(url, headers={"Authorization": f"Bearer {OWN}"})).json()
    assert own["city"] == CITY and len(own["person_ids"]) == 1



async def test_a_city_written_to_the_token_file_is_admitted_without_a_restart(tmp_path):
    hashes = tmp_path / "city-token-hashes"
    settings = Settings(node="national", service="evaluation",
                        city_token_hashes_file=str(hashes))
    ingest = NationalIngest(settings, store=None)
    ingest.figures = apply_all([registered("ani"), scheduled("S1")])
    ingest.ready.set()
    url, own = f"/cities/{CITY}/below-target", {"Authorization": f"Bearer {OWN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(build_api(settings, ingest)),
                                 base_url="http://t") as http:
        assert (await http.get(url, headers=own)).status_code == 401  # no file yet: no one
        hashes.write_text(f"palu:{hash_token(OTHER)}\n{CITY}:{hash_token(OWN)}\n")
        assert (await http.get(url, headers=own)).status_code == 200
        hashes.write_text(f"palu:{hash_token(OTHER)}\n")  # revoked
        assert (await http.get(url, headers=own)).status_code == 401

def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


async def test_unknown_city_and_unknown_metric_name_the_field(client):
    http, ingest = client
    ingest.ready.set()
    missing = await http.get("/cities/atlantis")
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "city"
    bad = await http.get("/timeseries", params={"metric": "happiness"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "metric"
    series = (await http.get("/timeseries", params={"metric": "enrollments", "city": CITY})).json()
    assert series["points"] == [{"month": "2026-03", "value": 1.0}]


async def test_openapi_documents_the_response_models(client):
    http, _ = client
    schema = (await http.get("/openapi.json")).json()
    assert {"/figures", "/cities", "/cities/{city}", "/timeseries"} <= set(schema["paths"])
    assert "NationalFigures" in schema["components"]["schemas"]
