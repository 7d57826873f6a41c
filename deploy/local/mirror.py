"""The links between the cities and the nation: Apache Kafka's MirrorMaker 2 in dedicated mode.

One MirrorMaker process for any number of cities (one JVM is lighter than one per city on a
small machine), configured by `link_properties`. The national cluster appears once per city,
as `national-<city>`, so that each city's link speaks to the nation with that city's own
credentials when the brokers are secured (`<city>-link`, deploy/local/security.py). Each
city's event topics
(`bangkom.<city>.enrollment`, `.sessions`) and its heartbeats flow to the national cluster, the
city's insights
(`bangkom.<city>.insights`) flow back. `IdentityReplicationPolicy` keeps topic names unchanged,
so the national pattern subscriptions (`bangkom.<city>.(enrollment|sessions)`, `.heartbeat`) and the "declared
city must match the topic's city" check hold on mirrored topics exactly as on local ones; the
default policy would prefix the source alias (`salatiga.bangkom.salatiga.enrollment`) and make
the city appear twice in every name. Identity naming cannot loop here because no topic flows in
both directions.

Toward the nation, replication is exactly once (KIP-618 via KIP-710's internal REST in dedicated
mode): each batch is written in a Kafka transaction together with its source offsets, so a
MirrorMaker killed at any moment resumes where its last committed transaction ended and the
aborted remainder is invisible to the national `read_committed` consumers. Insights flow back at
least once: the city's insights consumer keeps the newest version per insight id anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from deploy.local.infra import SetupError, kafka_libs, log4j2_yaml
from deploy.local.process import ManagedProcess, free_port
from deploy.local.security import national_alias
from shared.kafka_auth import java_client_properties
from shared.settings import Settings
from shared.topics import NATIONAL, UPLINK_STREAMS, topic

MIRROR_HEAP = "192m"  # the link test passed with it; resident memory not measured yet

# Connect logs every configuration in full at INFO, several times per start.
MIRROR_QUIET = (
    "org.apache.kafka.clients", "org.apache.kafka.common",
    "org.apache.kafka.connect.runtime.WorkerConfig",
    "org.apache.kafka.connect.runtime.ConnectorConfig",
    "org.apache.kafka.connect.runtime.SourceConnectorConfig",
    "org.apache.kafka.connect.mirror.MirrorMakerConfig",
    "org.apache.kafka.connect.mirror.MirrorSourceConfig",
)


def city_to_national_topics(city: str) -> str:
    """The regex of what flows up: the city's own event streams and heartbeats, nothing else."""
    return rf"bangkom\.{city}\.({'|'.join(UPLINK_STREAMS)})"


@dataclass(frozen=True)
class LinkSpec:
    """The cities (name -> bootstrap) linked with one national cluster; `clients`, when the
    brokers are secured, how each cluster alias is reached (the link principal's Settings)."""

    cities: dict[str, str]
    national_bootstrap: str
    replication_factor: int = 1
    clients: dict[str, Settings] | None = None

    def aliases(self) -> list[str]:
        return [a for city in self.cities for a in (city, national_alias(city))]


def link_properties(spec: LinkSpec, *, rest_port: int) -> str:
    rf = spec.replication_factor
    lines = [
        "# Written by deploy/local/mirror.py: the links of the cities with the nation.",
        f"clusters = {', '.join(spec.aliases())}",
        "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
    ]
    for city, bootstrap in spec.cities.items():
        nation = national_alias(city)
        up, down = f"{city}->{nation}", f"{nation}->{city}"
        lines += [
            f"{city}.bootstrap.servers = {bootstrap}",
            f"{nation}.bootstrap.servers = {spec.national_bootstrap}",
            f"{up}.enabled = true",
            f"{up}.topics = {city_to_national_topics(city)}",
            f"{down}.enabled = true",
            f"{down}.topics = {re.escape(topic(city, 'insights'))}",
            # Exactly once toward the nation (the figures count records); the source consumer
            # must then read committed data only, or MirrorMaker refuses exactly-once for it.
            f"{up}.exactly.once.support = requested",
            f"{up}.consumer.isolation.level = read_committed",
            f"{nation}.exactly.once.source.support = enabled",
        ]
    for alias, client in (spec.clients or {}).items():
        lines += [f"{key} = {value}" for key, value in
                  sorted(java_client_properties(client, prefix=f"{alias}.").items())
                  if not key.endswith(".bootstrap.servers")]
    # Worker settings reach a flow's worker only with its target cluster's prefix.
    for cluster in spec.aliases():
        lines += [
            # How often the at-least-once flows (insights down) store how far they copied
            # (Connect's default is 60 s): what `bangkom status` reports as their lag, and what
            # a restarted MirrorMaker copies again. Exactly-once flows store it per transaction.
            f"{cluster}.offset.flush.interval.ms = 5000",
            # Each flow's Connect group has this one worker. After the national broker was
            # away, the worker comes back as a new member, and by default Connect then holds
            # the old member's connectors for 5 minutes in case it returns (measured: a city's
            # flow copied nothing for 5 min after a 2 min national outage). None else can.
            f"{cluster}.scheduled.rebalance.max.delay.ms = 0",
        ]
    lines += [
        "dedicated.mode.enable.internal.rest = true",
        f"listeners = http://127.0.0.1:{rest_port}",
        # Only the data flows: no consumer-group failover here, so no checkpoints or heartbeats.
        # ("requested", not "required": the heartbeat and checkpoint connectors of the same flow
        # cannot declare exactly-once support; the source connector does, given read_committed.)
        # (Disabling the checkpoint connector outright fails its validation with an ERROR at
        # every start, so it runs with no group to follow instead.)
        "groups = bangkom-no-group",
        "emit.checkpoints.interval.seconds = 3600",
        "emit.heartbeats.enabled = false",
        "sync.group.offsets.enabled = false",
        # ACLs and topic configs are the operator's (bangkom's setup), not copied across.
        "sync.topic.acls.enabled = false",
        "sync.topic.configs.enabled = false",
        "refresh.topics.interval.seconds = 10",

        "tasks.max = 1",
        # A link that is down for hours must resume by itself, not fail its task: sends retry
        # until delivered, whatever the outage's length.
        "producer.delivery.timeout.ms = 2147483647",
        "producer.max.block.ms = 2147483647",
        "producer.linger.ms = 5",
        f"replication.factor = {rf}",
        f"config.storage.replication.factor = {rf}",
        f"offset.storage.replication.factor = {rf}",
        f"status.storage.replication.factor = {rf}",
        f"offset-syncs.topic.replication.factor = {rf}",
        f"heartbeats.topic.replication.factor = {rf}",
        f"checkpoints.topic.replication.factor = {rf}",
        "",
    ]
    return "\n".join(lines)


class MirrorMaker(ManagedProcess):
    """The links of `spec`'s cities, one dedicated-mode MirrorMaker 2 process."""

    stop_timeout = 20.0
    start_timeout = 90.0

    _log_start = 0

    def __init__(self, spec: LinkSpec, *, data_dir: Path, log_dir: Path,
                 rest_port: int | None = None, libs: Path | None = None,
                 die_with_parent: bool = False) -> None:
        self.spec = spec
        self.name = "mirrormaker"
        self.data_dir = data_dir
        self.rest_port = rest_port or free_port()
        self.libs = libs or kafka_libs()
        self.server_log = log_dir / f"{self.name}-mirror.log"
        super().__init__(log_path=log_dir / f"{self.name}.out", die_with_parent=die_with_parent)

    @property
    def properties(self) -> Path:
        return self.data_dir / "mm2.properties"

    def logs(self) -> list[Path]:
        return [self.log_path, self.server_log]

    def command(self) -> list[str]:
        return ["java", f"-Xms{MIRROR_HEAP}", f"-Xmx{MIRROR_HEAP}", "-XX:+UseSerialGC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}",
                "-cp", f"{self.libs}/*", "org.apache.kafka.connect.mirror.MirrorMaker",
                str(self.properties)]

    def prepare(self) -> None:
        if not any(self.libs.glob("connect-mirror-*.jar")):
            raise SetupError(f"no MirrorMaker jars in {self.libs}: run `bangkom setup` first")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server_log.parent.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.yaml").write_text(
            log4j2_yaml(self.server_log, MIRROR_QUIET, writer="deploy/local/mirror.py"))
        # 0600: with secured brokers it holds the links' passwords
        self.properties.touch(mode=0o600)
        self.properties.chmod(0o600)
        self.properties.write_text(link_properties(self.spec, rest_port=self.rest_port))
        # The log is appended to across restarts: the probe reads only this start's part.
        self._log_start = self.server_log.stat().st_size if self.server_log.exists() else 0

    def probe(self) -> str | None:
        # Ready once both herders have started their source connector's task (logged by
        # Connect's Worker); replication itself needs no further signal from us.
        try:
            with self.server_log.open("rb") as log:
                log.seek(self._log_start)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return "no log yet"
        up = text.count("ExactlyOnceWorkerSourceTask{id=MirrorSourceConnector-0} Source task "
                        "finished initialization")
        down = text.count("WorkerSourceTask{id=MirrorSourceConnector-0} Source task finished "
                          "initialization") - up
        cities = len(self.spec.cities)
        if up >= cities and down >= cities:
            return None
        return (f"replication tasks started: {up} of {cities} to {NATIONAL} (exactly once), "
                f"{down} of {cities} to the cities")
