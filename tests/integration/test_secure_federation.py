"""`bangkom up --single-broker`, secured as by default: the services at work under
SASL_SSL/SCRAM-SHA-512 and the least-privilege ACLs, each with its own principal (the federated
topology, secured the same way, is tested in test_heal.py).

The real `bangkom up` in a run directory of its own, at a port offset. A city runs a training
year through its APIs, and its figures reach the nation: every service did its work (outbox,
consumers, heartbeats, insights) with only the rights deploy/local/security.py gives it.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest
from rich.console import Console

from deploy import demo
from deploy.local.federation import Federation, RunState
from deploy.local.infra import list_topics
from deploy.local.process import port_holders, run_coroutine
from federation_helpers import environment, run_bangkom

OFFSET = 3000  # apart from test_heal's (1000) and the benches' (2000)
CITY = "palu"
pytestmark = pytest.mark.timeout(900)




@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    root = tmp_path_factory.mktemp("secure") / "run"
    env = {**os.environ, "BANGKOM_RUN_DIR": str(root), "BANGKOM_PORT_OFFSET": str(OFFSET)}
    fed = Federation(console=Console(file=open(os.devnull, "w")), state=RunState(root=root),
                     offset=OFFSET, single_broker=True)
    busy = [port for ports in fed.ports().values() for port in ports if port_holders(port)]
    assert not busy, f"ports of the test federation are taken: {busy}"
    try:
        done = run_bangkom(env, "up", "--single-broker", "--no-demo", timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        yield fed
    finally:
        run_bangkom(env, "down", timeout=300)




def test_each_service_has_its_own_principal_and_a_plaintext_client_is_refused(secured):
    fed = secured
    assert fed.secure, "a new run directory is secured"
    assert {row["name"]: row["health"] for row in fed.status()
            if row["health"] != "up"} == {}
    components = fed.state.components()
    for spec in fed.services:
        given = environment(components[spec.name]["pid"])
        assert given["BANGKOM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", spec.name
        assert given["BANGKOM_KAFKA_SASL_USERNAME"] == f"{spec.node}-{spec.service}", spec.name
    with pytest.raises(Exception):  # noqa: B017 - any failure to talk: no TLS, no SASL
        run_coroutine(lambda: list_topics(fed.kafka_bootstrap), timeout=30)


def test_a_city_year_under_the_acls_reaches_the_nation(secured):
    fed = secured
    urls = {f"{s.node}/{s.service}": s.url for s in fed.services if s.node == CITY}
    summary = demo.load(urls, {CITY: fed.tokens()[CITY]}, progress=False, strict=True)
    completed = summary["cities"][CITY]["sessions_completed"]
    assert completed > 0, summary
    national = next(s.url for s in fed.services if s.service == "evaluation")
    deadline = time.monotonic() + 120
    while True:
        figures = httpx.get(f"{national}/figures", timeout=10).json()
        served = figures.get("cities", {}).get(CITY, {})
        if served.get("sessions", {}).get("completed") == completed:
            break
        assert time.monotonic() < deadline, f"the nation shows {served.get('sessions')}"
        time.sleep(1)
    assert figures["reporting"][CITY]["behind"] is False  # its heartbeats come through
