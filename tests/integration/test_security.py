"""A broker secured as production runs it: SASL_SSL/SCRAM-SHA-512, StandardAuthorizer with no
access without an ACL, and the least-privilege rules of deploy/local/security.py.

One real KRaft broker plays both sides here: the rules of two cities' own brokers and those of
the national cluster for both cities are applied to it together, each principal with its own
password. Every attempt below is made by a real client and its outcome compared with what the
rules must give: allowed, or refused with an authorization or authentication error.
"""

from __future__ import annotations

import asyncio
import ssl

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError, for_code

from deploy.local.infra import KafkaServer
from deploy.local.process import free_port, run_coroutine
from deploy.local.security import (
    BrokerSecurity, apply_acls, city_local_acls, city_principals, ensure_ca, national_acls,
    national_city_acls, service_principal,
)
from shared.kafka_admin import ensure_node_topics, ensure_topics
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import NATIONAL, deadletter_topic, topic

CITIES = ("salatiga", "palu")
EVALUATION = service_principal(NATIONAL, "evaluation")
STREAMS = ("enrollment", "sessions", "insights", "heartbeat")


@pytest.fixture(scope="module")
def secured(infra):
    root = infra.root / "secured"
    principals = [p for city in CITIES for p in city_principals(city)] + [EVALUATION]
    security = BrokerSecurity.prepare(root / "security", principals)
    broker = KafkaServer(port=free_port(), controller_port=free_port(), data_dir=root / "kafka",
                         log_dir=root / "logs", die_with_parent=True, security=security,
                         name="kafka-secured", heap="384m")
    broker.start(timeout=180)
    try:
        operator = broker.admin
        names = [*(topic(c, s) for c in CITIES for s in STREAMS),
                 *(deadletter_topic(c) for c in CITIES), deadletter_topic(NATIONAL)]
        run_coroutine(lambda: ensure_topics(operator, names), timeout=60)
        acls = [*(a for c in CITIES for a in city_local_acls(c)),
                *(a for c in CITIES for a in national_city_acls(c)), *national_acls()]
        apply_acls(operator, acls)
        yield broker, security
    finally:
        broker.stop()


def _as(security: BrokerSecurity, broker: KafkaServer, principal: str, **override) -> Settings:
    return Settings(**{**security.settings(principal, broker.bootstrap), **override})


async def _produce(settings: Settings, name: str) -> None:
    producer = AIOKafkaProducer(**client_kwargs(settings), request_timeout_ms=10_000,
                                metadata_max_age_ms=5_000, enable_idempotence=False)
    try:  # a key, since the heartbeat topic is compacted; partition 0, where _read looks
        await producer.start()
        await producer.send_and_wait(name, b"{\"probe\": true}", key=b"probe", partition=0)
    finally:
        await producer.stop()


async def _read(settings: Settings, name: str) -> None:
    """Read the first record of partition 0 (the writes above put one there): a refusal is a
    TopicAuthorizationFailedError, from the metadata (no DESCRIBE) or from the fetch (no READ)."""
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False,
                                request_timeout_ms=10_000)
    await consumer.start()
    try:
        partition = TopicPartition(name, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)  # no ListOffsets: aiokafka retries that one for ever
        while True:
            await consumer._client.force_metadata_update()
            if name in consumer._client.cluster.unauthorized_topics:
                raise TopicAuthorizationFailedError(name)
            if (await consumer.getmany(partition, timeout_ms=1000)).get(partition):
                return
    finally:
        await consumer.stop()


async def _admin(settings: Settings, action: str) -> list[str] | None:
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=10_000)
    await admin.start()
    try:
        if action == "list":
            return sorted(await admin.list_topics())
        if action == "create":
            response = await admin.create_topics([NewTopic(topic("salatiga", "extra"), 1, 1)])
            codes = [error for _, error, *_ in response.topic_errors]
        else:
            response = await admin.delete_topics([topic("palu", "enrollment")])
            codes = [error for _, error in response.topic_error_codes]
        if any(codes):
            raise for_code(next(code for code in codes if code))(f"{action} refused")
        return None
    finally:
        await admin.close()


async def _attempt(operation) -> str:
    try:
        await asyncio.wait_for(operation, 60)
    except TimeoutError:
        raise  # a client that hangs is a failure, not a refusal
    except (KafkaError, ssl.SSLError, OSError) as error:
        return f"refused: {type(error).__name__}"
    return "allowed"


async def test_each_principal_may_do_only_what_its_city_and_role_allow(secured):
    broker, security = secured
    enrollment = _as(security, broker, "salatiga-enrollment")
    sessions = _as(security, broker, "salatiga-sessions")
    evaluation = _as(security, broker, EVALUATION)
    attempts = {
        "salatiga-enrollment writes its own events":
            _produce(enrollment, topic("salatiga", "enrollment")),
        "salatiga-enrollment writes its heartbeat": _produce(enrollment, topic("salatiga", "heartbeat")),
        "salatiga-enrollment writes palu's events": _produce(enrollment, topic("palu", "enrollment")),
        "salatiga-enrollment writes the sessions stream": _produce(enrollment, topic("salatiga", "sessions")),
        "salatiga-sessions reads its own enrollment stream": _read(sessions, topic("salatiga", "enrollment")),
        "salatiga-sessions reads palu's enrollment stream": _read(sessions, topic("palu", "enrollment")),
        "salatiga-sessions reads palu's insights": _read(sessions, topic("palu", "insights")),
        # what every service does at start: its topics are there with their configs
        "salatiga-enrollment checks its topics": ensure_node_topics(enrollment, [
            topic("salatiga", s) for s in ("enrollment", "sessions", "deadletter", "heartbeat")]),
        "evaluation checks the insights and its dead letters": ensure_node_topics(evaluation, [
            topic("salatiga", "insights"), deadletter_topic(NATIONAL)]),
        "salatiga-enrollment creates a topic": _admin(enrollment, "create"),
        "salatiga-enrollment deletes palu's topic": _admin(enrollment, "delete"),
        "evaluation reads salatiga's events": _read(evaluation, topic("salatiga", "enrollment")),
        "evaluation reads salatiga's heartbeats": _read(evaluation, topic("salatiga", "heartbeat")),
        "evaluation writes salatiga's insights": _produce(evaluation, topic("salatiga", "insights")),
        # it may see its city's topics (DESCRIBE) but read only what its role consumes
        "salatiga-enrollment reads its city's insights": _read(enrollment, topic("salatiga", "insights")),
        "evaluation writes into salatiga's events": _produce(evaluation, topic("salatiga", "enrollment")),
        "evaluation writes the national dead letters": _produce(evaluation, deadletter_topic(NATIONAL)),
    }
    allowed = {"salatiga-enrollment checks its topics",
               "evaluation checks the insights and its dead letters",
               "salatiga-enrollment writes its own events", "salatiga-enrollment writes its heartbeat",
               "salatiga-sessions reads its own enrollment stream", "evaluation reads salatiga's events",
               "evaluation reads salatiga's heartbeats", "evaluation writes salatiga's insights",
               "evaluation writes the national dead letters"}
    outcomes = {what: await _attempt(operation) for what, operation in attempts.items()}
    table = "\n".join(f"{w}: {o}" for w, o in outcomes.items())
    assert {w for w, o in outcomes.items() if o == "allowed"} == allowed, table
    refusals = {w: o for w, o in outcomes.items() if w not in allowed}
    assert len(refusals) == 8 and all("Authorization" in o for o in refusals.values()), table


async def test_a_city_lists_only_its_own_topics(secured):
    broker, security = secured
    listed = await _admin(_as(security, broker, "salatiga-enrollment"), "list")
    assert listed and all(name.startswith("bangkom.salatiga.") for name in listed), listed
    assert topic("salatiga", "enrollment") in listed


async def test_wrong_unknown_plaintext_and_untrusting_clients_are_refused(secured, tmp_path):
    broker, security = secured
    other_ca = ensure_ca(tmp_path / "elsewhere")  # a CA that did not sign the broker's certificate
    attempts = {
        "wrong password": _as(security, broker, "salatiga-enrollment",
                              kafka_sasl_password="not-the-password"),
        "unknown user": _as(security, broker, "salatiga-enrollment",
                            kafka_sasl_username="jakarta-enrollment"),
        "no TLS, no SASL": Settings(kafka_bootstrap=broker.bootstrap),
        "CA not trusted": _as(security, broker, "salatiga-enrollment",
                              kafka_ca_file=str(other_ca)),
    }
    name = topic("salatiga", "enrollment")
    outcomes = {what: await _attempt(_produce(settings, name))
                for what, settings in attempts.items()}
    assert len(outcomes) == 4 and all(o.startswith("refused") for o in outcomes.values()), outcomes
