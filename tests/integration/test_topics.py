"""Topic settings read back from the real broker: every event kept for ever, dead letters a
year, the replication factor and min.insync.replicas of the settings; an existing topic with
other settings is brought to them, and nothing else of it changes."""

from __future__ import annotations

import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.local.federation import federation_topics
from shared.kafka_admin import ensure_topics, topic_settings
from shared.settings import Settings
from shared.topics import DEADLETTER_RETENTION_MS, PARTITIONS


async def _read(bootstrap: str, names: list[str]) -> tuple[dict, dict]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = await topic_settings(admin, names)
        replicas = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]}
                    for t in await admin.describe_topics(names)}
        return configs, replicas
    finally:
        await admin.close()


async def test_every_federation_topic_keeps_what_it_should(infra):
    names = federation_topics()
    configs, replicas = await _read(infra.kafka_bootstrap, names)
    settings = Settings()
    for name in names:
        if name.endswith(".heartbeat"):  # each service's newest beat, kept by compaction
            assert configs[name]["cleanup.policy"] == "compact", name
        else:
            retention = str(DEADLETTER_RETENTION_MS) if name.endswith(".deadletter") else "-1"
            assert configs[name]["cleanup.policy"] == "delete", name
            assert configs[name]["retention.ms"] == retention, name
        assert configs[name]["retention.bytes"] == "-1", name
        assert configs[name]["min.insync.replicas"] == str(settings.kafka_min_insync_replicas), name
        assert replicas[name] == {settings.kafka_replication_factor}, name
    assert sum(name.endswith(".deadletter") for name in names) == 5  # four cities and the nation


async def test_a_topic_made_with_a_weeks_retention_is_brought_to_for_ever(infra):
    name = f"bangkom.topictest-{uuid.uuid4().hex[:6]}.enrollment"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:  # as the project made its topics before: the broker's 7 days, and a setting of its own
        await admin.create_topics([NewTopic(name, PARTITIONS, 1, topic_configs={
            "retention.ms": str(7 * 24 * 3600 * 1000), "segment.ms": "3600000"})])
    finally:
        await admin.close()

    changes = await ensure_topics(infra.kafka_bootstrap, [name])
    assert changes == [f"changed {name}: retention.ms 604800000 -> -1"], changes
    configs, _ = await _read(infra.kafka_bootstrap, [name])
    assert configs[name]["retention.ms"] == "-1"
    assert configs[name]["segment.ms"] == "3600000", "an incremental change keeps the rest"
    assert await ensure_topics(infra.kafka_bootstrap, [name]) == []


async def test_min_insync_above_the_replication_factor_is_refused_before_any_call():
    try:
        await ensure_topics("127.0.0.1:1", ["bangkom.x.enrollment"], replication=1, min_insync=2)
    except ValueError as error:
        assert "kafka_min_insync_replicas=2" in str(error)
    else:
        raise AssertionError("accepted")
