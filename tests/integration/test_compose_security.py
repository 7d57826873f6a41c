"""docker compose's security bundle, run for real on this machine: no Docker engine here, so the
files `bangkom compose-security` writes for the containers are written for this machine instead
(`mount=None`, 127.0.0.1, free ports) and run as the containers would run them: the broker's
`start.sh` (with the Kafka tools the apache/kafka image has in /opt/kafka/bin, here the same
classes from the Maven Central jars), its health check's `client.properties`, the provisioning
one-shot as the operator of `operator-<node>/kafka.env`, and a service with its own
`kafka.env` only. What is checked: the broker starts secured from those files alone, the
provisioning makes the node's topics and ACLs (and running it again changes nothing), the
service may write its own stream and nothing else, and a plaintext client is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from typer.testing import CliRunner

from deploy.cli import app
from deploy.compose_security import write_bundle
from deploy.local.federation import broker_topics
from deploy.local.infra import kafka_libs, list_topics
from deploy.local.process import free_port, port_open, run_coroutine
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import topic

from federation_helpers import end_process

CITY = "salatiga"
_TOOLS = {  # /opt/kafka/bin's scripts, as the classes they run
    "kafka-storage.sh": "kafka.tools.StorageTool",
    "kafka-server-start.sh": "kafka.Kafka",
    "kafka-broker-api-versions.sh": "org.apache.kafka.tools.BrokerApiVersionsCommand",
}


def _tools(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for script, main in _TOOLS.items():
        heap = "-Xms256m -Xmx256m" if main == "kafka.Kafka" else "-Xmx128m"
        path = directory / script
        path.write_text(f'#!/bin/bash\nexec java {heap} -cp "{kafka_libs()}/*" {main} "$@"\n')
        path.chmod(0o755)
    return directory


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="module")
def city_broker(tmp_path_factory):
    root = tmp_path_factory.mktemp("compose-security")
    port, controller = free_port(), free_port()
    data = root / "data"
    dirs = write_bundle(root / "bundle", mount=None, host=lambda node: "127.0.0.1",
                        ports=(port, controller, free_port()), data=str(data))
    broker_dir = dirs[f"kafka-{CITY}"]
    env = {**os.environ, "KAFKA_BIN": str(_tools(root / "bin"))}
    log = (root / "broker.log").open("w")
    process = subprocess.Popen([str(broker_dir / "start.sh")], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not port_open("127.0.0.1", port):
            assert process.poll() is None, (root / "broker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the broker did not open its port in 180 s"
            time.sleep(0.5)
        yield dirs, port, env
    finally:
        end_process(process, 30)
        log.close()


def test_the_health_check_passes_as_the_broker_and_plaintext_is_refused(city_broker):
    dirs, port, env = city_broker
    broker_dir = dirs[f"kafka-{CITY}"]
    check = subprocess.run(  # the compose health check, as written in docker-compose.yml
        [f"{env['KAFKA_BIN']}/kafka-broker-api-versions.sh", "--bootstrap-server",
         f"localhost:{port}", "--command-config", str(broker_dir / "client.properties")],
        capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0, check.stderr[-2000:]
    assert f"127.0.0.1:{port} (id: 1" in check.stdout  # the advertised listener answered
    with pytest.raises(Exception):  # noqa: B017 - a TLS listener spoken to in plaintext
        run_coroutine(lambda: list_topics(f"127.0.0.1:{port}"), timeout=20)


def test_provisioning_makes_the_nodes_topics_and_acls_once(city_broker):
    dirs, _, _ = city_broker
    operator = _env_file(dirs[f"operator-{CITY}"] / "kafka.env")
    users = dirs[f"operator-{CITY}"] / "users.json"
    args = ["compose-provision", "--node", CITY, "--users", str(users), "--wait", "120"]
    first = CliRunner().invoke(app, args, env=operator)
    assert first.exit_code == 0, first.output
    assert all(f"created {name} " in first.output for name in broker_topics(CITY)), first.output
    again = CliRunner().invoke(app, args, env=operator)
    assert again.exit_code == 0, again.output
    assert "created" not in again.output and "ACLs on" in again.output
    settings = Settings(**{k.removeprefix("BANGKOM_").lower(): v for k, v in operator.items()})
    assert set(broker_topics(CITY)) <= set(run_coroutine(lambda: list_topics(settings), 30))
    refused = CliRunner().invoke(app, ["compose-provision", "--node", "atlantis"], env=operator)
    assert refused.exit_code != 0 and "atlantis" in refused.output


async def _produce(settings: Settings, name: str) -> None:
    producer = AIOKafkaProducer(**client_kwargs(settings), request_timeout_ms=10_000)
    try:
        await producer.start()
        await producer.send_and_wait(name, b"{}", key=b"k")
    finally:
        await producer.stop()


def test_a_service_with_its_own_env_file_writes_its_stream_and_nothing_else(city_broker):
    dirs, _, _ = city_broker
    provisioned = CliRunner().invoke(
        app, ["compose-provision", "--node", CITY, "--users",
              str(dirs[f"operator-{CITY}"] / "users.json")],
        env=_env_file(dirs[f"operator-{CITY}"] / "kafka.env"))
    assert provisioned.exit_code == 0, provisioned.output
    # BANGKOM_ENV_FILE's reader, as a service process started with it reads it
    settings = Settings(_env_file=dirs[f"{CITY}-enrollment"] / "kafka.env", node=CITY)
    assert settings.kafka_sasl_username == f"{CITY}-enrollment"
    asyncio.run(asyncio.wait_for(_produce(settings, topic(CITY, "enrollment")), 60))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(asyncio.wait_for(_produce(settings, topic(CITY, "sessions")), 60))
    wrong = settings.model_copy(update={"kafka_sasl_username": f"{CITY}-sessions"})
    with pytest.raises(KafkaError):  # another principal's name with this password
        asyncio.run(asyncio.wait_for(_produce(wrong, topic(CITY, "sessions")), 60))

