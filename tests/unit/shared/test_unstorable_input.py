"""U+0000 (which PostgreSQL text cannot hold: FerretDB answered 500) and unpaired surrogates
are refused wherever a client can put them: every path parameter, query parameter and JSON
body field of every route of every service answers 422 naming that field. The apps have no
database (conftest.py `clients`): a request that got past the edge would answer 503, so a 422
here is also proof that nothing was written."""

import json
import re
from urllib.parse import quote

import pytest

from shared.json_guard import unstorable

from test_error_shape import JSON, SERVICES, assert_error_shape


def _cases(service, clients):
    """(method, path template, where, field) for every parameter and JSON body field that the
    service's OpenAPI document declares."""
    spec = clients[service].get("/openapi.json").json()

    def resolve(schema: dict) -> dict:
        while "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return schema

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                if param["in"] in ("path", "query"):
                    yield method.upper(), path, param["in"], param["name"]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                for name in resolve(body["schema"]).get("properties", {}):
                    yield method.upper(), path, "body", name


def _url(path: str, target: str | None, bad: str) -> str:
    return re.sub(r"{([^}]+)}", lambda m: quote(bad) if m.group(1) == target else "1", path)


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"], ids=["NUL", "surrogate"])
@pytest.mark.parametrize("service", SERVICES)
def test_every_field_of_every_route_refuses_text_the_database_cannot_store(clients, service, bad):
    cases = list(_cases(service, clients))
    assert len(cases) > 5, "the routes were not found"
    for method, route, where, name in cases:  # route: its path template
        if where == "path" and "\ud800" in bad:
            continue  # a path is percent-decoded as UTF-8 with replacement: no surrogate reaches it
        if where == "query" and "\ud800" in bad:
            continue  # the same for a query string
        if where == "path":
            response = clients[service].request(method, _url(route, name, bad))
        elif where == "query":
            response = clients[service].request(method, _url(route, None, bad),
                                                params={name: bad})
        else:
            body = json.dumps({name: bad})  # ASCII-escaped: the surrogate travels as \ud800
            response = clients[service].request(method, _url(route, None, bad), content=body,
                                                headers=JSON)
        assert response.status_code == 422, (method, route, where, name, response.text)
        assert_error_shape(response, 422, name)


def test_a_nested_string_and_a_key_are_named_by_their_json_path(clients):
    body = {"scores": [{"person": "ok"}, {"person": "x\x00"}]}
    refused = clients["sessions"].post("/sessions/1/tests", content=json.dumps(body), headers=JSON)
    assert_error_shape(refused, 422, "scores.1.person")
    keyed = clients["sessions"].post("/sessions/1/tests", content=json.dumps({"a\x00": 1}),
                                     headers=JSON)
    assert_error_shape(keyed, 422, "a\\0")


def test_a_csv_with_a_nul_is_refused_naming_the_line_before_any_row_is_written(clients):
    csv = "nip,name,unit,position_type,rank_group\n199001012020011001,Ani\x00,Dinas,general,III/a\n"
    refused = clients["enrollment"].post("/staff/import", content=csv.encode(),
                                         headers={"content-type": "text/csv"})
    body = assert_error_shape(refused, 422, "file")
    assert "line 2" in body["message"] and "U+0000" in body["message"]


def test_a_utf16_spreadsheet_export_is_read_not_refused(clients):
    from services.enrollment.api import _csv_text

    class Upload:
        headers = {"content-type": "text/csv"}

        async def body(self):
            return "nip,name\n1,Ani\n".encode("utf-16")

    import asyncio
    assert asyncio.run(_csv_text(Upload())).startswith("nip,name")


def test_unstorable_names_the_character():
    assert unstorable("plain text, ümlaut, 日本") is None
    assert "U+0000" in unstorable("a\x00") and "character 2" in unstorable("a\x00")
    assert "surrogate" in unstorable("\udfff")
