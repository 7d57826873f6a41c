"""shared.logging: one JSON object per line, with node, service and event context."""

import io
import json
import logging

import pytest

from shared import logging as json_logging
from shared.settings import Settings


@pytest.fixture
def stream():
    """Configure JSON logging into a buffer; put the root logger back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    saved_children = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate,
               logging.getLogger(name).level)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "aiokafka")
    }
    buffer = io.StringIO()
    json_logging.configure(Settings(node="palu", service="sessions"), "sessions", stream=buffer)
    yield buffer
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, propagate, level) in saved_children.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_line_is_json_with_time_level_logger_message_node_and_service(stream):
    logging.getLogger("services.sessions.app").info("session %s scheduled", "s-1")

    [entry] = lines(stream)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "services.sessions.app"
    assert entry["message"] == "session s-1 scheduled"
    assert entry["node"] == "palu"
    assert entry["service"] == "sessions"
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_event_context_passed_through_extra_is_written(stream):
    logging.getLogger("shared.kafka").warning(
        "retrying", extra={"event_id": "e-42", "city": "salatiga",
                           "type": "bangkom.enrollment.created.v1"})

    [entry] = lines(stream)
    assert (entry["event_id"], entry["city"], entry["type"]) == (
        "e-42", "salatiga", "bangkom.enrollment.created.v1")


def test_extras_outside_the_allow_list_never_reach_the_log(stream):
    logging.getLogger("x").info("imported", extra={"nip": "198507212010011003", "full_name": "Siti"})

    [entry] = lines(stream)
    assert "nip" not in entry and "full_name" not in entry
    assert "198507212010011003" not in stream.getvalue()


def test_fields_not_passed_are_absent_rather_than_null(stream):
    logging.getLogger("x").info("plain")

    [entry] = lines(stream)
    assert not set(json_logging.CONTEXT_FIELDS) & set(entry)


def test_an_exception_is_kept_inside_the_one_json_line(stream):
    try:
        raise RuntimeError("broker gone")
    except RuntimeError:
        logging.getLogger("shared.outbox").exception("relay failed")

    [entry] = lines(stream)
    assert entry["level"] == "ERROR"
    assert "RuntimeError: broker gone" in entry["exception"]


def test_configuring_twice_does_not_print_lines_twice(stream):
    second = io.StringIO()
    json_logging.configure(Settings(node="palu", service="sessions"), "sessions", stream=second)

    logging.getLogger("x").info("once")

    assert stream.getvalue() == ""
    assert [e["message"] for e in lines(second)] == ["once"]


def test_uvicorn_lines_go_through_the_json_handler(stream):
    logging.getLogger("uvicorn.error").info("Application startup complete.")

    [entry] = lines(stream)
    assert entry["logger"] == "uvicorn.error"
    assert entry["message"] == "Application startup complete."


def test_access_lines_of_scrapes_and_healthchecks_are_dropped(stream):
    access = logging.getLogger("uvicorn.access")
    fmt = '%s - "%s %s HTTP/%s" %d'
    access.info(fmt, "10.0.0.9:5123", "GET", "/metrics", "1.1", 200)
    access.info(fmt, "127.0.0.1:5124", "GET", "/health", "1.1", 200)
    access.info(fmt, "10.0.0.7:5125", "POST", "/enrollments?x=1", "1.1", 201)

    assert [e["message"] for e in lines(stream)] == [
        '10.0.0.7:5125 - "POST /enrollments?x=1 HTTP/1.1" 201']


def test_the_level_comes_from_settings():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    try:
        json_logging.configure(Settings(node="palu", log_level="warning"), "enrollment", stream=buffer)
        logging.getLogger("x").info("hidden")
        logging.getLogger("x").warning("shown")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

    assert [e["message"] for e in lines(buffer)] == ["shown"]
