"""The OpenAPI of every service documents the error statuses its routes answer, in the error
shape they are sent in; checked against what the apps really answer."""

import re

import pytest

SERVICES = ("enrollment", "sessions", "evaluation")
METHODS = ("get", "post", "put", "patch", "delete")


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_status_is_documented_with_the_error_schema(clients, service):
    spec = clients[service].get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (path, method, status)
        assert "503" in operation["responses"], (path, method)


@pytest.mark.parametrize("service", SERVICES)
def test_what_a_request_without_a_token_or_with_bad_json_gets_is_documented(clients, service):
    client = clients[service]
    spec = client.get("/openapi.json").json()
    for path, method, operation in operations(spec):
        url = re.sub(r"\{[^}]+\}", "x", path)
        anonymous = client.request(method, url, headers={"Authorization": ""})
        assert str(anonymous.status_code) in operation["responses"], (method, path, anonymous.status_code)
        if "requestBody" in operation and "application/json" in operation["requestBody"]["content"]:
            bad = client.request(method, url, content=b"{", headers={"content-type": "application/json"})
            assert str(bad.status_code) in operation["responses"], (method, path, bad.status_code)
