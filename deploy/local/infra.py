"""The real infrastructure without Docker: Apache Kafka (KRaft) from Maven Central jars and
FerretDB (MongoDB wire protocol over PostgreSQL or SQLite) built from its Go module.

`setup()` fetches and builds once into the cache (`BANGKOM_CACHE_DIR`, default `<repo>/.cache`);
`KafkaServer` and `FerretDB` then run them on given ports and data directories, so the local
federation (fixed ports) and each test session (free ports, temp dirs) use the same code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from rich.console import Console

from deploy.local.paths import REPO_ROOT, cache_dir
from deploy.local.process import ManagedProcess, free_port, port_open, run_coroutine, tail
from deploy.local.security import BrokerSecurity
from shared.kafka_auth import client_kwargs
from shared.settings import Settings
from shared.topics import PARTITIONS

KAFKA_POM = REPO_ROOT / "deploy" / "local" / "pom.xml"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"


class SetupError(RuntimeError):
    """Fetching or building failed; the message quotes the tool's log."""


# -- fetch & build (once) ------------------------------------------------------------------------

def kafka_libs() -> Path:
    return cache_dir() / "kafka" / "libs"


def ferretdb_binary() -> Path:
    return cache_dir() / "ferretdb" / "ferretdb"


def setup(console: Console | None = None) -> None:
    """Everything `up` and the integration tests need; a no-op when the cache is complete."""
    console = console or Console(stderr=True)
    ensure_kafka_jars(console)
    ensure_ferretdb(console)


def ensure_kafka_jars(console: Console) -> Path:
    libs = kafka_libs()
    # The marker records the pom's hash: editing the pom (a Kafka upgrade) refetches.
    marker = libs / ".complete"
    wanted = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() == wanted:
        return libs
    if libs.exists():
        shutil.rmtree(libs)  # no jar of an older version may stay on the classpath
    libs.mkdir(parents=True)
    _run_step(
        console, "Kafka jars from Maven Central",
        ["mvn", "-B", "-q", "-f", str(KAFKA_POM), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
        log=libs.parent / "mvn.log",
        progress=lambda: f"{sum(1 for _ in libs.glob('*.jar'))} jars",
    )
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise SetupError(f"Maven finished but no kafka_2.13 jar is in {libs}")
    marker.write_text(wanted + "\n")
    return libs


def ensure_ferretdb(console: Console) -> Path:
    home = cache_dir() / "ferretdb"
    binary = home / "ferretdb"
    marker = home / ".complete"
    if marker.exists() and marker.read_text().strip() == FERRETDB_VERSION and binary.exists():
        return binary
    home.mkdir(parents=True, exist_ok=True)
    log = home / "build.log"
    log.write_text("")
    # `go install ...@v1.24.2` builds a binary that panics at start: it embeds
    # build/version/version.txt, which the module lacks. So: download, copy, add it, build.
    with tempfile.TemporaryDirectory(prefix="bangkom-ferretdb-") as scratch:
        Path(scratch, "go.mod").write_text("module bangkom.local/fetch\n\ngo 1.21\n")
        env = {**os.environ, "GOFLAGS": "-mod=mod"}
        out = _run_step(
            console, f"FerretDB {FERRETDB_VERSION} source from the Go module proxy",
            ["go", "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
            log=log, cwd=Path(scratch), env=env, capture=True,
        )
    info = json.loads(out)
    if info.get("Error") or not info.get("Dir"):
        raise SetupError(f"go mod download failed: {info.get('Error') or out}")
    src = home / "src"
    _remove_tree(src)
    shutil.copytree(info["Dir"], src, symlinks=True)
    _make_writable(src)  # the module cache is read-only, and the copy keeps its modes
    (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION)
    binary.unlink(missing_ok=True)
    build = ["go", "build", "-o", str(binary), "./cmd/ferretdb"]
    try:
        _run_step(console, f"FerretDB {FERRETDB_VERSION} build", build, log=log, cwd=src, env=env,
                  hint="about a minute with a cold Go cache")
    except SetupError as error:
        if "linkname" not in str(error):
            raise
        # Newer Go toolchains refuse some of the old dependencies' linknames.
        _run_step(console, "FerretDB build again with -checklinkname=0",
                  [*build[:2], "-ldflags=-checklinkname=0", *build[2:]], log=log, cwd=src, env=env)
    marker.write_text(FERRETDB_VERSION + "\n")
    return binary


def _run_step(console: Console, what: str, cmd: list[str], *, log: Path, cwd: Path | None = None,
              env: dict[str, str] | None = None, capture: bool = False,
              progress=None, hint: str = "") -> str:
    """Run one long step with a live spinner and its elapsed time; its stderr goes to `log`."""
    console.print(f"[bold]→[/] {what}" + (f" ({hint})" if hint else ""))
    began = time.monotonic()
    with log.open("ab") as err, console.status(what) as status:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if capture else err, stderr=err)
        if capture:
            # stdout is small (JSON): read it all, the spinner just shows the wait.
            out, _ = proc.communicate()
        else:
            while proc.poll() is None:
                extra = f", {progress()}" if progress else ""
                status.update(f"{what} ({time.monotonic() - began:.0f}s{extra})")
                time.sleep(0.5)
            out = b""
    if proc.returncode != 0:
        raise SetupError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- {log}:\n{tail(log)}\n{out.decode(errors='replace')[-2000:]}")
    console.print(f"[green]✓[/] {what} ({time.monotonic() - began:.0f}s)")
    return out.decode()


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _remove_tree(root: Path) -> None:
    if root.exists():
        _make_writable(root)
        shutil.rmtree(root)


# -- run -----------------------------------------------------------------------------------------

def log4j2_yaml(logfile: Path, quiet: tuple[str, ...], *, writer: str) -> str:
    """A Kafka JVM's log4j2 configuration: one file instead of the console, `quiet` loggers at
    WARN (the broker's and MirrorMaker's differ only in those)."""
    loggers = "".join(f"      - name: {name}\n        level: WARN\n" for name in quiet)
    return f"""\
# Written by {writer}: logs to one file instead of the console.
Configuration:
  status: warn
  Appenders:
    File:
      name: FILE
      fileName: "{logfile}"
      append: true
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: FILE
    Logger:
{loggers}"""


BROKER_QUIET = ("kafka.request.logger", "state.change.logger", "org.apache.kafka.clients")


class KafkaServer(ManagedProcess):
    """One KRaft node that is broker and controller at once."""

    name = "kafka"
    start_timeout = 90.0
    stop_timeout = 30.0  # a clean shutdown flushes logs and closes the quorum

    def __init__(self, *, port: int, controller_port: int, data_dir: Path,
                 log_dir: Path | None = None, libs: Path | None = None,
                 die_with_parent: bool = False, security: BrokerSecurity | None = None,
                 name: str = "kafka", heap: str = "512m") -> None:
        self.security = security  # None: a PLAINTEXT listener, no authorizer
        self.name, self.heap = name, heap  # several brokers may share a log directory
        self.port = port
        self.controller_port = controller_port
        self.data_dir = data_dir
        self.log_dir = log_dir or data_dir / "logs"
        self.libs = libs or kafka_libs()
        super().__init__(log_path=self.log_dir / f"{name}.out", die_with_parent=die_with_parent)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin(self) -> Settings:
        """How the project's own tools reach this broker: as the operator when it is secured."""
        if self.security is None:
            return Settings(kafka_bootstrap=self.bootstrap)
        return self.security.operator(self.bootstrap)

    @property
    def server_log(self) -> Path:
        return self.log_dir / f"{self.name}-server.log"

    @property
    def properties(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log4j_config(self) -> Path:
        return self.data_dir / "log4j2.yaml"

    def logs(self) -> list[Path]:
        return [self.log_path, self.server_log]

    def _java(self, main: str, *args: str, heap: str = "") -> list[str]:
        return ["java", *([f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC"] if heap else []),
                "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.log_dir}",
                f"-Dlog4j2.configurationFile={self.log4j_config}",
                "-cp", f"{self.libs}/*", main, *args]

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.properties), heap=self.heap)

    def prepare(self) -> None:
        """Write the configuration and format the storage on first use."""
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise SetupError(f"no Kafka jars in {self.libs}: run `bangkom setup` first")
        logs = self.data_dir / "data"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log4j_config.write_text(
            log4j2_yaml(self.server_log, BROKER_QUIET, writer="deploy/local/infra.py"))
        self.properties.write_text(server_properties(
            port=self.port, controller_port=self.controller_port, log_dirs=logs,
            security=self.security))
        if (logs / "meta.properties").exists():
            return
        cluster_id = self._tool("random-uuid").strip().splitlines()[-1]
        users = self.security.format_args() if self.security else []
        self._tool("format", "-t", cluster_id, "-c", str(self.properties), "--standalone", *users)

    def _tool(self, *args: str) -> str:
        done = subprocess.run(self._java("kafka.tools.StorageTool", *args), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=120)
        with self.log_path.open("a") as log:  # (not the arguments: they hold passwords)
            log.write(f"--- StorageTool {args[0]}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise SetupError(f"Kafka StorageTool {args[0]} failed (exit {done.returncode}):\n"
                             f"{done.stdout}{done.stderr}")
        return done.stdout

    def probe(self) -> str | None:
        if not port_open("127.0.0.1", self.port):
            return f"port {self.port} closed"
        try:
            run_coroutine(lambda: list_topics(self.admin), timeout=10)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready yet"
            return f"admin list_topics failed: {error!r}"
        return None


def scratch_kafka(prefix: str) -> tuple[Path, KafkaServer]:
    """What a benchmark runs on: a throw-away directory, and in it a PLAINTEXT broker on free
    ports that ends with its parent (not started; its logs in <dir>/logs)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    return root, KafkaServer(port=free_port(), controller_port=free_port(),
                             data_dir=root / "kafka", log_dir=root / "logs", die_with_parent=True)


def scratch_ferretdb(root: Path, backend: str | None = None) -> FerretDB:
    """The FerretDB beside scratch_kafka's broker, in the same directory."""
    return FerretDB(port=free_port(), data_dir=root / "ferretdb", log_dir=root / "logs",
                    die_with_parent=True, backend=backend)


def server_properties(*, port: int, controller_port: int, log_dirs: Path | str,
                      security: BrokerSecurity | None = None, host: str = "127.0.0.1",
                      bind: str = "127.0.0.1", client: str = "",
                      external: tuple[int, str] | None = None,
                      writer: str = "deploy/local/infra.py") -> str:
    """One KRaft node, broker and controller: a client listener named `client` on `port`
    (advertised as `host`), the controller on `controller_port`, and with `external` =
    (port, advertised host) a listener for clients of other hosts (docker compose's nation)."""
    client = client or ("SASL_SSL" if security else "PLAINTEXT")
    listeners = [f"{client}://{bind}:{port}", f"CONTROLLER://{bind}:{controller_port}"]
    advertised = [f"{client}://{host}:{port}", f"CONTROLLER://{host}:{controller_port}"]
    if external:
        listeners.append(f"EXTERNAL://{bind}:{external[0]}")
        advertised.append(f"EXTERNAL://{external[1]}:{external[0]}")
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dirs),
        "num.partitions": str(PARTITIONS),  # auto-created topics match ours
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        **(security.properties(listener=client, external=("EXTERNAL",) if external else ())
           if security else {}),
    }
    return "\n".join([f"# Written by {writer}: single node, broker and controller.",
                      *(f"{key}={value}" for key, value in props.items()), ""])


# Readiness probes fail on purpose while a broker boots; without any handler, aiokafka's
# connection errors would reach Python's last-resort stderr handler and clutter the CLI.
# (A NullHandler keeps propagation, so configured logging and pytest still see them.)
logging.getLogger("aiokafka").addHandler(logging.NullHandler())


async def list_topics(kafka: Settings | str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    settings = kafka if isinstance(kafka, Settings) else Settings(kafka_bootstrap=kafka)
    admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=5000)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


# The local database's backend, chosen by measurement (README, "Local database"); MongoDB stays in
# compose. BANGKOM_DB_BACKEND=sqlite runs the other one.
DB_BACKEND = os.environ.get("BANGKOM_DB_BACKEND", "pg")


class FerretDB(ManagedProcess):
    """FerretDB v1: on PostgreSQL (`backend="pg"`, a server of ours in `data_dir/pg`, its own
    component: `self.postgres`), or on SQLite (one file per database in `data_dir`).

    `start`, `stop` and `kill` act on both (the database as a whole); `spawn` and `wait_ready`
    on FerretDB alone, for a launcher that runs PostgreSQL as a component of its own."""

    name = "ferretdb"
    start_timeout = 30.0

    def __init__(self, *, port: int, data_dir: Path, log_dir: Path | None = None,
                 binary: Path | None = None, die_with_parent: bool = False,
                 backend: str | None = None, pg_port: int | None = None) -> None:
        from deploy.local.postgres import PostgresServer

        self.port = port
        self.data_dir = data_dir
        self.binary = binary or ferretdb_binary()
        self.backend = backend or DB_BACKEND
        log_dir = log_dir or data_dir
        self.postgres = PostgresServer(
            data_dir=data_dir / "pg", port=pg_port or free_port(), log_dir=log_dir,
            die_with_parent=die_with_parent) if self.backend == "pg" else None
        super().__init__(log_path=log_dir / "ferretdb.log", die_with_parent=die_with_parent)

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        common = [f"--listen-addr=127.0.0.1:{self.port}", f"--state-dir={self.data_dir}",
                  "--telemetry=disable", "--debug-addr=-"]
        if self.postgres is None:
            return [str(self.binary), "--handler=sqlite", f"--sqlite-url=file:{self.data_dir}/",
                    *common]
        return [str(self.binary), "--handler=pg", f"--postgresql-url={self.postgres.url}",
                *common]

    def prepare(self) -> None:
        if not self.binary.exists():
            raise SetupError(f"no FerretDB binary at {self.binary}: run `bangkom setup` first")
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float | None = None) -> None:
        if self.postgres is not None and not self.postgres.running():
            self.postgres.start()
        super().start(timeout)

    def stop(self) -> None:
        super().stop()  # first: PostgreSQL's clean stop waits for no client
        if self.postgres is not None:
            self.postgres.stop()

    def kill(self) -> None:
        super().kill()
        if self.postgres is not None:
            self.postgres.kill()

    def probe(self) -> str | None:
        if not port_open("127.0.0.1", self.port):
            return f"port {self.port} closed"
        return ping_mongo(self.url)


def ping_mongo(url: str) -> str | None:
    """None when the server answers a ping, else the error. (FerretDB answers it without its
    PostgreSQL: the launcher probes that as a component of its own.)"""
    from pymongo import MongoClient

    client = MongoClient(url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000)
    try:
        client.admin.command("ping")
    except Exception as error:  # noqa: BLE001 - reported, not handled
        return f"ping failed: {error}"
    finally:
        client.close()
    return None
