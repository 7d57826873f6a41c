"""How every Kafka client of a node authenticates: one place for aiokafka, FastStream and the
Java tools (MirrorMaker 2, the Kafka CLI).

The settings (`BANGKOM_KAFKA_SECURITY_PROTOCOL`, `BANGKOM_KAFKA_SASL_USERNAME`,
`BANGKOM_KAFKA_SASL_PASSWORD`, `BANGKOM_KAFKA_CA_FILE`) describe one principal on one
cluster; `client_kwargs` turns them into the keyword arguments of any aiokafka client,
`java_client_properties` into the `security.protocol`/`sasl.jaas.config`/PEM truststore lines a
Java client reads, optionally with a MirrorMaker 2 cluster-alias prefix, and `librdkafka_config`
into the configuration of a confluent-kafka (librdkafka) client: the operator's admin calls.
"""

from __future__ import annotations

import functools
import ssl
import time
from typing import Any

from aiokafka.helpers import create_ssl_context

from shared.settings import Settings

SCRAM = "SCRAM-SHA-512"


class KafkaAuthError(ValueError):
    """The settings cannot make an authenticated client; the message names the setting."""


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """`bootstrap_servers` and the security arguments of AIOKafkaProducer/Consumer/AdminClient."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap}
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return kwargs
    _require(settings)
    kwargs.update(security_protocol=protocol, sasl_mechanism=SCRAM,
                  sasl_plain_username=settings.kafka_sasl_username,
                  sasl_plain_password=settings.kafka_sasl_password.get_secret_value())
    if protocol == "SASL_SSL":
        kwargs["ssl_context"] = _ssl_context(settings.kafka_ca_file)
    return kwargs


def broker_kwargs(settings: Settings) -> dict[str, Any]:
    """The same, as FastStream's KafkaBroker takes it: bootstrap servers and a `security`."""
    from faststream.security import SASLScram512

    kwargs = client_kwargs(settings)
    bootstrap = kwargs.pop("bootstrap_servers")
    if "sasl_plain_username" not in kwargs:
        return {"bootstrap_servers": bootstrap}
    return {"bootstrap_servers": bootstrap, "security": SASLScram512(
        username=kwargs["sasl_plain_username"], password=kwargs["sasl_plain_password"],
        ssl_context=kwargs.get("ssl_context"), use_ssl="ssl_context" in kwargs)}


def _require(settings: Settings) -> None:
    """What every secured client needs, named by setting (the CA file is read where used:
    a configuration may be written for another machine)."""
    protocol = settings.kafka_security_protocol
    if not settings.kafka_sasl_username or not settings.kafka_sasl_password.get_secret_value():
        raise KafkaAuthError(f"kafka_sasl_username/kafka_sasl_password: required with "
                             f"kafka_security_protocol={protocol}")
    if protocol == "SASL_SSL" and not settings.kafka_ca_file:
        raise KafkaAuthError("kafka_ca_file: required with kafka_security_protocol=SASL_SSL "
                             "(the PEM file of the CA that signed the broker certificates)")


@functools.cache
def _ssl_context(ca_file: str) -> ssl.SSLContext:
    # One context per CA file and process: it is read once, and verifies the broker's name.
    if not ca_file:
        raise KafkaAuthError("kafka_ca_file: required with kafka_security_protocol=SASL_SSL "
                             "(the PEM file of the CA that signed the broker certificates)")
    try:
        return create_ssl_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaAuthError(f"kafka_ca_file: cannot load {ca_file!r} as a PEM CA: {exc}") from exc


def java_client_properties(settings: Settings, prefix: str = "") -> dict[str, str]:
    """What a Java client (Kafka CLI `--command-config`, MirrorMaker 2 with `prefix="<alias>."`)
    needs to connect as the same principal: bootstrap, protocol, SCRAM JAAS line, PEM CA."""
    props = {"bootstrap.servers": settings.kafka_bootstrap,
             "security.protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol != "PLAINTEXT":
        _require(settings)
        user = _jaas_quote(settings.kafka_sasl_username)
        password = _jaas_quote(settings.kafka_sasl_password.get_secret_value())
        props |= {"sasl.mechanism": SCRAM, "sasl.jaas.config":
                  "org.apache.kafka.common.security.scram.ScramLoginModule required "
                  f"username={user} password={password};"}
    if settings.kafka_security_protocol == "SASL_SSL":
        props |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": settings.kafka_ca_file}
    return {f"{prefix}{key}": value for key, value in props.items()}


def librdkafka_config(settings: Settings) -> dict[str, str]:
    """The same principal for a librdkafka client (confluent_kafka.admin.AdminClient)."""
    if settings.kafka_security_protocol != "PLAINTEXT":
        _require(settings)
    config = {"bootstrap.servers": settings.kafka_bootstrap,
              "security.protocol": settings.kafka_security_protocol.lower()}
    if settings.kafka_security_protocol != "PLAINTEXT":
        config |= {"sasl.mechanism": SCRAM, "sasl.username": settings.kafka_sasl_username,
                   "sasl.password": settings.kafka_sasl_password.get_secret_value()}
    if settings.kafka_security_protocol == "SASL_SSL":
        config |= {"ssl.ca.location": settings.kafka_ca_file,
                   "ssl.endpoint.identification.algorithm": "https"}
    return config


def render_properties(props: dict[str, str]) -> str:
    """`key=value` lines; the caller writes them to a file only its owner can read."""
    return "".join(f"{key}={_escape(value)}\n" for key, value in sorted(props.items()))


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _escape(value: str) -> str:
    # java.util.Properties: a backslash escapes; ':' and '=' in values are fine after the first.
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def principal(settings: Settings) -> str:
    """Who this node is on Kafka, for log lines ("User:salatiga-enrollment")."""
    return f"User:{settings.kafka_sasl_username}" if settings.kafka_sasl_username else "ANONYMOUS"


class Refusals:
    """The newest time Kafka refused this process (authentication or authorization) and what
    it said, for /health: a refusal does not heal by retrying (a password or an ACL must
    change), so the service says it is failing, and why, while refusals keep coming."""

    WINDOW_SECONDS = 60.0

    def __init__(self) -> None:
        self.last: tuple[float, str] | None = None

    def note(self, what: str, now: float | None = None) -> None:
        self.last = (time.monotonic() if now is None else now, what)

    def current(self, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        if self.last is not None and now - self.last[0] <= self.WINDOW_SECONDS:
            return self.last[1]
        return None


REFUSALS = Refusals()  # one per process: its Kafka clients share the principal
