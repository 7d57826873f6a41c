"""`bangkom up --secure`: the services and the links at work under SASL_SSL/SCRAM-SHA-512 and
the least-privilege ACLs, each with its own principal; in both topologies (the federation, where
MirrorMaker runs each city's link as `<city>-link`, and the single broker of fast tests).

The real `bangkom up` in a run directory of its own, at a port offset. A city runs a training
year through its APIs, and its figures reach the nation: every service did its work (outbox,
consumers, heartbeats, insights) with only the rights deploy/local/security.py gives it.
"""

from __future__ import annotations

import os
import stat
import time

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from rich.console import Console

from deploy import demo
from deploy.local.federation import Federation, RunState
from deploy.local.infra import list_topics
from deploy.local.process import port_holders, run_coroutine
from deploy.local.security import link_principal
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import CITIES, NATIONAL, topic
from federation_helpers import environment, run_bangkom

OFFSET = 3000  # apart from test_heal's (1000) and the benches' (2000)
CITY = "palu"
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module", params=["federated", "single-broker"])
def secured(request, tmp_path_factory):
    single = request.param == "single-broker"
    root = tmp_path_factory.mktemp("secure") / "run"
    env = {**os.environ, "BANGKOM_RUN_DIR": str(root), "BANGKOM_PORT_OFFSET": str(OFFSET)}
    fed = Federation(console=Console(file=open(os.devnull, "w")), state=RunState(root=root),
                     offset=OFFSET, single_broker=single, secure=True)
    busy = [port for ports in fed.ports().values() for port in ports if port_holders(port)]
    assert not busy, f"ports of the test federation are taken: {busy}"
    try:
        args = ["--single-broker"] if single else []
        done = run_bangkom(env, "up", *args, "--secure", "--no-demo", timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        yield fed
    finally:
        run_bangkom(env, "down", timeout=300)


async def _write_as_link(fed: Federation, city: str, name: str) -> str:
    link = Settings(**fed.security.settings(link_principal(city), fed.kafka_bootstrap))
    producer = AIOKafkaProducer(**client_kwargs(link), request_timeout_ms=10_000,
                                enable_idempotence=False)
    try:
        await producer.start()
        await producer.send_and_wait(name, b"{}", key=b"probe")
        return "allowed"
    except KafkaError as error:
        return type(error).__name__
    finally:
        await producer.stop()


def test_each_service_and_link_has_its_own_principal_and_a_plaintext_client_is_refused(secured):
    fed = secured
    assert {row["name"]: row["health"] for row in fed.status()
            if row["health"] != "up"} == {}
    components = fed.state.components()
    for spec in fed.services:
        given = environment(components[spec.name]["pid"])
        assert given["BANGKOM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", spec.name
        assert given["BANGKOM_KAFKA_SASL_USERNAME"] == f"{spec.node}-{spec.service}", spec.name
        assert given["BANGKOM_KAFKA_BOOTSTRAP"] == fed.bootstrap(spec.node), spec.name
    for node in fed.brokers():
        with pytest.raises(Exception):  # noqa: B017 - any failure to talk: no TLS, no SASL
            run_coroutine(lambda n=node: list_topics(fed.bootstrap(n)), timeout=30)
    if not fed.single_broker:  # each city's link speaks to both sides as that city's link only
        links = fed.state.root / "mirrormaker" / "mm2.properties"
        assert stat.S_IMODE(links.stat().st_mode) == 0o600, "it holds the links' passwords"
        text = links.read_text()
        for city in CITIES:
            for alias in (city, f"{NATIONAL}-{city}"):
                assert f'{alias}.sasl.jaas.config = ' in text, alias
                line = next(ln for ln in text.splitlines()
                            if ln.startswith(f"{alias}.sasl.jaas.config"))
                assert f'username="{link_principal(city)}"' in line, line
        # and what it may do there is its own city's only
        outcome = run_coroutine(lambda: _write_as_link(fed, "palu", topic("salatiga", "enrollment")),
                                timeout=60)
        assert outcome == "TopicAuthorizationFailedError", outcome


async def _insights(fed: Federation, node: str) -> int:
    """Records on the city's insights topic on `node`'s broker, read as the operator."""
    name = topic(CITY, "insights")
    consumer = AIOKafkaConsumer(**client_kwargs(fed.kafka_admin(node)), enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


def test_a_city_year_under_the_acls_reaches_the_nation_and_its_insights_come_back(secured):
    fed = secured
    urls = {f"{s.node}/{s.service}": s.url for s in fed.services if s.node == CITY}
    summary = demo.load(urls, {CITY: fed.tokens()[CITY]}, progress=False, strict=True)
    completed = summary["cities"][CITY]["sessions_completed"]
    assert completed > 0, summary
    national = next(s.url for s in fed.services if s.service == "evaluation")
    deadline = time.monotonic() + 180
    while True:
        figures = httpx.get(f"{national}/figures", timeout=10).json()
        served = figures.get("cities", {}).get(CITY, {})
        if served.get("sessions", {}).get("completed") == completed:
            break
        assert time.monotonic() < deadline, f"the nation shows {served.get('sessions')}"
        time.sleep(1)
    assert figures["reporting"][CITY]["behind"] is False  # its heartbeats come through
    # the nation says its findings once it has caught up, at most every 10 s
    while (made := run_coroutine(lambda: _insights(fed, NATIONAL), timeout=30)) == 0:
        assert time.monotonic() < deadline + 60, "the nation made no insight for the city"
        time.sleep(1)
    while (at_city := run_coroutine(lambda: _insights(fed, CITY), timeout=30)) < made:
        assert time.monotonic() < deadline + 60, f"{at_city} of {made} insights at {CITY}"
        time.sleep(1)
