"""docker compose's Kafka security, made from the local federation's own pieces.

`bangkom compose-security` (the `security-setup` one-shot) writes the federation's bundle into
the `security` volume: one directory per container, each mounted by that container alone at
/security (a volume `subpath`), so each holds only its own secrets:

- `ca/`: the CA (its key), every principal's password; only the one-shot mounts it.
- `kafka-<node>/`: the broker's key and certificate, its server.properties (the local brokers'
  `server_properties`, SASL_SSL/SCRAM-SHA-512 and mTLS between controller and broker), `start.sh`
  (formats the storage once with the `broker` and `operator` users, then runs the broker) and
  `client.properties` (the broker's own principal, for the health check).
- `operator-<node>/`: `kafka.env`, the operator on that broker, and `users.json`, the passwords
  of the node's principals, for `bangkom compose-provision` (the `kafka-<node>-provision`
  one-shot): SCRAM users, topics with their configs, the ACLs of `broker_acls`, as `bangkom up`.
- `<node>-<service>/kafka.env`: a service's own principal (read through BANGKOM_ENV_FILE).
- `<city>-link/mm2.properties`: the city's MirrorMaker 2 link (`link_properties`), as
  `<city>-link` on both of its sides.

Every run keeps what exists (CA, passwords, certificates, cluster ids) and rewrites the rest.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
from pathlib import Path

import typer

from deploy.local.federation import broker_principals
from deploy.local.infra import server_properties
from deploy.local.security import (BROKER, OPERATOR, BrokerSecurity, city_principals,
                                   client_settings, ensure_broker_cert, ensure_credentials, env,
                                   link_principal, national_alias, service_principal)
from shared.kafka_auth import java_client_properties, render_properties
from shared.settings import Settings
from shared.topics import CITIES, NATIONAL

MOUNT = "/security"  # where each container sees its own directory
PORT, CONTROLLER_PORT, EXTERNAL_PORT = 9092, 9093, 9094
DATA = "/var/lib/kafka/data"
LINK_REST_PORT = 8083  # MirrorMaker's internal REST in the container (dedicated mode)
KAFKA_UID = 1000  # `appuser` of the apache/kafka image
BANGKOM_UID = 10001  # the Dockerfile's user
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:\d{1,5}")


def _private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as out:
        out.write(text)
    tmp.replace(path)


def write_bundle(out: Path, *, national_kafka: str = f"kafka-{NATIONAL}:{PORT}",
                 public_host: str = "localhost", mount: str | None = MOUNT,
                 host=lambda node: f"kafka-{node}", ports=(PORT, CONTROLLER_PORT, EXTERNAL_PORT),
                 data: str = DATA, cities: tuple[str, ...] = CITIES) -> dict[str, Path]:
    """Write every container's directory under `out`; returns them by name.

    `mount` is where a container sees its directory (None: where it is written, for running the
    files on this machine, as the tests do); `host`, `ports` and `data` likewise."""
    ca = out / "ca"
    nodes = (NATIONAL, *cities)
    principals = [OPERATOR, BROKER, service_principal(NATIONAL, "evaluation"),
                  *(p for city in cities for p in city_principals(city))]
    credentials = ensure_credentials(ca, principals)
    dirs: dict[str, Path] = {}

    def directory(name: str) -> tuple[Path, Path]:
        """(where it is written, where its container sees it), with the CA beside."""
        path = out / name
        path.mkdir(parents=True, exist_ok=True)
        (path / "ca.pem").write_bytes((ca / "ca.pem").read_bytes())
        dirs[name] = path
        return path, Path(mount) if mount else path

    def client(principal: str, bootstrap: str, seen: Path) -> Settings:
        return Settings(**client_settings(principal, credentials[principal], bootstrap,
                                          seen / "ca.pem"))

    port, controller_port, external_port = ports
    certs = {node: ensure_broker_cert(ca, f"kafka-{node}", hosts=tuple(dict.fromkeys(
                 (host(node), "localhost", "127.0.0.1", *((public_host,) if node == NATIONAL else ())))))
             for node in nodes}  # the first one makes the CA
    for node in nodes:
        path, seen = directory(f"kafka-{node}")
        _private(path / "broker.pem", certs[node].read_text())
        security = BrokerSecurity(root=seen, keystore=seen / "broker.pem",
                                  credentials={u: credentials[u] for u in (BROKER, OPERATOR)})
        (path / "server.properties").write_text(server_properties(
            port=port, controller_port=controller_port, log_dirs=data, security=security,
            host=host(node), bind="" if mount else "127.0.0.1", client="INTERNAL",
            external=(external_port, public_host) if node == NATIONAL else None,
            writer="bangkom compose-security"))
        cluster = path / "cluster.id"
        if not cluster.exists():  # KRaft's form: 16 random bytes, URL-safe base64
            cluster.write_text(base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode())
        _private(path / "start.sh", _start_script(seen, data, cluster.read_text().strip(),
                                                  security.format_args()), 0o700)
        _private(path / "client.properties", render_properties(java_client_properties(
            client(BROKER, f"localhost:{port}", seen))))

        path, seen = directory(f"operator-{node}")
        _private(path / "kafka.env", _env_lines(client(OPERATOR, f"{host(node)}:{port}", seen)))
        _private(path / "users.json", json.dumps(
            {p: credentials[p] for p in broker_principals(node) if p in credentials}, indent=2))

    for node, service in [(NATIONAL, "evaluation"),
                          *((c, s) for c in cities for s in ("enrollment", "sessions"))]:
        principal = service_principal(node, service)
        path, seen = directory(principal)
        _private(path / "kafka.env", _env_lines(client(principal, f"{host(node)}:{port}", seen)))

    from deploy.local.mirror import LinkSpec, link_properties

    for city in cities:
        path, seen = directory(link_principal(city))
        city_kafka = f"{host(city)}:{port}"
        clients = {city: client(link_principal(city), city_kafka, seen),
                   national_alias(city): client(link_principal(city), national_kafka, seen)}
        _private(path / "mm2.properties", link_properties(
            LinkSpec({city: city_kafka}, national_kafka, clients=clients),
            rest_port=LINK_REST_PORT))
    return dirs


def _env_lines(settings: Settings) -> str:
    fields = client_settings(settings.kafka_sasl_username,
                             settings.kafka_sasl_password.get_secret_value(),
                             settings.kafka_bootstrap, Path(settings.kafka_ca_file))
    return "".join(f"{key}={value}\n" for key, value in sorted(env(fields).items()))


def _start_script(seen: Path, data: str, cluster_id: str, users: list[str]) -> str:
    bin_dir = '"${KAFKA_BIN:-/opt/kafka/bin}"'
    properties = shlex.quote(str(seen / "server.properties"))
    return "\n".join([
        "#!/bin/bash",
        "# Written by bangkom compose-security: format the storage once (with the broker's and",
        "# the operator's SCRAM users; the others are made by the provisioning one-shot), run it.",
        "set -euo pipefail",
        f"if [ ! -f {shlex.quote(data)}/meta.properties ]; then",
        f"  {bin_dir}/kafka-storage.sh format --standalone -t {shlex.quote(cluster_id)} "
        f"-c {properties} {' '.join(map(shlex.quote, users))}",
        "fi",
        f"exec {bin_dir}/kafka-server-start.sh {properties}",
        ""])


def _chown(dirs: dict[str, Path]) -> None:
    for name, path in dirs.items():
        uid = KAFKA_UID if name.startswith("kafka-") or name.endswith("-link") else BANGKOM_UID
        for item in (path, *path.iterdir()):
            os.chown(item, uid, uid)


def compose_security(
    out: Path = typer.Option(Path(MOUNT), "--out", help="the bundle's directory (the volume)"),
    national_kafka: str = typer.Option(f"kafka-{NATIONAL}:{PORT}", "--national-kafka",
                                       help="the national broker as the cities' links reach it"),
    public_host: str = typer.Option("localhost", "--public-host",
                                    help="the national broker's name for other hosts"),
    chown: bool = typer.Option(False, "--chown", help="give each directory to its container's "
                                                      "user (the one-shot runs as root)"),
    new_ca: bool = typer.Option(False, "--new-ca", help="the national office making the bundle "
                                                        "for cities on other hosts"),
) -> None:
    """Make or complete the federation's Kafka security bundle for docker compose; on a city
    host, check the copy the national office handed over and keep it as it is."""
    if not _HOST_PORT.fullmatch(national_kafka):
        raise typer.BadParameter(f"{national_kafka!r} is not host:port", param_hint="--national-kafka")
    if not re.fullmatch(r"[A-Za-z0-9.-]+", public_host):
        raise typer.BadParameter(f"{public_host!r} is not a host name", param_hint="--public-host")
    ca = out / "ca"
    if (ca / "ca.pem").exists() and not (ca / "ca-key.pem").exists():
        # a city host's copy: its passwords are the nation's, nothing here may change them
        copied = sorted(p.name.removeprefix("kafka-") for p in out.glob("kafka-*")
                        if (p / "start.sh").exists())
        if not copied:
            typer.echo(f"error: {out} has a CA but no broker directory: copy the city's part of "
                       "the bundle from the national office (docs/OPERATIONS.md)", err=True)
            raise typer.Exit(2)
        typer.echo(f"bundle in {out}: the national office's copy for {', '.join(copied)}, kept")
        return
    city_host = national_kafka != f"kafka-{NATIONAL}:{PORT}"
    if city_host and not (ca / "ca.pem").exists() and not new_ca:
        typer.echo(f"error: no bundle in {out}, and the nation is {national_kafka} (another "
                   "host): a city's bundle comes from the national office, which makes it with "
                   "--new-ca (docs/OPERATIONS.md); a CA made here would not be trusted there",
                   err=True)
        raise typer.Exit(2)
    dirs = write_bundle(out, national_kafka=national_kafka, public_host=public_host)
    if chown:
        _chown(dirs)
    typer.echo(f"bundle in {out}: {len(dirs)} directories (CA, brokers, operators, services, "
               f"links); the national broker is {national_kafka} to the links")


def compose_provision(
    node: str = typer.Option(..., "--node", help="the broker's node: national or a city"),
    users: Path = typer.Option(Path(MOUNT) / "users.json", "--users"),
    wait: float = typer.Option(180.0, "--wait", help="seconds to wait for the broker"),
) -> None:
    """As the operator (BANGKOM_KAFKA_* / BANGKOM_ENV_FILE): the node's SCRAM users, topics and
    ACLs on its broker, as `bangkom up` makes them. Safe to run again."""
    import asyncio
    import time

    from deploy.local.federation import broker_acls, broker_topics
    from deploy.local.security import apply_acls, set_scram_passwords
    from shared.kafka_admin import ensure_topics

    if node != NATIONAL and node not in CITIES:
        raise typer.BadParameter(f"{node!r}: not national nor one of {', '.join(CITIES)}",
                                 param_hint="--node")
    operator = Settings()
    deadline = time.monotonic() + wait
    while True:
        try:
            set_scram_passwords(operator, json.loads(users.read_text()), timeout=15)
            break
        except Exception as error:  # noqa: BLE001 - the broker may still be booting
            if time.monotonic() > deadline:
                typer.echo(f"error: {operator.kafka_bootstrap} as {operator.kafka_sasl_username}: "
                           f"{error}", err=True)
                raise typer.Exit(1) from None
            time.sleep(3)
    for line in asyncio.run(ensure_topics(operator, broker_topics(node))):
        typer.echo(line)
    count = apply_acls(operator, broker_acls(node))
    typer.echo(f"{node}: SCRAM users, topics and {count} ACLs on {operator.kafka_bootstrap}")
