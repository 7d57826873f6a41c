"""Kafka security as production runs it, for every local broker: TLS, SCRAM, ACLs.

Building blocks, each usable for one broker or for a cluster of several:
- `ensure_ca(root)` and `ensure_broker_cert(root, name)`: a local certificate authority and
  broker certificates in PEM (key + chain in one file, which Kafka reads as `ssl.keystore.type=PEM`).
- `ensure_credentials(root, principals)`: one random SCRAM-SHA-512 password per principal, kept in
  `<root>/credentials.json` (0600). Brokers get them at format time (`scram_format_args`).
- `BrokerSecurity.properties(...)`: the server.properties lines of a SASL_SSL client listener
  (SCRAM-SHA-512), an mTLS controller listener, StandardAuthorizer, no access without an ACL.
- ACLs as data (`Acl`): `city_local_acls`, `national_city_acls`, `national_acls`, `link_acls`,
  applied by the operator principal with the Admin API (`apply_acls`), in one request.
- `client_settings(...)`: the `Settings` fields (or `BANGKOM_KAFKA_*` env) of one principal.

Principals: `<node>-<service>` for a service (`salatiga-enrollment`, `national-evaluation`),
`<city>-link` for the city's MirrorMaker 2 link (on the city broker and the national cluster),
`operator` (a super user: creates and deletes topics, writes ACLs), `broker` (inter-broker
SCRAM) and `CN=bangkom-broker` (brokers and controllers between themselves, by certificate).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from shared.kafka_auth import librdkafka_config
from shared.settings import Settings
from shared.mirror_offsets import offsets_topic
from shared.topics import (HEARTBEAT, NATIONAL, NATIONAL_GROUP, UPLINK_STREAMS,
                           deadletter_topic, topic)

OPERATOR = "operator"
BROKER = "broker"
BROKER_CN = "bangkom-broker"
SCRAM = "SCRAM-SHA-512"


def service_principal(node: str, service: str) -> str:
    return f"{node}-{service}"


def link_principal(city: str) -> str:
    return f"{city}-link"


def national_alias(city: str) -> str:
    """The national cluster as `city`'s link names it in MirrorMaker (deploy/local/mirror.py):
    one alias per city, so each link reaches the nation with its own credentials."""
    return f"{NATIONAL}-{city}"


# -- certificates --------------------------------------------------------------------------------

def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)


def ensure_ca(root: Path) -> Path:
    """`<root>/ca.pem` (certificate, given to every client) and `ca-key.pem` (0600), made once."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = root / "ca.pem", root / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bangkom local CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def ensure_broker_cert(root: Path, name: str = "broker",
                       hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Path:
    """`<root>/<name>.pem`: private key + certificate + CA, signed by `ensure_ca(root)`.

    Subject `CN=bangkom-broker` for every broker: on the controller listener (mTLS) that is the
    principal `User:CN=bangkom-broker`, a super user. Valid for server and client use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    path = root / f"{name}.pem"
    if path.exists():
        return path
    ca_path = ensure_ca(root)
    ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key((root / "ca-key.pem").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h)
           for h in hosts]
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
                   + cert.public_bytes(serialization.Encoding.PEM) + ca_path.read_bytes())
    return path


# -- SCRAM credentials ---------------------------------------------------------------------------

def credentials_file(root: Path) -> Path:
    return root / "credentials.json"


def ensure_credentials(root: Path, principals: list[str] | tuple[str, ...]) -> dict[str, str]:
    """principal -> password; new principals get a random password, known ones keep theirs."""
    path = credentials_file(root)
    known = json.loads(path.read_text()) if path.exists() else {}
    missing = [p for p in principals if p not in known]
    if missing or not path.exists():
        known |= {p: secrets.token_urlsafe(24) for p in missing}
        save_credentials(root, known)
    return known


def save_credentials(root: Path, credentials: dict[str, str]) -> None:
    path = credentials_file(root)
    tmp = path.with_suffix(".tmp")
    _write_private(tmp, json.dumps(credentials, indent=2, sort_keys=True).encode())
    tmp.replace(path)


def scram_format_args(credentials: dict[str, str]) -> list[str]:
    """StorageTool `format` arguments creating every SCRAM user in the bootstrap metadata."""
    args = []
    for user, password in sorted(credentials.items()):
        args += ["--add-scram", f"{SCRAM}=[name={user},password={password}]"]
    return args


# -- broker configuration ------------------------------------------------------------------------

@dataclass(frozen=True)
class BrokerSecurity:
    """What a secured broker needs: its PEM key store, the CA, and the SCRAM users to create."""

    root: Path  # the security directory of the deployment or test (ca.pem, credentials.json)
    keystore: Path
    credentials: dict[str, str]

    @classmethod
    def prepare(cls, root: Path, principals: list[str] | tuple[str, ...],
                broker: str = "broker") -> BrokerSecurity:
        creds = ensure_credentials(root, [OPERATOR, BROKER, *principals])
        return cls(root=root, keystore=ensure_broker_cert(root, broker), credentials=creds)

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    def properties(self, *, listener: str = "SASL_SSL",
                   external: tuple[str, ...] = ()) -> dict[str, str]:
        """server.properties for a broker whose client listener is named `listener`, and
        `external` ones for clients of other hosts (all SASL_SSL, SCRAM-SHA-512), and whose
        controller listener is `CONTROLLER` (mTLS).

        The caller writes `listeners`/`advertised.listeners` with these names; the rest is here."""
        broker_jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                       f'username="{BROKER}" password="{self.credentials[BROKER]}";')
        sasl = (listener, *external)
        return {
            "listener.security.protocol.map": ",".join(
                ["CONTROLLER:SSL", *(f"{name}:SASL_SSL" for name in sasl)]),
            "inter.broker.listener.name": listener,
            "sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            **{f"listener.name.{name.lower()}.scram-sha-512.sasl.jaas.config": broker_jaas
               for name in sasl},
            # Controllers cannot read SCRAM users before the metadata is loaded: between
            # brokers and controllers, certificates (mutual TLS).
            "listener.name.controller.ssl.client.auth": "required",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "ssl.endpoint.identification.algorithm": "https",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:CN={BROKER_CN};User:{BROKER};User:{OPERATOR}",
            # A principal that may not create topics gets an authorization error, not a topic.
            "auto.create.topics.enable": "false",
        }

    def format_args(self) -> list[str]:
        return scram_format_args(self.credentials)

    def settings(self, principal: str, bootstrap: str) -> dict[str, str]:
        return client_settings(principal, self.credentials[principal], bootstrap, self.ca_file)

    def operator(self, bootstrap: str) -> Settings:
        return Settings(**self.settings(OPERATOR, bootstrap))


def client_settings(principal: str, password: str, bootstrap: str, ca_file: Path) -> dict[str, str]:
    """The Settings fields of one principal; `env(...)` turns them into BANGKOM_* variables."""
    return {"kafka_bootstrap": bootstrap, "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_username": principal, "kafka_sasl_password": password,
            "kafka_ca_file": str(ca_file)}


def env(fields: dict[str, str]) -> dict[str, str]:
    return {f"BANGKOM_{key.upper()}": value for key, value in fields.items()}


# -- ACLs as data --------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding: principal (without `User:`), resource, name, pattern, operation."""

    principal: str
    resource: str  # TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID
    name: str
    operation: str  # READ, WRITE, DESCRIBE, CREATE, DESCRIBE_CONFIGS, IDEMPOTENT_WRITE, ...
    pattern: str = "LITERAL"  # or PREFIXED

    def line(self) -> str:
        return "\t".join([f"User:{self.principal}", self.resource, self.pattern, self.name,
                          self.operation])


def _topic(principal: str, name: str, *ops: str, pattern: str = "LITERAL") -> list[Acl]:
    return [Acl(principal, "TOPIC", name, op, pattern) for op in ops]


def _group(principal: str, prefix: str) -> list[Acl]:
    return [Acl(principal, "GROUP", prefix, "READ", "PREFIXED")]


def city_local_acls(city: str) -> list[Acl]:
    """A city's own services on the broker they use (the city's own broker in the federation).

    Every rule is on the city's family `bangkom.<city>.`: describe (so listing shows the city's
    topics, and only those), and each service's own consumer groups by prefix."""
    enrollment, sessions = (service_principal(city, s) for s in ("enrollment", "sessions"))
    own, dead = f"bangkom.{city}.", deadletter_topic(city)
    return [
        # DESCRIBE_CONFIGS: a service checks at start that its topics have their configs
        # (shared.kafka_admin.ensure_node_topics); creating or altering them is the operator's.
        *(a for p in (enrollment, sessions)
          for a in _topic(p, own, "DESCRIBE", "DESCRIBE_CONFIGS", pattern="PREFIXED")),
        # READ of its own stream too: after a crash the outbox relay reads the stream's tail
        # so that an event already published is not published again (shared.outbox)
        *_topic(enrollment, topic(city, "enrollment"), "WRITE", "READ"),
        *_topic(enrollment, topic(city, "sessions"), "READ"),  # the catalogue
        *_topic(enrollment, dead, "WRITE"),
        *_group(enrollment, f"bangkom.{city}.enrollment."),
        *_topic(sessions, topic(city, "sessions"), "WRITE", "READ"),
        *_topic(sessions, topic(city, "enrollment"), "READ"),  # the rosters
        *_topic(sessions, topic(city, "insights"), "READ"),
        *_topic(sessions, dead, "WRITE"),
        *_group(sessions, f"bangkom.{city}.sessions."),
        *(a for p in (enrollment, sessions) for a in _topic(p, topic(city, HEARTBEAT), "WRITE")),
    ]


def national_city_acls(city: str) -> list[Acl]:
    """On the national cluster, everything about one city: its link may write (and describe)
    only `bangkom.<city>.enrollment`/`.sessions`/`.heartbeat` and read only `bangkom.<city>.insights`; the
    evaluation may read those two and the heartbeats, and write the insights. One call per new
    city."""
    link, evaluation = link_principal(city), service_principal(NATIONAL, "evaluation")
    events = [topic(city, s) for s in UPLINK_STREAMS]
    insights = topic(city, "insights")
    return [
        *_topic(link, f"bangkom.{city}.", "DESCRIBE", pattern="PREFIXED"),
        *(a for name in events for a in _topic(link, name, "WRITE")),
        *_topic(link, insights, "READ"),
        *(a for name in events for a in _topic(evaluation, name, "READ", "DESCRIBE")),
        *_topic(evaluation, insights, "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"),
        # what the link has copied, for the records-waiting gauge (services.evaluation.heard)
        *_topic(evaluation, offsets_topic(city), "READ", "DESCRIBE"),
    ]


def national_acls() -> list[Acl]:
    """The evaluation's rules that no city adds: its dead letters and its consumer groups
    (`bangkom.national.evaluation` and the generations and rebuilds named after it)."""
    evaluation = service_principal(NATIONAL, "evaluation")
    return [*_topic(evaluation, deadletter_topic(NATIONAL), "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"),
            *_group(evaluation, NATIONAL_GROUP)]


def link_acls(city: str, *, cluster: str, exactly_once: bool = False) -> list[Acl]:
    """What `<city>-link` (MirrorMaker 2, dedicated mode, aliases `<city>` and `national-<city>`,
    the identity replication policy) needs on one side of the link, `cluster` = "city" or "national",
    beyond the data topics of `national_city_acls` (national side) and the reads/writes below
    (city side).

    MirrorMaker 2 keeps its state in topics on the target of each flow: for the flow
    `<source>-><target>`, `mm2-{offsets,status,configs}.<source>.internal`, the worker group
    `<source>-mm2`, `heartbeats`, `<source>.checkpoints.internal`; and on the source,
    `mm2-offset-syncs.<target>.internal`. It may create those internal topics (and nothing
    else); run it with `sync.topic.acls.enabled=false` and `sync.topic.configs.enabled=false`,
    since creating or altering the data topics stays with the operator."""
    link = link_principal(city)
    there = national_alias(city) if cluster == "city" else city  # the other side's alias
    internal = [f"mm2-offsets.{there}.internal", f"mm2-status.{there}.internal",
                f"mm2-configs.{there}.internal", f"{there}.checkpoints.internal", "heartbeats",
                # the remote heartbeats topic each source connector makes even with heartbeats
                # off (refused, it warned every refresh)
                f"{there}.heartbeats",
                f"mm2-offset-syncs.{there}.internal"]  # the other flow's, here as its source
    acls = [*(a for name in internal for a in _topic(
                link, name, "CREATE", "READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS")),
            Acl(link, "GROUP", f"{there}-mm2", "READ"),
            Acl(link, "CLUSTER", "kafka-cluster", "DESCRIBE")]
    if cluster == "city":  # the source of the events, the target of the insights
        acls += _topic(link, f"bangkom.{city}.", "DESCRIBE", "DESCRIBE_CONFIGS", pattern="PREFIXED")
        acls += [*(a for s in UPLINK_STREAMS for a in _topic(link, topic(city, s), "READ")),
                 *_topic(link, topic(city, "insights"), "WRITE")]
    else:
        acls += _topic(link, f"bangkom.{city}.", "DESCRIBE_CONFIGS", pattern="PREFIXED")
    if exactly_once:  # KIP-618: the tasks' transactional ids start with the worker's group id,
        # and the leader writes the config topic as `connect-cluster-<group id>`
        acls += [Acl(link, "TRANSACTIONAL_ID", f"{there}-mm2", op, "PREFIXED")
                 for op in ("WRITE", "DESCRIBE")]
        acls += [Acl(link, "TRANSACTIONAL_ID", f"connect-cluster-{there}-mm2", op)
                 for op in ("WRITE", "DESCRIBE")]
        acls.append(Acl(link, "CLUSTER", "kafka-cluster", "IDEMPOTENT_WRITE"))
    return acls


def city_principals(city: str) -> list[str]:
    return [service_principal(city, "enrollment"), service_principal(city, "sessions"),
            link_principal(city)]


# -- applying them (the operator, with the Admin API) ------------------------------------------

class AdminToolError(RuntimeError):
    """An admin call was refused or failed; the message names the binding or user."""


def _admin(operator: Settings):
    # librdkafka's Admin API (confluent-kafka, installed with quixstreams): every binding in one
    # request and no JVM, so docker compose's provisioning one-shot can use it too.
    from confluent_kafka.admin import AdminClient

    return AdminClient(librdkafka_config(operator))


def _wait(futures: dict, what: str, timeout: float) -> None:
    failed = []
    for key, future in futures.items():
        try:
            future.result(timeout=timeout)
        except Exception as error:  # noqa: BLE001 - each failure is named below
            failed.append(f"{key}: {error}")
    if failed:
        raise AdminToolError(f"{len(failed)} of {len(futures)} {what} failed:\n  "
                             + "\n  ".join(failed[:20]))


def apply_acls(operator: Settings, acls: list[Acl], timeout: float = 60) -> int:
    """Create every binding (creating one that exists changes nothing); returns how many."""
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                       AclPermissionType, ResourcePatternType, ResourceType)

    unique = sorted(set(acls))
    # librdkafka calls the CLUSTER resource BROKER (type 4 in the protocol)
    bindings = [AclBinding(ResourceType["BROKER" if a.resource == "CLUSTER" else a.resource],
                           a.name, ResourcePatternType[a.pattern], f"User:{a.principal}", "*",
                           AclOperation[a.operation], AclPermissionType.ALLOW)
                for a in unique]
    admin = _admin(operator)  # kept until the results are in: its handle ends with it
    _wait(admin.create_acls(bindings, request_timeout=timeout), "ACL bindings", timeout)
    # The controller has them; the broker's authorizer gets them from the metadata log a
    # moment later, and a client refused meanwhile would not ask again: wait until it lists them.
    wanted = {str(b) for b in bindings}
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    deadline = time.monotonic() + timeout
    while True:
        listed = {str(b) for b in admin.describe_acls(everything, request_timeout=timeout)
                  .result(timeout=timeout)}
        if wanted <= listed:
            return len(unique)
        if time.monotonic() > deadline:
            raise AdminToolError(f"{len(wanted - listed)} ACL bindings created but not listed "
                                 f"by the broker after {timeout:.0f} s")
        time.sleep(0.2)


def set_scram_passwords(operator: Settings, credentials: dict[str, str],
                        timeout: float = 60) -> None:
    """Create or replace SCRAM-SHA-512 users on a running cluster (no broker restart)."""
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    changes = [UserScramCredentialUpsertion(user, info, password.encode())
               for user, password in sorted(credentials.items())]
    admin = _admin(operator)
    _wait(admin.alter_user_scram_credentials(changes, request_timeout=timeout), "SCRAM users",
          timeout)
