"""An outage is logged as its first failure, a summary now and then, and its end; a client
library's repeated connection errors are thinned the same way."""

import logging

from shared.outage import Outage, RepeatFilter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_1200_failures_in_ten_minutes_are_a_first_line_ten_summaries_and_a_recovery(caplog):
    clock = Clock()
    outage = Outage("outbox relay", logging.getLogger("t"), summary_seconds=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="t"):
        outage.succeeded()  # nothing to recover from: silent
        for _ in range(1200):
            outage.failed(ConnectionError("refused"))
            clock.now += 0.5
        outage.succeeded()
        outage.succeeded()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "outbox relay failing: refused; retrying quietly, a summary every 60 s"
    summaries = [m for m in messages if "still failing" in m]
    assert len(summaries) == 9 and summaries[-1].startswith("outbox relay still failing after 540 s")
    assert messages[-1] == "outbox relay recovered after 600.0 s (1200 failures)"
    assert len(messages) == 11
    assert [r.levelname for r in caplog.records][:-1] == ["WARNING"] * 10


def test_a_second_outage_starts_its_own_count(caplog):
    clock = Clock()
    outage = Outage("db", logging.getLogger("t"), summary_seconds=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="t"):
        outage.failed("a"), outage.failed("b"), outage.succeeded()
        clock.now += 5
        outage.failed("c"), outage.succeeded()
    assert [r.getMessage() for r in caplog.records][-1] == "db recovered after 0.0 s (1 failures)"


def record(name: str, msg: str, level=logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, ("node-1",), None)


def test_a_librarys_repeated_error_passes_once_per_period_with_the_count_left_out():
    clock = Clock()
    thin = RepeatFilter(("aiokafka",), every=60, clock=clock)
    passed = []
    for _ in range(300):
        rec = record("aiokafka.conn", "Unable connect to node %s")
        if thin.filter(rec):
            passed.append(rec.getMessage())
        clock.now += 0.5
    assert passed == ["Unable connect to node node-1",
                      "Unable connect to node node-1 (119 more like this in the last 60 s)",
                      "Unable connect to node node-1 (119 more like this in the last 60 s)"]
    assert thin.filter(record("aiokafka.conn", "another template"))  # another kind: passes
    assert thin.filter(record("shared.outbox", "Unable connect to node %s"))  # ours: passes
    assert thin.filter(record("aiokafka.conn", "Unable connect to node %s", logging.INFO))


def test_a_kafka_refusal_names_the_principal_that_was_refused():
    import io
    import json

    from shared import logging as json_logging
    from shared.settings import Settings

    out = io.StringIO()
    settings = Settings(node="palu", service="sessions", kafka_security_protocol="SASL_SSL",
                        kafka_sasl_username="palu-sessions", kafka_sasl_password="x")
    handler = json_logging.configure(settings, "sessions", stream=out)
    try:
        logging.getLogger("aiokafka.cluster").error(
            "Topic %s is not authorized for this client", "bangkom.salatiga.sessions")
        logging.getLogger("aiokafka.conn").error("Unable connect to node %s", "1")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line)["message"] for line in out.getvalue().splitlines()]
    assert lines == ["Topic bangkom.salatiga.sessions is not authorized for this client "
                     "(Kafka principal User:palu-sessions)", "Unable connect to node 1"]
    from shared.kafka_auth import REFUSALS

    assert REFUSALS.current() == lines[0], "/health says what was refused"
    REFUSALS.last = None


def test_a_kafka_refusal_makes_health_fail_naming_it_while_refusals_keep_coming():
    from fastapi.testclient import TestClient

    from shared.http import create_api
    from shared.kafka_auth import REFUSALS
    from shared.settings import Settings

    app = create_api(Settings(node="palu", service="sessions"), title="t", service="sessions")
    with TestClient(app) as client:
        REFUSALS.last = None
        assert client.get("/health").json()["kafka"] == "ok"
        REFUSALS.note("Topic bangkom.palu.insights is not authorized for this client "
                      "(Kafka principal User:palu-sessions)")
        answer = client.get("/health")
        assert answer.status_code == 503, answer.text
        assert answer.json()["kafka"].startswith("refused: Topic bangkom.palu.insights")
        assert answer.json()["database"] == "up"
        when, what = REFUSALS.last
        REFUSALS.last = (when - REFUSALS.WINDOW_SECONDS - 1, what)  # none for over a minute
        assert client.get("/health").status_code == 200
    REFUSALS.last = None
