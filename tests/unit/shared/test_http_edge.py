from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from pymongo.errors import NetworkTimeout, ServerSelectionTimeoutError

from shared.errors import ConflictError
from shared.http import create_api, hash_token, require
from shared.settings import Settings

OPERATOR = "bkm.palu.operator.s3cret"
VIEWER = "bkm.palu.viewer.l00k"
SALATIGA = "bkm.salatiga.operator.other"


class Body(BaseModel):
    capacity: int = Field(ge=1)


def client() -> TestClient:
    settings = Settings(node="palu", token_hashes=f"{hash_token(OPERATOR)}:operator,"
                                                  f"{hash_token(VIEWER)}:viewer")
    app = create_api(settings, title="t", service="sessions")

    @app.post("/things")
    async def post(body: Body, who=require("operator")) -> dict:
        return {"capacity": body.capacity, "by": who.role}

    @app.get("/things")
    async def get(who=require("viewer")) -> dict:
        return {"role": who.role}

    @app.post("/conflict")
    async def conflict(who=require("operator")) -> dict:
        raise ConflictError("nip", "already enrolled in this session")

    @app.get("/down")
    async def down() -> dict:
        raise ServerSelectionTimeoutError("no servers")

    @app.post("/down")
    async def write_down() -> dict:
        raise NetworkTimeout("timed out")  # the write went out; its answer never came

    return TestClient(app)


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_bad_input_names_the_field_and_the_reason():
    r = client().post("/things", json={"capacity": 0}, headers=auth(OPERATOR))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "capacity"
    assert "greater than or equal to 1" in r.json()["errors"][0]["reason"]


def test_a_domain_error_is_a_4xx_naming_the_field():
    r = client().post("/conflict", headers=auth(OPERATOR))
    assert r.status_code == 409
    assert r.json()["errors"] == [{"field": "nip", "reason": "already enrolled in this session"}]


def test_a_database_outage_is_a_503_with_a_clear_message():
    r = client().get("/down")
    assert r.status_code == 503
    assert "not reachable" in r.json()["message"] and "saved" not in r.json()["message"]
    assert r.headers["Retry-After"] == "5"


def test_a_503_to_a_change_never_claims_it_was_not_saved():
    r = client().post("/down")
    assert r.status_code == 503
    message = r.json()["message"]
    assert "nothing was saved" not in message and "not known" in message
    assert "Idempotency-Key" in message


def test_no_token_is_401_and_a_viewer_cannot_change():
    c = client()
    assert c.get("/things").status_code == 401
    assert c.get("/things", headers=auth(VIEWER)).json() == {"role": "viewer"}
    r = c.post("/things", json={"capacity": 3}, headers=auth(VIEWER))
    assert r.status_code == 403 and "operator" in r.json()["message"]
    assert c.post("/things", json={"capacity": 3}, headers=auth(OPERATOR)).json()["by"] == "operator"


def test_a_token_of_another_city_is_refused():
    r = client().get("/things", headers=auth(SALATIGA))
    assert r.status_code == 403
    assert "salatiga" in r.json()["message"]


def test_an_unknown_token_of_this_city_is_401():
    assert client().get("/things", headers=auth("bkm.palu.operator.guessed")).status_code == 401


def test_metrics_use_route_templates_not_raw_paths():
    c = client()
    c.get("/things", headers=auth(VIEWER))
    text = c.get("/metrics").text
    assert 'route="/things"' in text
    assert "bangkom_build_info" in text
