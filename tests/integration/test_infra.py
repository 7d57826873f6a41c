"""The session's real Kafka and FerretDB work end to end."""

import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from deploy.local.federation import federation_topics


async def test_a_message_produced_to_kafka_is_consumed_with_its_key(infra):
    name = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(name, b'{"hello": "salatiga"}', key=b"session/1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(name, bootstrap_servers=infra.kafka_bootstrap,
                                group_id=f"test-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        record = await consumer.getone()
        partitions = consumer.partitions_for_topic(name)
    finally:
        await consumer.stop()

    assert (record.key, record.value) == (b"session/1", b'{"hello": "salatiga"}')
    assert (record.partition, record.offset) == (sent.partition, sent.offset)
    assert len(partitions) == 3  # auto-created topics get num.partitions=3


async def test_the_federation_topics_exist_with_three_partitions(infra):
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(federation_topics())
    finally:
        await admin.close()

    by_name = {item["topic"]: len(item["partitions"]) for item in described}
    assert by_name == {name: 3 for name in federation_topics()}
    assert "bangkom.palu.insights" in by_name and "bangkom.national.deadletter" in by_name


async def test_a_document_written_to_ferretdb_reads_back_and_unique_indexes_hold(infra):
    client = AsyncMongoClient(infra.mongo_url, serverSelectionTimeoutMS=5000)
    try:
        coll = client["bangkom_test_infra"]["people"]
        await coll.create_index("person_id", unique=True)
        await coll.insert_one({"_id": "p1", "person_id": "a" * 32, "jp": 12, "_v": 1})

        found = await coll.find_one({"_id": "p1"})
        with pytest.raises(DuplicateKeyError):
            await coll.insert_one({"_id": "p2", "person_id": "a" * 32})
        count = await coll.count_documents({})
    finally:
        await client.close()

    assert found == {"_id": "p1", "person_id": "a" * 32, "jp": 12, "_v": 1}
    assert count == 1


def test_a_started_service_answers_its_own_tokens_and_comes_back_after_a_crash(infra):
    svc = infra.start_service("salatiga", "sessions")
    own = httpx.get(f"{svc.url}/sessions", headers=infra.auth("salatiga", "viewer"))
    foreign = httpx.get(f"{svc.url}/sessions", headers=infra.auth("palu", "viewer"))

    svc.kill()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{svc.url}/health")
    svc.start()
    after_restart = httpx.get(f"{svc.url}/health")
    svc.stop()

    assert (own.status_code, foreign.status_code) == (200, 403)
    assert after_restart.status_code == 200
    assert not svc.running()
