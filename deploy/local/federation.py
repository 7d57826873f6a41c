"""The local federation: one Kafka, PostgreSQL under FerretDB, and nine services on fixed ports.

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
import importlib.util
import json
import os
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

from deploy.local.infra import DB_BACKEND, FerretDB, KafkaServer, list_topics, ping_mongo
from deploy.local.paths import REPO_ROOT, run_dir
from deploy.local.process import (
    ManagedProcess, StartupError, all_pids, command_line, end_processes, is_alive, members,
    port_holders, port_open, run_coroutine, stop_group, working_dir,
)
from shared.http import hash_token
from shared.kafka_admin import ensure_topics
from shared.topics import CITIES, CITY_STREAMS, NATIONAL, PARTITIONS, deadletter_topic, topic

KAFKA_PORT = 19092
KAFKA_CONTROLLER_PORT = 19093
FERRETDB_PORT = 27018
POSTGRES_PORT = 15432
PROMETHEUS_PORT = 9090
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
ROLES = ("operator", "viewer")


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


def layout(offset: int = 0) -> list[ServiceSpec]:
    specs = [ServiceSpec(NATIONAL, "evaluation", 8001 + offset)]
    for number, city in enumerate(CITIES, start=1):  # salatiga 801x, sawahlunto 802x, ...
        specs += [ServiceSpec(city, "enrollment", 8000 + offset + 10 * number + 1),
                  ServiceSpec(city, "sessions", 8000 + offset + 10 * number + 2)]
    return specs



def federation_topics() -> list[str]:
    streams = (*CITY_STREAMS, "insights")
    return [*(topic(city, s) for city in CITIES for s in streams),
            *(deadletter_topic(city) for city in CITIES), deadletter_topic(NATIONAL)]


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

    def __init__(self, *, port: int, data_dir: Path, log_dir: Path) -> None:
        self.port, self.data_dir = port, data_dir
        super().__init__(log_path=log_dir / "prometheus.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def available() -> bool:
        return shutil.which("prometheus") is not None and PROMETHEUS_CONFIG.exists()

    def command(self) -> list[str]:
        return ["prometheus", f"--config.file={PROMETHEUS_CONFIG}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}"]

    def probe(self) -> str | None:
        return http_health(self.url, "/-/ready")


def http_health(url: str, path: str = "/health") -> str | None:
    try:
        response = httpx.get(f"{url}{path}", timeout=2.0)
    except httpx.HTTPError as error:
        return f"GET {path} failed: {error!r}"
    return None if response.status_code == 200 else f"GET {path} answered {response.status_code}"


def kafka_health(bootstrap: str) -> str | None:
    host, _, port = bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        return "port closed"
    try:
        run_coroutine(lambda: list_topics(bootstrap), timeout=8)
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

    def components(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self.path.read_text())["components"]
        except FileNotFoundError:
            return {}

    def record(self, name: str, proc: ManagedProcess, address: str) -> None:
        components = self.components()
        # `pid` is the server itself and leads the session of everything it starts; `cwd`, when
        # set, claims the processes working there too (PostgreSQL's backends).
        components[name] = {"pid": proc.pid, "session": proc.pid, "started": proc.started,
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
        return root + "/" in command_line(pid) + " " or working_dir(pid) == root or \
            working_dir(pid).startswith(root + "/")

    def own_processes(self) -> list[int]:
        return [pid for pid in all_pids() if pid != os.getpid() and self.owns(pid)]

    def _write(self, components: dict[str, dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"components": components}, indent=2))
        tmp.replace(self.path)  # atomic: a concurrent `status` never reads half a file

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
    def __init__(self, console: Console | None = None, state: RunState | None = None,
                 offset: int | None = None) -> None:
        self.console = console or Console()
        self.state = state or RunState()
        self.offset = port_offset() if offset is None else offset
        self.services = layout(self.offset)
        self.kafka_port = KAFKA_PORT + self.offset
        self.kafka_bootstrap = f"127.0.0.1:{self.kafka_port}"
        self.postgres_port = POSTGRES_PORT + self.offset
        self.mongo_url = f"mongodb://127.0.0.1:{FERRETDB_PORT + self.offset}/"
        self.prometheus_port = PROMETHEUS_PORT + self.offset

    def ports(self) -> dict[str, list[int]]:
        """Each component's ports."""
        return {"kafka": [self.kafka_port, KAFKA_CONTROLLER_PORT + self.offset],
                "postgres": [self.postgres_port], "ferretdb": [FERRETDB_PORT + self.offset],
                **{spec.name: [spec.port] for spec in self.services},
                "prometheus": [self.prometheus_port]}

    def tokens(self) -> dict[str, dict[str, str]]:
        return self.state.secret_json("tokens.json", lambda: new_tokens([NATIONAL, *CITIES]))

    def pseudonym_secret(self) -> str:
        # One secret for every node, so a person has the same id in every city.
        return self.state.secret_json(
            "secret.json", lambda: {"pseudonym_secret": secrets.token_hex(32)})["pseudonym_secret"]

    def up(self) -> None:
        for service in sorted({spec.service for spec in self.services}):
            require_service_module(service)
        self.clear_leftovers()
        started: list[str] = []
        try:
            self._up(started)
        except BaseException:
            # Leave nothing half-started behind; the logs stay in .run/logs.
            for name in reversed(started):
                self._stop(name)
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
        tokens, secret = self.tokens(), self.pseudonym_secret()
        root = self.state.root
        if not self.state.alive("kafka"):
            kafka = KafkaServer(port=self.kafka_port, controller_port=KAFKA_CONTROLLER_PORT + self.offset,
                                data_dir=root / "kafka", log_dir=self.state.logs)
            self._start(kafka, "kafka", self.kafka_bootstrap, started)
        ferret = FerretDB(port=FERRETDB_PORT + self.offset, data_dir=root / "ferretdb",
                          log_dir=self.state.logs, pg_port=self.postgres_port)
        if ferret.postgres is not None and not self.state.alive("postgres"):
            self._start(ferret.postgres, "postgres", ferret.postgres.address, started)
        if not self.state.alive("ferretdb"):
            self._start(ferret, "ferretdb", self.mongo_url, started)
        with self.console.status("Creating topics"):
            run_coroutine(lambda: ensure_topics(self.kafka_bootstrap, federation_topics(),
                                                PARTITIONS), timeout=60)
        waiting = []
        for spec in self.services:
            if self.state.alive(spec.name):
                continue
            proc = ServiceProcess(
                node=spec.node, service=spec.service, port=spec.port,
                kafka_bootstrap=self.kafka_bootstrap, mongo_url=self.mongo_url,
                token_hashes=token_hashes(tokens[spec.node]), pseudonym_secret=secret,
                log_dir=self.state.logs,
                extra_env={"city_token_hashes": city_token_hashes(tokens)} if spec.node == NATIONAL else None)
            proc.spawn()  # all nine start together; the waits below overlap
            started.append(spec.name)
            self.state.record(spec.name, proc, spec.url)
            waiting.append(proc)
        with self.console.status(f"Waiting for {len(waiting)} services"):
            for proc in waiting:
                proc.wait_ready(timeout=90)
        self.console.print(f"[green]✓[/] {len(self.services)} services healthy "
                           f"({len(waiting)} started now)")
        self._start_prometheus(started)

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
                                      log_dir=self.state.logs)
        try:
            self._start(prometheus, "prometheus", prometheus.url, started)
        except StartupError as error:
            self.console.print("[yellow]warning:[/] Prometheus did not start; the rest runs:")
            self.console.print(str(error), markup=False, highlight=False)
            self.state.forget("prometheus")
            started.remove("prometheus")

    def _start(self, proc: ManagedProcess, name: str, address: str, started: list[str]) -> None:
        with self.console.status(f"Starting {name} on {address}"):
            proc.spawn()
            started.append(name)
            self.state.record(name, proc, address)
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
            for sub in ("kafka", "ferretdb", "logs", "prometheus", "tokens.json", "secret.json"):
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

    def status(self) -> list[dict[str, str]]:
        """One row per component: name, address, pid, and health ("up" or why not)."""
        recorded = self.state.components()
        from deploy.local import postgres

        checks = {"kafka": (self.kafka_bootstrap, lambda: kafka_health(self.kafka_bootstrap)),
                  "postgres": (f"127.0.0.1:{self.postgres_port}",
                               lambda: postgres.health(self.postgres_port)),
                  "ferretdb": (self.mongo_url, lambda: ping_mongo(self.mongo_url)),
                  **{s.name: (s.url, lambda url=s.url: http_health(url)) for s in self.services}}
        if DB_BACKEND != "pg":
            del checks["postgres"]
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
                return {"name": name, "address": address, "pid": str(entry["pid"]),
                        "health": f"{health} (log: {entry['log']})"}
            problem = probe()
            return {"name": name, "address": address, "pid": str(entry["pid"]),
                    "health": problem or "up"}

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(checks)) as pool:
            return list(pool.map(row, checks))

    def print_summary(self, console: Console) -> None:
        """The URLs, then the tokens on lines of their own so they copy whole."""
        table = Table(title="Bangkom local federation")
        for column in ("node", "service", "address"):
            table.add_column(column, no_wrap=True)
        for spec in self.services:
            table.add_row(spec.node, spec.service, spec.url)
        table.add_row("", "kafka", self.kafka_bootstrap)
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


def _stop_order(name: str) -> int:
    return {"prometheus": -1, "kafka": 4, "postgres": 3, "ferretdb": 2}.get(name, 0)
