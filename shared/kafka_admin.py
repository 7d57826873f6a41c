"""Topics as production keeps them: created with their retention, replication factor and
`min.insync.replicas`, and brought back to those when they exist with other settings.

How long each kind keeps its records is `shared.topics.topic_configs`. Kafka's own Java admin
changes existing topics with IncrementalAlterConfigs (KIP-339), which sets the named keys and
leaves every other one alone; aiokafka has only the older AlterConfigs, which replaces a topic's
whole dynamic configuration, so the request is defined here on aiokafka's protocol types.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError, for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String

from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import PARTITIONS, topic_configs

log = logging.getLogger(__name__)


class IncrementalAlterConfigsResponse_v0(Response):
    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("responses", Array(("error_code", Int16), ("error_message", String("utf-8")),
                            ("resource_type", Int8), ("resource_name", String("utf-8")))),
    )


class IncrementalAlterConfigsRequest_v0(RequestStruct):
    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = IncrementalAlterConfigsResponse_v0
    SCHEMA = Schema(
        ("resources", Array(
            ("resource_type", Int8), ("resource_name", String("utf-8")),
            ("configs", Array(("name", String("utf-8")), ("config_operation", Int8),
                              ("value", String("utf-8")))))),
        ("validate_only", Boolean),
    )


class IncrementalAlterConfigsRequest(Request[IncrementalAlterConfigsRequest_v0]):
    API_KEY = 44
    SET = 0

    def __init__(self, changes: dict[str, dict[str, str]]) -> None:
        self.changes = changes

    def build(self, request_struct_class):
        return request_struct_class(
            [(ConfigResourceType.TOPIC.value, name, [(key, self.SET, value)
                                                     for key, value in configs.items()])
             for name, configs in self.changes.items()], False)


async def topic_settings(admin: AIOKafkaAdminClient, names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Every config of each topic, as the broker reports it (defaults included)."""
    names = list(names)
    if not names:
        return {}
    found: dict[str, dict[str, str]] = {}
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    for response in responses:
        for error_code, error_message, _, name, entries, *_ in response.resources:
            if error_code:
                raise for_code(error_code)(f"describe_configs {name}: {error_message}")
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


async def _settled(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """`topic_settings`, waiting up to 15 s for topics the broker's metadata does not know yet
    (one made a moment ago, by us or another node)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return await topic_settings(admin, names)
        except UnknownTopicOrPartitionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def _admin(kafka: Settings | str) -> AIOKafkaAdminClient:
    settings = kafka if isinstance(kafka, Settings) else Settings(kafka_bootstrap=kafka)
    return AIOKafkaAdminClient(**client_kwargs(settings))


async def ensure_topics(kafka: Settings | str, names: Iterable[str],
                        partitions: int = PARTITIONS, *, replication: int = 1,
                        min_insync: int = 1) -> list[str]:
    """Create the missing topics of `names` with their configs, and set the configs of the
    existing ones where they differ. Returns (and logs) one line per change made."""
    if min_insync > replication:
        raise ValueError(f"kafka_min_insync_replicas={min_insync} is above "
                         f"kafka_replication_factor={replication}: no write could be acknowledged")
    names = sorted(set(names))
    admin = _admin(kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        created = []
        missing = [name for name in names if name not in existing]
        if missing:
            response = await admin.create_topics([
                NewTopic(name, partitions, replication, topic_configs=topic_configs(name, min_insync))
                for name in missing])
            for name, error_code, *rest in response.topic_errors:
                if error_code == TopicAlreadyExistsError.errno:
                    continue  # made meanwhile by another node, or not yet in our metadata
                if error_code:
                    raise for_code(error_code)(f"create_topics {name}: {rest[0] if rest else ''}")
                created.append(name)
        changes = [f"created {name} ({partitions} partitions, replication {replication}, "
                   f"{_describe(topic_configs(name, min_insync))})" for name in sorted(created)]
        current = await _settled(admin, [name for name in names if name not in created])
        alter = {}
        for name, have in current.items():
            differ = {key: value for key, value in topic_configs(name, min_insync).items()
                      if have.get(key) != value}
            if differ:
                alter[name] = differ
                changes.append(f"changed {name}: " + ", ".join(
                    f"{key} {have.get(key)} -> {value}" for key, value in differ.items()))
        if alter:
            response = await admin._send_request(IncrementalAlterConfigsRequest(alter))
            for error_code, error_message, _, name in response.responses:
                if error_code:
                    raise for_code(error_code)(f"incremental_alter_configs {name}: {error_message}")
    finally:
        await admin.close()
    for change in changes:
        log.info("topic %s", change)
    return changes


def _describe(configs: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in configs.items())


async def ensure_node_topics(settings: Settings, names: Iterable[str]) -> list[str]:
    """`ensure_topics` as a node runs it: its principal, replication and min.insync.replicas."""
    return await ensure_topics(settings, names, replication=settings.kafka_replication_factor,
                               min_insync=settings.kafka_min_insync_replicas)
