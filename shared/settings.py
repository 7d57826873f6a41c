"""Settings of every node, from environment variables with the `BANGKOM_` prefix.

The same names are used by `deploy/local` (local federation) and `docker-compose.yml`.
"""

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # BANGKOM_ENV_FILE: more BANGKOM_* lines from a file (the environment wins), read when the
    # process starts: docker compose hands each service its Kafka credentials this way, in a
    # volume only that service mounts (deploy/compose_security.py), not in its environment.
    model_config = SettingsConfigDict(env_prefix="BANGKOM_", extra="ignore",
                                      env_file=os.environ.get("BANGKOM_ENV_FILE") or None)

    env_file: str = ""

    node: str = Field("salatiga", pattern=r"^[a-z][a-z0-9-]{1,40}$",
                      description="city name, or 'national'")
    service: Literal["enrollment", "sessions", "evaluation"] = "enrollment"
    kafka_bootstrap: str = "127.0.0.1:19092"
    # One principal on one cluster (shared.kafka_auth): SASL/SCRAM-SHA-512 over TLS in the
    # federation; PLAINTEXT only for a broker without listeners of that kind.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ca_file: str = ""  # PEM of the CA that signed the broker certificates
    # Topics this node creates (shared.kafka_admin): event topics keep every record for ever
    # (retention.ms = retention.bytes = -1, shared.topics.topic_configs), since bangkom replay
    # rebuilds the national figures from offset 0; every producer waits for acks from all in-sync
    # replicas, at least kafka_min_insync_replicas of them.
    kafka_replication_factor: int = Field(1, ge=1)
    kafka_min_insync_replicas: int = Field(1, ge=1)
    mongo_url: str = "mongodb://127.0.0.1:27018/"
    mongo_db: str = ""  # default: bangkom_<node>_<service>
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Shared by all nodes of a deployment so a person has one id in every city.
    pseudonym_secret: SecretStr = SecretStr("local-demo-secret-change-me")
    # "sha256hex:role" entries, comma separated: only hashes of bearer tokens are configured.
    token_hashes: str = ""
    # National only: "city:sha256hex" entries, comma separated: the cities' tokens it accepts,
    # each for that city's own person ids and nothing else (services/evaluation/api.py).
    city_token_hashes: str = ""
    # The same entries in a file, one per line or comma separated, read at each request: a
    # city joined while the nation runs (`bangkom city add`) is admitted without a restart.
    city_token_hashes_file: str = ""
    outbox_poll_seconds: float = 0.2
    # How often the outbox gauges count every pending event (a query on the `_pending` index).
    outbox_gauge_seconds: float = 10.0
    # A city service says it is alive this often (shared.heartbeat); the nation calls a city
    # behind when it has heard nothing from it for behind_seconds (a few missed beats).
    heartbeat_seconds: float = Field(15.0, gt=0)
    behind_seconds: float = Field(120.0, gt=0)
    log_level: str = "INFO"
    # During an outage: one summary line per this many seconds (shared.outage), not one per retry.
    outage_summary_seconds: float = Field(60.0, gt=0)
    # Tests only: SIGKILL this process at a named point (see shared.outbox) to prove recovery.
    fault: str = ""

    @field_validator("env_file")
    @classmethod
    def _env_file_readable(cls, value: str) -> str:
        # a missing file would otherwise be skipped in silence, and the service run without
        # its credentials
        if value and not os.access(Path(value), os.R_OK):
            raise ValueError(f"cannot read {value!r} (is the service's security volume mounted?)")
        return value

    @property
    def database(self) -> str:
        return self.mongo_db or f"bangkom_{self.node}_{self.service}".replace("-", "_")
