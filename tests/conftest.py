"""The real infrastructure for integration and browser tests: one Kafka and one FerretDB per
test session.

Both run on free ports in the session's temp directory, so several test runs on one machine do not
clash. Nothing here is mocked; every test in this folder is marked `integration`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.local.federation import (
    ServiceProcess, city_token_hashes, federation_topics, new_tokens, token_hashes,
)
from deploy.local.infra import FerretDB, KafkaServer, setup
from deploy.local.process import free_port, run_coroutine
from shared.kafka_admin import ensure_topics
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import CITIES, NATIONAL

# Services started by the current test module (see tests/integration/conftest.py): a national
# service left running by one module would consume, dead-letter and publish insights beside the
# next module's own, on the same topics.
STARTED_IN_MODULE: list[ServiceProcess] = []


async def read_topic(kafka: Settings | str, topic: str) -> list:
    """Every committed record on `topic` so far, read by a real consumer outside any group, on
    a broker's bootstrap or with a principal's Settings (a secured broker)."""
    where = client_kwargs(kafka) if isinstance(kafka, Settings) else {"bootstrap_servers": kafka}
    # read_committed: on a topic MirrorMaker writes in transactions, what the nation counts
    consumer = AIOKafkaConsumer(**where, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # a topic made after the start
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:  # created a moment ago: its metadata has not spread yet
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records.extend(batch)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()


@dataclass
class Infra:
    """What a test needs to reach the real Kafka and FerretDB, and to run services on them."""

    kafka: KafkaServer
    ferretdb: FerretDB
    root: Path
    tokens: dict[str, dict[str, str]] = field(
        default_factory=lambda: new_tokens([NATIONAL, *CITIES]))
    pseudonym_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    services: list[ServiceProcess] = field(default_factory=list)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def mongo_url(self) -> str:
        return self.ferretdb.url

    def token(self, node: str, role: str = "operator") -> str:
        return self.tokens.setdefault(node, new_tokens([node])[node])[role]

    def auth(self, node: str, role: str = "operator") -> dict[str, str]:
        """Request headers carrying `node`'s bearer token for `role`."""
        return {"Authorization": f"Bearer {self.token(node, role)}"}

    def start_service(self, node: str, service: str, **extra_env: str) -> ServiceProcess:
        """Start `services.<service>.app` for `node` on a free port and wait until /health is 200.

        `extra_env` takes settings by name (`outbox_poll_seconds="0.05"`, or
        `BANGKOM_OUTBOX_POLL_SECONDS=...`). The process is stopped at the end of the session;
        `.kill()` crashes it, `.start()` brings it back on the same port.
        """
        self.token(node)  # a node outside the federation gets tokens too
        if service == "evaluation":  # the cities' tokens known so far may read their own ids
            extra_env = {"city_token_hashes": city_token_hashes(self.tokens), **extra_env}
        proc = ServiceProcess(
            node=node, service=service, port=free_port(), kafka_bootstrap=self.kafka_bootstrap,
            mongo_url=self.mongo_url, token_hashes=token_hashes(self.tokens[node]),
            pseudonym_secret=self.pseudonym_secret, log_dir=self.root / "logs",
            extra_env=extra_env, die_with_parent=True)
        self.services.append(proc)
        STARTED_IN_MODULE.append(proc)
        proc.start()
        return proc

    async def read_topic(self, topic: str) -> list:
        return await read_topic(self.kafka_bootstrap, topic)

    def stop(self) -> None:
        for proc in self.services:
            proc.stop()
        self.ferretdb.stop()
        self.kafka.stop()


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory):
    setup()  # a no-op when `bangkom setup` already filled the cache
    root = tmp_path_factory.mktemp("infra")
    # die_with_parent: a test session killed hard takes its broker and database with it.
    kafka = KafkaServer(port=free_port(), controller_port=free_port(), data_dir=root / "kafka",
                        log_dir=root / "logs", die_with_parent=True)
    ferretdb = FerretDB(port=free_port(), data_dir=root / "ferretdb", log_dir=root / "logs",
                        die_with_parent=True)
    infra = Infra(kafka=kafka, ferretdb=ferretdb, root=root)
    try:
        kafka.spawn()  # the broker boots while FerretDB starts
        ferretdb.start()
        kafka.wait_ready(timeout=90)
        # The federation's topics exist from the start, as after `bangkom up`, so pattern
        # subscribers (the nation) see every city at once.
        run_coroutine(lambda: ensure_topics(kafka.bootstrap, federation_topics()), timeout=60)
        yield infra
    finally:
        infra.stop()


@pytest.fixture(scope="session")
def topic_records():
    """`await topic_records(bootstrap, topic)`: every record on a topic of any broker."""
    return read_topic


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    # while its browser is open, and no asyncio test may start after that.
    browser = Path(__file__).parent / "browser"
    items.sort(key=lambda item: browser in item.path.parents)


@pytest.fixture(scope="module", autouse=True)
def stop_services_at_module_end(request: pytest.FixtureRequest):
    """Each integration module starts from the topics and databases alone, with no service of
    another module still consuming them. (Browser tests share session-wide services instead.)"""
    yield
    if Path(__file__).parent / "integration" in Path(request.module.__file__).parents:
        while STARTED_IN_MODULE:
            STARTED_IN_MODULE.pop().stop()
