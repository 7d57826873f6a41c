"""The local federation: a Kafka broker per node linked by MirrorMaker 2, PostgreSQL under
FerretDB, and nine services on fixed ports.

Four cities each run `enrollment` and `sessions`; the nation runs `evaluation`. What was started
is recorded in `<repo>/.run/state.json` (per component: its pid, which leads its session, and the
kernel start time), so `bangkom down` and `bangkom status` work from any shell. Bearer tokens are
made at the first `up` and kept in `.run/tokens.json` for the demo; the services are given only
their sha256 hashes.

Healing: every component is one server process leading its own session. `up` starts exactly
what is down, after ending the checkout's own leftovers (the orphans of a component whose server
died, and any process under this run directory holding one of its ports); a port held by any
other program stops it, naming that program. `BANGKOM_RUN_DIR` and `BANGKOM_PORT_OFFSET` run a
second federation beside the first (the healing tests do).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from deploy.local.infra import (DB_BACKEND, FerretDB, KafkaServer, list_topics,
                                ping_mongo)
from deploy.local.mirror import LinkSpec, MirrorMaker
from deploy.local.paths import REPO_ROOT, run_dir
from deploy.local.process import (
    ManagedProcess, StartupError, all_pids, command_line, end_processes, is_alive, members,
    port_holders, port_open, run_coroutine, stop_group, working_dir,
)
from deploy.local.security import (BrokerSecurity, apply_acls, city_local_acls, city_principals,
                                   link_acls, set_scram_passwords,
                                   link_principal, national_acls, national_alias,
                                   national_city_acls, service_principal)
from shared.http import hash_token
from shared.kafka_admin import ensure_topics
from shared.settings import Settings
from shared.topics import (CITIES, CITY_STREAMS, NATIONAL, PARTITIONS, UPLINK_STREAMS,
                           deadletter_topic, topic)

KAFKA_PORT = 19092  # the national broker (the only one with --single-broker)
KAFKA_CONTROLLER_PORT = 19093
CITY_BROKER_STEP = 100  # city n's broker on KAFKA_PORT + 100 n: salatiga 19192, ...
MIRROR_REST_PORT = 19098  # MirrorMaker's internal REST listener (dedicated mode)
NATIONAL_HEAP, CITY_HEAP = "448m", "320m"  # fixed small heaps: five JVMs share two cores
FERRETDB_PORT = 27018
POSTGRES_PORT = 15432
PROMETHEUS_PORT = 9090
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
ROLES = ("operator", "viewer")


CITIES_FILE = "cities.json"  # the run directory's cities: the demo's four until `city add`
CITY_TOKEN_HASHES_FILE = "city-token-hashes"
CITY_SLUG = re.compile(r"[a-z][a-z0-9-]{1,40}")  # Settings.node's pattern
MAX_CITIES = 50  # city n's ports: 80n1, 80n2 and KAFKA_PORT + 100 n (19092 + 100 n + 1 < 25000)


def demo_city_name(slug: str) -> str:
    return f"Kota {slug.replace('-', ' ').title()}"


def city_problem(slug: str, existing: tuple[str, ...]) -> str | None:
    """Why `slug` cannot be a new city, or None."""
    if not CITY_SLUG.fullmatch(slug):
        return (f"city {slug!r}: not a valid name (2 to 41 characters: lower-case letters, "
                "digits and '-', starting with a letter; e.g. 'kota-batu')")
    if slug == NATIONAL:
        return f"city {slug!r}: '{NATIONAL}' is the national node, not a city"
    if slug in existing:
        return f"city {slug!r}: already in this federation"
    if len(existing) >= MAX_CITIES:
        return f"city {slug!r}: this local federation has room for {MAX_CITIES} cities"
    return None


class CityError(ValueError):
    """`city add` refused: the message says why; nothing was changed."""


def port_offset() -> int:
    """`BANGKOM_PORT_OFFSET`: added to every port of the federation (0 by default)."""
    return int(os.environ.get("BANGKOM_PORT_OFFSET", "0"))


@dataclass(frozen=True)
class ServiceSpec:
    node: str
    service: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.node}-{self.service}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def layout(offset: int = 0, cities: tuple[str, ...] = CITIES) -> list[ServiceSpec]:
    specs = [ServiceSpec(NATIONAL, "evaluation", 8001 + offset)]
    for number, city in enumerate(cities, start=1):  # salatiga 801x, sawahlunto 802x, ...
        specs += [ServiceSpec(city, "enrollment", 8000 + offset + 10 * number + 1),
                  ServiceSpec(city, "sessions", 8000 + offset + 10 * number + 2)]
    return specs



def federation_topics(cities: tuple[str, ...] = CITIES) -> list[str]:
    """Every topic of the federation on one broker (`--single-broker`, the test fixtures)."""
    streams = (*UPLINK_STREAMS, "insights")
    return [*(topic(city, s) for city in cities for s in streams),
            *(deadletter_topic(city) for city in cities), deadletter_topic(NATIONAL)]


def broker_topics(node: str, cities: tuple[str, ...] = CITIES) -> list[str]:
    """The topics on one node's own broker: a city's streams and dead letters; at the nation,
    the mirrored copies of every city's streams, the insights it sends, its dead letters."""
    streams = (*UPLINK_STREAMS, "insights")
    if node == NATIONAL:
        return [*(topic(city, s) for city in cities for s in streams), deadletter_topic(NATIONAL)]
    return [*(topic(node, s) for s in streams), deadletter_topic(node)]


def broker_acls(node: str, cities: tuple[str, ...] = CITIES) -> list:
    """The rules of `node`'s own broker in the federation (docker compose's too): a city's
    services and its link there; at the nation, every city's link and the evaluation."""
    if node == NATIONAL:
        return [*(a for city in cities for a in (
                    *national_city_acls(city),
                    *link_acls(city, cluster="national", exactly_once=True))),
                *national_acls()]
    return [*city_local_acls(node), *link_acls(node, cluster="city")]


def broker_principals(node: str, cities: tuple[str, ...] = CITIES) -> list[str]:
    """The SCRAM users of `node`'s own broker besides the operator and the brokers."""
    if node == NATIONAL:
        return [service_principal(NATIONAL, "evaluation"), *map(link_principal, cities)]
    return city_principals(node)


# -- tokens --------------------------------------------------------------------------------------

def new_tokens(nodes: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`bkm.<node>.<role>.<random>` for each node and role."""
    return {node: {role: f"bkm.{node}.{role}.{secrets.token_hex(16)}" for role in ROLES}
            for node in nodes}


def token_hashes(tokens: dict[str, str]) -> str:
    """The `BANGKOM_TOKEN_HASHES` value for one node: `sha256hex:role`, comma separated."""
    return ",".join(f"{hash_token(token)}:{role}" for role, token in tokens.items())


def city_token_hashes(tokens: dict[str, dict[str, str]]) -> str:
    """The nation's `BANGKOM_CITY_TOKEN_HASHES`: `city:sha256hex` for every city token."""
    return ",".join(f"{node}:{hash_token(token)}" for node, roles in tokens.items()
                    if node != NATIONAL for token in roles.values())


# -- one service -----------------------------------------------------------------------------------

class ServiceProcess(ManagedProcess):
    """One service under uvicorn. `kill()` is a crash (SIGKILL), `stop()` a clean stop (SIGTERM),
    and `start()` may be called again afterwards: the log file is appended to."""

    stop_timeout = 15.0

    def __init__(self, *, node: str, service: str, port: int, kafka_bootstrap: str,
                 mongo_url: str, token_hashes: str = "", pseudonym_secret: str,
                 log_dir: Path, extra_env: dict[str, str] | None = None,
                 die_with_parent: bool = False) -> None:
        self.node, self.service, self.port = node, service, port
        self.name = f"{node}-{service}"
        self.env = {
            "BANGKOM_NODE": node,
            "BANGKOM_SERVICE": service,
            "BANGKOM_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "BANGKOM_MONGO_URL": mongo_url,
            "BANGKOM_TOKEN_HASHES": token_hashes,
            "BANGKOM_PSEUDONYM_SECRET": pseudonym_secret,
            "BANGKOM_HTTP_HOST": "127.0.0.1",
            "BANGKOM_HTTP_PORT": str(port),
            **{_env_name(key): str(value) for key, value in (extra_env or {}).items()},
        }
        if service == "evaluation":  # the nation never turns ids back into NIPs: no key
            del self.env["BANGKOM_PSEUDONYM_SECRET"]
        super().__init__(log_path=log_dir / f"{self.name}.log", die_with_parent=die_with_parent)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def module(self) -> str:
        return f"services.{self.service}.app"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "--factory", f"{self.module}:create_app",
                "--host", "127.0.0.1", "--port", str(self.port)]

    def environment(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}

    def cwd(self) -> Path:
        # The run directory, not the checkout: a process working there is the checkout's own.
        self.log_path.parent.parent.mkdir(parents=True, exist_ok=True)
        return self.log_path.parent.parent

    def start(self, timeout: float | None = None) -> None:
        require_service_module(self.service)
        super().start(timeout)

    def probe(self) -> str | None:
        return http_health(self.url)


def _env_name(key: str) -> str:
    """`outbox_poll_seconds` and `BANGKOM_OUTBOX_POLL_SECONDS` name the same setting."""
    key = key.upper()
    return key if key.startswith("BANGKOM_") else f"BANGKOM_{key}"


def require_service_module(service: str) -> None:
    module = f"services.{service}.app"
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise StartupError(f"module {module} is missing (services/{service}/app.py with "
                           f"create_app): the {service} service cannot start")


class PrometheusServer(ManagedProcess):
    """Debian's Prometheus scraping the nine services (deploy/prometheus/prometheus.yml)."""

    name = "prometheus"

    def __init__(self, *, port: int, data_dir: Path, log_dir: Path,
                 config: Path = PROMETHEUS_CONFIG) -> None:
        self.port, self.data_dir, self.config = port, data_dir, config
        super().__init__(log_path=log_dir / "prometheus.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def available() -> bool:
        return shutil.which("prometheus") is not None and PROMETHEUS_CONFIG.exists()

    def command(self) -> list[str]:
        return ["prometheus", f"--config.file={self.config}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}"]

    def probe(self) -> str | None:
        return http_health(self.url, "/-/ready")


def http_health(url: str, path: str = "/health") -> str | None:
    try:
        response = httpx.get(f"{url}{path}", timeout=2.0)
    except httpx.HTTPError as error:
        return f"GET {path} failed: {error!r}"
    if response.status_code == 200:
        return None
    try:  # a service's own words: its database down, or Kafka refusing its principal
        said = response.json()
        reasons = [f"{k} {said[k]}" for k in ("database", "kafka")
                   if said.get(k) not in (None, "up", "ok")]
    except (ValueError, AttributeError):
        reasons = []
    return f"GET {path} answered {response.status_code}" + (
        f": {'; '.join(reasons)}" if reasons else "")


def kafka_health(kafka: Settings | str) -> str | None:
    bootstrap = kafka.kafka_bootstrap if isinstance(kafka, Settings) else kafka
    host, _, port = bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        return "port closed"
    try:
        run_coroutine(lambda: list_topics(kafka), timeout=8)
    except Exception as error:  # noqa: BLE001 - reported as the health detail
        return f"admin list_topics failed: {error!r}"
    return None


# -- run state -------------------------------------------------------------------------------------

@dataclass
class RunState:
    """What `up` started, readable by any later `bangkom` command."""

    root: Path = field(default_factory=lambda: Path(os.environ.get("BANGKOM_RUN_DIR") or run_dir()))

    @property
    def path(self) -> Path:
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def city_entries(self) -> list[dict[str, str]]:
        """[{"slug", "name"}] in the order their ports were given (the demo's four by default)."""
        try:
            return json.loads((self.root / CITIES_FILE).read_text())["cities"]
        except FileNotFoundError:
            return [{"slug": city, "name": demo_city_name(city)} for city in CITIES]

    def cities(self) -> tuple[str, ...]:
        return tuple(entry["slug"] for entry in self.city_entries())

    def set_cities(self, entries: list[dict[str, str]]) -> None:
        self.write_secret(CITIES_FILE, json.dumps({"cities": entries}, indent=2) + "\n")

    def components(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self.path.read_text())["components"]
        except FileNotFoundError:
            return {}

    def record(self, name: str, proc: ManagedProcess, address: str) -> None:
        components = self.components()
        # `pid` is the server itself and its session id (it leads the session of everything it
        # starts); `cwd`, when set, claims the processes working there too (PostgreSQL's).
        components[name] = {"pid": proc.pid, "started": proc.started,
                            "address": address, "cwd": proc.owned_cwd,
                            "stop_timeout": proc.stop_timeout,
                            "stop_signal": proc.stop_signal.name, "log": str(proc.log_path)}
        self._write(components)

    def forget(self, name: str) -> None:
        components = self.components()
        components.pop(name, None)
        self._write(components)

    def alive(self, name: str) -> bool:
        entry = self.components().get(name)
        return bool(entry) and is_alive(entry["pid"], entry["started"])

    def processes(self, name: str) -> list[int]:
        """The live processes of a recorded component, its server's orphans included."""
        entry = self.components().get(name)
        return members(entry["pid"], entry["started"], entry.get("cwd")) if entry else []

    def owns(self, pid: int) -> bool:
        """A process of this checkout's federation: its command line names the run directory,
        or it works there."""
        root = str(self.root.resolve())
        cwd = working_dir(pid)
        return root + "/" in command_line(pid) + " " or cwd == root or cwd.startswith(root + "/")

    def own_processes(self) -> list[int]:
        return [pid for pid in all_pids() if pid != os.getpid() and self.owns(pid)]

    def _write(self, components: dict[str, dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"components": components}, indent=2))
        tmp.replace(self.path)  # atomic: a concurrent `status` never reads half a file

    def topology(self) -> str | None:
        """"federated" or "single-broker", as the last `up` ran it; None before any."""
        try:
            return (self.root / "topology").read_text().strip() or None
        except FileNotFoundError:
            return None

    def set_topology(self, topology: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "topology").write_text(topology + "\n")

    def write_secret(self, name: str, text: str) -> Path:
        """Replace `name` under .run at once with `text`, readable only by its owner."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(text)
        tmp.replace(path)
        return path

    def secret_json(self, name: str, make) -> Any:
        """A JSON file under .run made once, readable only by its owner."""
        path = self.root / name
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                json.dump(make(), out, indent=2)
        return json.loads(path.read_text())


# -- the whole federation --------------------------------------------------------------------------

class Federation:
    """The local federation. By default every node has its own Kafka broker and one
    MirrorMaker 2 process links the cities with the nation; `single_broker` runs one shared
    broker instead (fast tests). The choice is kept in the run state: a later `up` (after a
    crash) brings back the same topology."""

    def __init__(self, console: Console | None = None, state: RunState | None = None,
                 offset: int | None = None, single_broker: bool | None = None,
                 secure: bool | None = None) -> None:
        self.console = console or Console()
        self.state = state or RunState()
        self.offset = port_offset() if offset is None else offset
        self.cities = self.state.cities()
        self.services = layout(self.offset, self.cities)
        recorded = self.state.topology()
        if single_broker is None:
            single_broker = recorded == "single-broker"
        self.single_broker = single_broker
        # Security (SASL_SSL/SCRAM, least-privilege ACLs) is the default, kept in the run state
        # like the topology: its CA and credentials live in .run/security. A run directory whose
        # brokers were made plaintext (before it was the default) stays so until `down --wipe`:
        # those brokers have no SCRAM users.
        if secure is None:
            secure = self.security_dir.exists() or not self.formatted()
        self.secure = secure
        self._security: BrokerSecurity | None = None
        self.kafka_port = KAFKA_PORT + self.offset
        self.kafka_bootstrap = f"127.0.0.1:{self.kafka_port}"  # the nation's
        self.postgres_port = POSTGRES_PORT + self.offset
        self.mongo_url = f"mongodb://127.0.0.1:{FERRETDB_PORT + self.offset}/"
        self.prometheus_port = PROMETHEUS_PORT + self.offset
        self.mirror_port = MIRROR_REST_PORT + self.offset
        self._mirror: MirrorMaker | None = None  # started by `up`, waited for by `wait_links`

    @property
    def security_dir(self) -> Path:
        return self.state.root / "security"

    @property
    def security(self) -> BrokerSecurity | None:
        """The CA, the broker certificate and every principal's password (made once)."""
        if self.secure and self._security is None:
            principals = [service_principal(s.node, s.service) for s in self.services]
            if not self.single_broker:
                principals += [link_principal(city) for city in self.cities]
            self._security = BrokerSecurity.prepare(self.security_dir, principals)
        return self._security

    def formatted(self) -> bool:
        """Whether this run directory's brokers exist already (made by an earlier `up`)."""
        return any((self.state.root / self._broker_dir(n) / "data" / "meta.properties").exists()
                   for n in self.brokers())

    def _broker_dir(self, node: str) -> str:
        return "kafka" if self.single_broker else self.broker_name(node)

    def kafka_admin(self, node: str) -> Settings | str:
        """How this tool reaches a node's broker: as the operator when it is secured."""
        security = self.security
        return security.operator(self.bootstrap(node)) if security else self.bootstrap(node)

    def acls(self, node: str) -> list:
        """The rules of `node`'s broker (on the one shared broker: every node's)."""
        if self.single_broker:
            return [*(a for city in self.cities
                      for a in (*city_local_acls(city), *national_city_acls(city))),
                    *national_acls()]
        return broker_acls(node, self.cities)

    @property
    def topology(self) -> str:
        return "single-broker" if self.single_broker else "federated"

    def broker_name(self, node: str) -> str:
        return "kafka" if self.single_broker else f"kafka-{node}"

    def broker_port(self, node: str) -> int:
        if self.single_broker or node == NATIONAL:
            return self.kafka_port
        return self.kafka_port + CITY_BROKER_STEP * (self.cities.index(node) + 1)

    def bootstrap(self, node: str) -> str:
        """The broker a node's services are given: its own (or the one shared broker)."""
        return f"127.0.0.1:{self.broker_port(node)}"

    def brokers(self) -> list[str]:
        """The nodes that run a broker (the nation first)."""
        return [NATIONAL] if self.single_broker else [NATIONAL, *self.cities]

    def ports(self) -> dict[str, list[int]]:
        """Each component's ports."""
        ports = {self.broker_name(node): [self.broker_port(node), self.broker_port(node) + 1]
                 for node in self.brokers()}
        if not self.single_broker:
            ports["mirrormaker"] = [self.mirror_port]
        return {**ports, "postgres": [self.postgres_port],
                "ferretdb": [FERRETDB_PORT + self.offset],
                **{spec.name: [spec.port] for spec in self.services},
                "prometheus": [self.prometheus_port]}

    def tokens(self) -> dict[str, dict[str, str]]:
        return self.state.secret_json("tokens.json", lambda: new_tokens([NATIONAL, *self.cities]))

    def pseudonym_secret(self) -> str:
        # One secret for every node, so a person has the same id in every city.
        return self.state.secret_json(
            "secret.json", lambda: {"pseudonym_secret": secrets.token_hex(32)})["pseudonym_secret"]

    def up(self) -> None:
        for service in sorted({spec.service for spec in self.services}):
            require_service_module(service)
        recorded = self.state.topology()
        if recorded and recorded != self.topology and any(
                self.state.processes(name) for name in self.state.components()):
            raise StartupError(f"the federation runs {recorded}; `bangkom down` first to run "
                               f"it {self.topology}")
        if self.secure and self.formatted() and not self.security_dir.exists():
            # its brokers were formatted without the SCRAM users: they would refuse everyone
            raise StartupError("this run directory's brokers were made PLAINTEXT; "
                               "`bangkom down --wipe` first to secure them")
        if not self.secure and self.security_dir.exists():
            raise StartupError("this run directory's brokers are secured; "
                               "`bangkom down --wipe` first to run them PLAINTEXT")
        if not self.secure:
            self.console.print("[yellow]note:[/] the brokers listen PLAINTEXT, with no "
                               "authentication and no ACLs (not for a real network)")
        self.clear_leftovers()
        self.state.set_topology(self.topology)
        started: list[str] = []
        try:
            self._up(started)
        except BaseException:
            # Leave nothing half-started behind; the logs stay in .run/logs.
            for name in reversed(started):
                self._stop(name)
            raise

    def add_city(self, slug: str, name: str = "") -> None:
        """Join a new city to the running federation: its node configuration, credentials
        (its services', its link's, a SCRAM user for the link at the nation), tokens, broker,
        topics on it and at the nation, ACLs on both, its link (MirrorMaker restarts with one
        more city: its copies are exactly once, a restart loses and repeats nothing) and its
        services. The evaluation finds the city's topics by pattern: it is not restarted.
        Bad input raises CityError and changes nothing; a failure while starting stops what
        was started and takes the city out of the configuration again."""
        problem = city_problem(slug, self.cities)
        if problem is None and name and not (2 <= len(name) <= 80 and name.isprintable()):
            problem = f"--name {name!r}: 2 to 80 printable characters"
        if problem is None and self.single_broker:
            problem = "this run directory runs --single-broker: a city joins the federated topology"
        if problem is None and not self.state.alive(self.broker_name(NATIONAL)):
            problem = "the federation is not running: `bangkom up` first"
        if problem:
            raise CityError(problem)
        entries = self.state.city_entries()
        self.state.set_cities([*entries, {"slug": slug, "name": name or demo_city_name(slug)}])
        self.cities = self.state.cities()
        self.services = layout(self.offset, self.cities)
        self._security = None  # the new principals get their passwords
        try:
            own = {self.broker_name(slug), f"{slug}-enrollment", f"{slug}-sessions"}
            busy = [f"{port} ({component})" for component, ports in self.ports().items()
                    if component in own for port in ports if port_holders(port)]
            if busy:
                raise CityError(f"city {slug!r}: its ports are taken: {', '.join(busy)}")
            tokens = self.tokens()
            if slug not in tokens:
                tokens |= new_tokens([slug])
                self.state.write_secret("tokens.json", json.dumps(tokens, indent=2))
                self.write_city_token_hashes()
            if self.security is not None:  # the nation's broker was formatted without its link
                link = link_principal(slug)
                set_scram_passwords(self.kafka_admin(NATIONAL),
                                    {link: self.security.credentials[link]})
            self._stop("mirrormaker")  # started again by up() with the new city's link
            self.up()
            self._reload_prometheus()
        except BaseException:
            self.state.set_cities(entries)
            self.cities = self.state.cities()
            self.services = layout(self.offset, self.cities)
            raise

    def clear_leftovers(self) -> list[int]:
        """End this checkout's leftovers: the orphans of each recorded component whose server
        died, then any process of the checkout holding a port of a component that is down.
        A port held by another program raises StartupError naming it, before anything is
        touched. Returns the pids ended."""
        foreign, leftovers = [], []
        ports = self.ports()
        for name in {**ports, **self.state.components()}:
            if self.state.alive(name):
                continue
            leftovers += self.state.processes(name)
            for port in ports.get(name, ()):
                for pid in port_holders(port):
                    if self.state.owns(pid):
                        leftovers.append(pid)
                    else:
                        foreign.append(f"port {port} ({name}) is held by pid {pid}: "
                                       f"{command_line(pid)[:200] or '?'}")
        if foreign:
            raise StartupError("another program holds this federation's ports (nothing was "
                               "touched; stop it, or set BANGKOM_PORT_OFFSET):\n  "
                               + "\n  ".join(foreign))
        leftovers = sorted(set(leftovers))
        if leftovers:
            self.console.print(f"[yellow]note:[/] ending {len(leftovers)} leftover process(es) "
                               f"of this checkout: {', '.join(map(str, leftovers))}")
            stuck = end_processes(leftovers, timeout=10.0)
            if stuck:
                raise StartupError(f"leftover processes did not end after SIGKILL: {stuck}")
        return leftovers

    def _up(self, started: list[str]) -> None:
        root = self.state.root
        # The brokers boot in parallel (a JVM spends its first seconds on one core), and
        # PostgreSQL and FerretDB meanwhile.
        brokers = []
        for node in self.brokers():
            name = self.broker_name(node)
            if self.state.alive(name):
                continue
            port = self.broker_port(node)
            broker = KafkaServer(
                port=port, controller_port=port + 1, name=name,
                data_dir=root / self._broker_dir(node), log_dir=self.state.logs,
                heap=NATIONAL_HEAP if node == NATIONAL or self.single_broker else CITY_HEAP,
                security=self.security)
            self._spawn(broker, name, broker.bootstrap, started)
            brokers.append((node, broker))
        ferret = FerretDB(port=FERRETDB_PORT + self.offset, data_dir=root / "ferretdb",
                          log_dir=self.state.logs, pg_port=self.postgres_port)
        if ferret.postgres is not None and not self.state.alive("postgres"):
            self._start(ferret.postgres, "postgres", ferret.postgres.address, started)
        if not self.state.alive("ferretdb"):
            self._start(ferret, "ferretdb", self.mongo_url, started)
        for node, broker in brokers:
            with self.console.status(f"Waiting for {broker.name} on {broker.bootstrap}"):
                try:
                    broker.wait_ready(timeout=180)
                except StartupError as error:
                    raise StartupError(f"the broker of {node} did not start (log: "
                                       f"{broker.server_log}):\n{error}") from None
            self.console.print(f"[green]✓[/] {broker.name} on {broker.bootstrap}")
        with self.console.status("Creating topics"):
            for node in self.brokers():
                names = (federation_topics(self.cities) if self.single_broker
                         else broker_topics(node, self.cities))
                run_coroutine(lambda n=node, t=names: ensure_topics(self.kafka_admin(n), t,
                                                                    PARTITIONS), timeout=60)
        if self.security is not None:
            with self.console.status("Writing the ACLs"):
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.brokers())) as pool:
                    count = sum(pool.map(self._apply_acls, self.brokers()))
            self.console.print(f"[green]✓[/] SASL_SSL/SCRAM-SHA-512 on, {count} ACLs "
                               f"(no access without one)")
        mirror = None
        if not self.single_broker and not self.state.alive("mirrormaker"):
            mirror = MirrorMaker(
                LinkSpec({city: self.bootstrap(city) for city in self.cities}, self.kafka_bootstrap,
                         clients=self._link_clients()),
                data_dir=root / "mirrormaker", log_dir=self.state.logs,
                rest_port=self.mirror_port)
            self._spawn(mirror, "mirrormaker", f"127.0.0.1:{self.mirror_port}", started)
        waiting = []
        for spec in self.services:
            if self.state.alive(spec.name):
                continue
            proc = self._service(spec)
            proc.spawn()  # all nine start together; the waits below overlap
            started.append(spec.name)
            self.state.record(spec.name, proc, spec.url)
            waiting.append(proc)
        with self.console.status(f"Waiting for {len(waiting)} services"):
            for proc in waiting:
                proc.wait_ready(timeout=90)
        self.console.print(f"[green]✓[/] {len(self.services)} services healthy "
                           f"({len(waiting)} started now)")
        self._mirror = mirror  # `wait_links` waits for it: the demo data need no link
        self._start_prometheus(started)

    def _apply_acls(self, node: str) -> int:
        """Write `node`'s rules unless that broker has them already (a request per broker and up:
        skipped after a crash). The mark lives beside the broker's data, and goes with it."""
        acls = self.acls(node)
        digest = hashlib.sha256("\n".join(sorted({a.line() for a in acls})).encode()).hexdigest()
        mark = self.state.root / self._broker_dir(node) / "acls.sha256"
        if not (mark.exists() and mark.read_text() == digest):
            apply_acls(self.security.operator(self.bootstrap(node)), acls)
            mark.write_text(digest)
        return len(set(acls))

    def tool_settings(self, node: str, service: str) -> Settings:
        """A tool acting as a service of this federation (`bangkom replay` as the evaluation):
        that service's broker, as its principal when secured; the rest from BANGKOM_*."""
        kafka = ({"kafka_bootstrap": self.bootstrap(node)} if self.security is None else
                 self.security.settings(service_principal(node, service), self.bootstrap(node)))
        return Settings(node=node, service=service, **kafka)

    def _link_clients(self) -> dict[str, Settings] | None:
        """Each city's link, on both of its sides, as `<city>-link` (None when unsecured)."""
        if self.security is None:
            return None
        return {alias: Settings(**self.security.settings(link_principal(city), self.bootstrap(node)))
                for city in self.cities
                for alias, node in ((city, city), (national_alias(city), NATIONAL))}

    def write_city_token_hashes(self) -> Path:
        """The cities' tokens the nation admits for their own person ids (re-read each request)."""
        return self.state.write_secret(CITY_TOKEN_HASHES_FILE,
                                       city_token_hashes(self.tokens()).replace(",", "\n") + "\n")

    def _service(self, spec: ServiceSpec) -> ServiceProcess:
        tokens = self.tokens()
        extra = {}
        if spec.node == NATIONAL:  # a file, so that `city add` needs no restart of the nation
            extra["city_token_hashes_file"] = str(self.write_city_token_hashes())
        if self.security is not None:  # its own principal, and nothing else
            extra |= self.security.settings(service_principal(spec.node, spec.service),
                                            self.bootstrap(spec.node))
        return ServiceProcess(
            node=spec.node, service=spec.service, port=spec.port,
            kafka_bootstrap=self.bootstrap(spec.node), mongo_url=self.mongo_url,
            token_hashes=token_hashes(tokens[spec.node]), pseudonym_secret=self.pseudonym_secret(),
            log_dir=self.state.logs,
            extra_env=extra)

    def restart_service(self, name: str) -> None:
        """Stop one service (SIGTERM) and start it again, leaving every other component as it is."""
        spec = next(s for s in self.services if s.name == name)
        self._stop(name)
        self._start(self._service(spec), name, spec.url, [])

    def wait_links(self) -> None:
        """Wait until MirrorMaker (started by `up`, if it was down) runs every link; stop it and
        raise StartupError if it does not."""
        mirror, self._mirror = self._mirror, None
        if mirror is None:
            return
        try:
            with self.console.status("Waiting for MirrorMaker's links"):
                mirror.wait_ready(timeout=240)
        except BaseException:
            self._stop("mirrormaker")
            raise
        self.console.print(f"[green]✓[/] MirrorMaker: {len(self.cities)} cities linked with the "
                           "nation (events up exactly once, insights down)")

    def _start_prometheus(self, started: list[str]) -> None:
        # Monitoring is a convenience here: without it the federation still works.
        if self.state.alive("prometheus"):
            return
        if not PrometheusServer.available():
            self.console.print("[yellow]note:[/] no `prometheus` on PATH (apt-get install "
                               "prometheus): the federation runs without it")
            return
        if self.offset:
            self.console.print("[yellow]note:[/] with BANGKOM_PORT_OFFSET the federation runs "
                               "without Prometheus (its scrape targets are the default ports)")
            return
        if port_open("127.0.0.1", self.prometheus_port):
            self.console.print(f"[yellow]note:[/] port {self.prometheus_port} is taken by another "
                               "program: the federation runs without its own Prometheus")
            return
        prometheus = PrometheusServer(port=self.prometheus_port, data_dir=self.state.root / "prometheus",
                                      log_dir=self.state.logs, config=self.write_prometheus_config())
        try:
            self._start(prometheus, "prometheus", prometheus.url, started)
        except StartupError as error:
            self.console.print("[yellow]warning:[/] Prometheus did not start; the rest runs:")
            self.console.print(str(error), markup=False, highlight=False)
            self.state.forget("prometheus")
            started.remove("prometheus")

    def prometheus_config(self) -> dict:
        """deploy/prometheus/prometheus.yml with a target for each service of this run
        directory's cities (the same nine as the file until `city add`)."""
        import yaml

        config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
        config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / name)
                                for name in config.get("rule_files", [])]
        job = next(j for j in config["scrape_configs"] if j["job_name"] == "bangkom")
        job["static_configs"] = [{"targets": [f"127.0.0.1:{s.port}"],
                                  "labels": {"city": s.node, "service": s.service}}
                                 for s in self.services]
        return config

    def write_prometheus_config(self) -> Path:
        # JSON is YAML: Prometheus reads it as it is
        return self.state.write_secret("prometheus.yml",
                                       json.dumps(self.prometheus_config(), indent=2) + "\n")

    def _reload_prometheus(self) -> None:
        """A running Prometheus scrapes the cities of now (SIGHUP: it re-reads its file)."""
        if self.state.alive("prometheus"):
            self.write_prometheus_config()
            os.kill(self.state.components()["prometheus"]["pid"], signal.SIGHUP)

    def _spawn(self, proc: ManagedProcess, name: str, address: str, started: list[str]) -> None:
        proc.spawn()
        started.append(name)
        self.state.record(name, proc, address)

    def _start(self, proc: ManagedProcess, name: str, address: str, started: list[str]) -> None:
        with self.console.status(f"Starting {name} on {address}"):
            self._spawn(proc, name, address, started)
            proc.wait_ready(timeout=90)
        self.console.print(f"[green]✓[/] {name} on {address}")

    def load_demo(self) -> None:
        """Fill the cities with a demo training year through their APIs (`deploy/demo.py`).

        Running it again is harmless: a city that already has sessions is skipped."""
        if importlib.util.find_spec("deploy.demo") is None:
            self.console.print("[yellow]note:[/] deploy/demo.py does not exist: no demo data")
            return
        from deploy import demo

        # demo.load draws its own progress bars on our console.
        summary = demo.load({f"{s.node}/{s.service}": s.url for s in self.services}, self.tokens(),
                            console=self.console)
        failed = {node: result["error"] for node, result in summary["cities"].items()
                  if result.get("error")}
        if failed:
            raise RuntimeError("demo data failed for " + "; ".join(
                f"{node}: {error}" for node, error in failed.items()))
        self.console.print(f"[green]✓[/] demo data loaded ({summary['seconds']}s)")

    def down(self, wipe: bool = False) -> list[str]:
        stopped = []
        # Services first (they flush their outboxes), then the database, then the broker.
        for name in sorted(self.state.components(), key=_stop_order):
            if self._stop(name):
                stopped.append(name)
        # What no record knows any more (a state file lost or edited): the checkout's own
        # processes still holding the federation's ports.
        strays = sorted({pid for ports in self.ports().values() for port in ports
                         for pid in port_holders(port) if self.state.owns(pid)})
        if strays:
            end_processes(strays, timeout=15.0)
            stopped += [f"pid {pid}" for pid in strays]
        if wipe:
            for sub in ("kafka", *(f"kafka-{node}" for node in (NATIONAL, *self.cities)),
                        "mirrormaker", "ferretdb", "logs", "prometheus", "tokens.json",
                        "secret.json", "topology", "security", CITIES_FILE, CITY_TOKEN_HASHES_FILE,
                        "prometheus.yml"):
                path = self.state.root / sub
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        return stopped

    def _stop(self, name: str) -> bool:
        entry = self.state.components().get(name)
        if entry is None:
            return False
        was_running = bool(self.state.processes(name))
        left = stop_group(entry["pid"], entry["started"], entry.get("stop_timeout", 15.0),
                          signal.Signals[entry.get("stop_signal", "SIGTERM")], entry.get("cwd"))
        if left:
            raise RuntimeError(f"{name}: pids {left} are still running after SIGKILL")
        self.state.forget(name)
        return was_running

    def _mirror_health(self) -> str | None:
        return None if port_open("127.0.0.1", self.mirror_port) else \
            f"REST port {self.mirror_port} closed"

    def link_rows(self) -> list[dict[str, str]]:
        """One row per MirrorMaker flow: its lag in records and seconds; "up" unless the links'
        process is down or the flow is behind (links.BEHIND_SECONDS)."""
        from deploy.local.links import BEHIND_SECONDS, link_lag

        running = self.state.alive("mirrormaker")
        flows = [(city, NATIONAL, city, [topic(city, s) for s in CITY_STREAMS])
                 for city in self.cities]
        flows += [(NATIONAL, city, national_alias(city), [topic(city, "insights")])
                  for city in self.cities]

        def row(flow) -> dict[str, str]:
            source, target, alias, topics = flow
            name = f"link {source}→{target}"
            address = " ".join(topics)
            try:
                lag = run_coroutine(lambda: link_lag(self.kafka_admin(source),
                                                     self.kafka_admin(target), alias, topics),
                                    timeout=15)
            except Exception as error:  # noqa: BLE001 - reported as the health
                return {"name": name, "address": address, "pid": "",
                        "health": f"lag unknown ({type(error).__name__}: {error})"}
            detail = f"lag {lag.records} records, {lag.seconds:g} s" + (
                f" ({'; '.join(lag.waiting)})" if lag.waiting else "")
            if not running:
                health = f"down: mirrormaker is not running ({detail})"
            elif lag.behind:
                health = f"behind: {detail} (more than {BEHIND_SECONDS:g} s)"
            else:
                health = "up"
            return {"name": name, "address": address, "pid": "", "health": health,
                    "detail": detail}

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(row, flows))

    def status(self) -> list[dict[str, str]]:
        """One row per component: name, address, pid, and health ("up" or why not); a
        running component's memory (proportional set size, shared pages split); then one row
        per link."""
        recorded = self.state.components()
        from deploy.local import postgres

        checks = {**{self.broker_name(node): (self.bootstrap(node),
                                              lambda n=node: kafka_health(self.kafka_admin(n)))
                     for node in self.brokers()},
                  "postgres": (f"127.0.0.1:{self.postgres_port}",
                               lambda: postgres.health(self.postgres_port)),
                  "ferretdb": (self.mongo_url, lambda: ping_mongo(self.mongo_url)),
                  **{s.name: (s.url, lambda url=s.url: http_health(url)) for s in self.services}}
        if DB_BACKEND != "pg":
            del checks["postgres"]
        if not self.single_broker:
            checks["mirrormaker"] = (f"127.0.0.1:{self.mirror_port}", self._mirror_health)
        if PrometheusServer.available() and not self.offset:
            url = f"http://127.0.0.1:{self.prometheus_port}"
            checks["prometheus"] = (url, lambda: http_health(url, "/-/ready"))
        for name, entry in recorded.items():  # components added by other commands
            checks.setdefault(name, (entry["address"], lambda: None))

        def row(name: str) -> dict[str, str]:
            address, probe = checks[name]
            entry = recorded.get(name)
            if entry is None:
                return {"name": name, "address": address, "pid": "", "health": "not started"}
            if not is_alive(entry["pid"], entry["started"]):
                # The server died; what it started may still run (and hold its port).
                orphans = self.state.processes(name)
                health = (f"orphaned: the server died, pids {', '.join(map(str, orphans))} "
                          "of it still run (`bangkom up` ends them and starts it again)"
                          if orphans else "process gone")
                reason = last_error(Path(entry["log"])) if entry.get("log") else None
                health += f": {reason}" if reason else ""
                return {"name": name, "address": address, "pid": str(entry["pid"]),
                        "health": f"{health} (log: {entry['log']})"}
            problem = probe()
            return {"name": name, "address": address, "pid": str(entry["pid"]),
                    "health": problem or "up",
                    "memory_mib": str(round(pss_kib(self.state.processes(name)) / 1024))}

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(checks)) as pool:
            rows = list(pool.map(row, checks))
        if not self.single_broker and any(r["name"] == "mirrormaker" and r["pid"] for r in rows):
            rows += self.link_rows()
        return rows

    def print_summary(self, console: Console) -> None:
        """The URLs, then the tokens on lines of their own so they copy whole."""
        table = Table(title="Bangkom local federation")
        for column in ("node", "service", "address"):
            table.add_column(column, no_wrap=True)
        for spec in self.services:
            table.add_row(spec.node, spec.service, spec.url)
        for node in self.brokers():
            table.add_row(node if not self.single_broker else "", "kafka", self.bootstrap(node))
        if not self.single_broker:
            table.add_row("", "mirrormaker", f"links {', '.join(self.cities)} with {NATIONAL}")
        table.add_row("", "ferretdb", self.mongo_url)
        if self.state.alive("prometheus"):
            table.add_row("", "prometheus", f"http://127.0.0.1:{self.prometheus_port}")
        console.print(table)
        console.print(f"Bearer tokens (kept in {self.state.root / 'tokens.json'}):")
        for node, roles in self.tokens().items():
            for role, token in roles.items():
                console.print(f"  {node:<16} {role:<9} {token}", soft_wrap=True, highlight=False)
        console.print(f"Logs in {self.state.logs}. Check: bangkom status. Stop: bangkom down.",
                      soft_wrap=True, highlight=False)


def last_error(log: Path, tail_bytes: int = 256 * 1024) -> str | None:
    """Why a process ended, from the end of its log: the newest Kafka refusal (it names the
    principal: a service whose password or ACL is wrong stops at start), else the newest
    ERROR or CRITICAL line that is not uvicorn's "startup failed", else None."""
    try:
        with log.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - tail_bytes))
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    errors = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("ERROR", "CRITICAL"):
            message = str(entry.get("message", ""))
            if not message.startswith("Application startup failed"):
                errors.append(message)
    refusals = [m for m in errors if "(Kafka principal " in m]
    found = (refusals or errors or [None])[-1]
    return None if found is None else found[:300]


def pss_kib(pids: list[int]) -> int:
    """Memory of processes with shared pages split between their sharers (PostgreSQL's
    backends all map its shared buffers: RSS would count them once per backend)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue  # ended meanwhile
    return total


def _stop_order(name: str) -> int:
    # Services first, then the links, the database, the brokers.
    if name.startswith("kafka"):
        return 4
    return {"prometheus": -1, "mirrormaker": 1, "postgres": 3, "ferretdb": 2}.get(name, 0)
