"""Whatever a client sends, every service answers in the one error shape and never with a 500.

The apps are the services' real `create_app`, pointed at a database and a broker that do not
exist: every request here must be refused at the edge, before any I/O (a request that got
through would wait two seconds and answer 503, and fail the test).
"""

import json

import pytest

from shared.json_guard import MAX_DEPTH, path_at

SERVICES = ("enrollment", "sessions", "evaluation")  # the `clients` fixture's keys (conftest.py)
JSON = {"content-type": "application/json"}
INT64_MAX = 2**63 - 1


def assert_error_shape(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message", "errors"}
    assert body["errors"] and all(set(e) == {"field", "reason"} and e["reason"] for e in body["errors"])
    if field is not None:
        assert body["errors"][0]["field"] == field, body
    return body


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("path", ["/ui/static/" + "a/" * 3000 + "x.js",
                                  "/ui/static/../../pyproject.toml", "/ui/static/%2e%2e/%2e%2e/app.py",
                                  "/ui/static/css", "/ui/static/"])
def test_a_static_path_that_is_not_a_shipped_file_is_a_404_in_the_error_shape(clients, service, path):
    assert_error_shape(clients[service].get(path, headers={"Authorization": ""}), 404, "path")


@pytest.mark.parametrize("service", SERVICES)
def test_a_nul_in_a_static_path_is_a_422_naming_the_path(clients, service):
    body = assert_error_shape(clients[service].get("/ui/static/%00", headers={"Authorization": ""}),
                              422, "path")
    assert "U+0000" in body["message"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_shipped_file_is_still_served(clients, service):
    response = clients[service].get("/ui/static/css/bangkom.css")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("service", SERVICES)
def test_routing_errors_of_the_framework_use_the_error_shape(clients, service):
    assert_error_shape(clients[service].get("/no/such/route"), 404, "path")
    assert_error_shape(clients[service].delete("/health"), 405, "method")


def test_a_405_names_every_method_of_the_path_in_allow(clients):
    """Starlette's own 405 names one route's methods; /staff has GET and POST routes."""
    refused = clients["enrollment"].delete("/staff")
    assert_error_shape(refused, 405, "method")
    assert refused.headers["allow"] == "GET, POST"
    assert clients["enrollment"].put("/staff/1").headers["allow"] == "GET"
    assert clients["sessions"].delete("/health").headers["allow"] == "GET"


@pytest.mark.parametrize("body, field", [
    (b'{"nip": "1", "name": }', "name"),
    (b'{"session_id": "s", "nip": "1", "nominated_by": "self", "late": tru}', "late"),
    (b'{"present": ["a", "b", ]}', "present.2"),
    (b'{"scores": {"p1": 1, "p2": 2,, }}', "scores"),
    (b'{"a": "unterminated', "a"),
    (b'', None),
])
def test_malformed_json_names_the_json_path_not_an_offset(clients, body, field):
    response = clients["enrollment"].post("/enrollments", content=body, headers=JSON)
    error = assert_error_shape(response, 422, field or "body")
    if body:
        assert "not valid JSON" in error["errors"][0]["reason"]


@pytest.mark.parametrize("service, route", [("enrollment", "/staff"), ("sessions", "/sessions")])
def test_a_deeply_nested_body_is_refused_naming_where(clients, service, route):
    body = '{"title": ' + "[" * 5000 + "]" * 5000 + "}"
    error = assert_error_shape(clients[service].post(route, content=body, headers=JSON), 422)
    assert error["errors"][0]["field"].startswith("title.0.0")
    assert f"deeper than {MAX_DEPTH}" in error["errors"][0]["reason"]


@pytest.mark.parametrize("service, route, body, field", [
    ("enrollment", "/needs", {"competency_type": "technical", "competency": "x", "unit": "u",
                              "staff_count": 1e20, "priority": "high", "source": "survey",
                              "plan_year": 2027}, "staff_count"),
    ("enrollment", "/needs", {"competency_type": "technical", "competency": "x", "unit": "u",
                              "staff_count": 3, "priority": "high", "source": "survey",
                              "plan_year": 2**64}, "plan_year"),
    ("sessions", "/sessions/s-1/attendance", {"day": 9223372036854775808, "present": []}, "day"),
    ("sessions", "/sessions/s-1/scores", '{"kind": "pre", "scores": {"p1": 1e400}}', "scores.p1"),
    ("sessions", "/sessions/s-1/scores", '{"kind": "pre", "scores": {"p1": NaN}}', "scores.p1"),
])
def test_a_number_beyond_64_bits_in_a_body_is_a_4xx_naming_the_field(clients, service, route,
                                                                      body, field):
    raw = body if isinstance(body, str) else json.dumps(body)
    response = clients[service].post(route, content=raw, headers=JSON)
    assert_error_shape(response, 422, field)


@pytest.mark.parametrize("service, url, field", [
    ("enrollment", "/staff?offset=9223372036854775808", "offset"),
    ("enrollment", "/staff?limit=-99999999999999999999", "limit"),
    ("enrollment", "/needs?plan_year=18446744073709551616", "plan_year"),
    ("evaluation", "/figures?year=9223372036854775808", "year"),
])
def test_a_number_beyond_64_bits_in_a_query_is_a_4xx_naming_the_field(clients, service, url, field):
    assert_error_shape(clients[service].get(url), 422, field)


def _integers(schema, spec, where):
    """Every integer schema reachable from `schema`, with a readable location."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        yield from _integers(spec["components"]["schemas"][name], spec, f"{where}<{name}>")
        return
    if schema.get("type") == "integer":
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _integers(sub, spec, where)
    for name, sub in schema.get("properties", {}).items():
        yield from _integers(sub, spec, f"{where}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _integers(schema[key], spec, f"{where}[]")


@pytest.mark.parametrize("service", SERVICES)
def test_every_integer_a_client_sends_is_bounded_inside_64_bits_in_the_openapi(clients, service):
    spec = clients[service].get("/openapi.json").json()
    unbounded = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            sources = [(f"{method} {path} {p['name']}", p.get("schema", {}))
                       for p in operation.get("parameters", [])]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                sources.append((f"{method} {path} body", media.get("schema", {})))
            for where, schema in sources:
                for at, integer in _integers(schema, spec, where):
                    low = integer.get("minimum", integer.get("exclusiveMinimum"))
                    high = integer.get("maximum", integer.get("exclusiveMaximum"))
                    if low is None or high is None or low < -(2**63) or high > INT64_MAX:
                        unbounded.append(at)
    assert unbounded == []


def test_a_csv_cell_beyond_the_csv_limit_is_a_row_error_naming_the_line(clients):
    csv = "nip,nama,unit_kerja,jenis_jabatan,golongan\n198503152010121002,Budi," + "x" * 140_000 + ",struktural,IV/a\n"
    response = clients["enrollment"].post("/staff/import", content=csv,
                                          headers={"content-type": "text/csv"})
    # issue 11: that row is refused with its line and reason, the rest of the file goes on
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rejected"] == 1 and report["created"] == 0
    assert report["errors"][0]["line"] == 2 and "field limit" in report["errors"][0]["reason"]


def test_path_at_follows_objects_arrays_and_strings_with_braces():
    text = '{"a": {"b}": [1, {"c": "x{["}, 3]}, "d": '
    assert path_at(text, len(text)) == "d"
    assert path_at(text, text.index("3]")) == "a.b}.2"
    assert path_at(text, text.index('"x{["')) == "a.b}.1.c"
    assert path_at("[1, 2", 4) == "1"
    assert path_at("", 0) == "body"
