"""A benchmark that stops says where (#29 item 1): the stage, and for an HTTP failure the
request and the service's answer, in the results file and on the screen."""

import httpx

from deploy.bench_city import _failure


def test_an_http_refusal_names_the_stage_the_request_and_the_answer():
    request = httpx.Request("POST", "http://127.0.0.1:1/sessions", json={"capacity": 0})
    response = httpx.Response(422, request=request, text='{"errors":[{"field":"capacity"}]}')
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as error:
        said = _failure("measured: enrollment POSTs", error)
    assert said["stage"] == "measured: enrollment POSTs"
    assert said["request"] == "POST http://127.0.0.1:1/sessions"
    assert '"capacity":0' in said["request_body"] and said["answer"].startswith("422 ")
    assert "capacity" in said["answer"]


def test_a_broken_connection_names_the_request_and_another_error_its_stage():
    request = httpx.Request("GET", "http://127.0.0.1:1/staff")
    said = _failure("pages", httpx.ReadError("reset", request=request))
    assert said["request"] == "GET http://127.0.0.1:1/staff" and "answer" not in said
    assert _failure("history", RuntimeError("no session")) == {
        "stage": "history", "error": "RuntimeError: no session"}
