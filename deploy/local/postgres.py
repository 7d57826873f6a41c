"""PostgreSQL 16 for FerretDB's `pg` backend, from the `pgserver` wheel (PyPI): no system package.

The wheel ships `initdb` and `postgres` under `pgserver/pginstall/bin`; we use only those
binaries, not the package's own server manager (it keeps its state in a per-user runtime dir and
picks its own ports). `prepare_cluster` makes the data directory once (initdb, then the
`ferretdb` database in single-user mode, so no client library is needed); `postgres_command`
is the server's command line, and `PostgresServer` runs it as a component of its own: the
postmaster is the session leader, so stopping the session also ends backends a SIGKILLed
postmaster left behind. `deploy.local.infra.FerretDB` starts, stops and kills it with FerretDB.

PostgreSQL refuses to run as root. When we are root (a container, this development machine),
its processes run as `nobody`, which then owns the data directory.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

from deploy.local.infra import SetupError
from deploy.local.process import ManagedProcess, StartupError, is_alive, members, port_open

DATABASE = "ferretdb"
USER = "bangkom"
_UNPRIVILEGED = "nobody"


def bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")  # not imported: its module code makes lock files
    if spec is None or not spec.submodule_search_locations:
        raise SetupError("the pgserver wheel is missing: reinstall the project (./dev installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def as_server_user(die_with_parent: bool = False) -> list[str]:
    """Prefix that runs a command as the server's user: empty unless we are root."""
    if os.geteuid() != 0:
        return []
    user = pwd.getpwnam(_UNPRIVILEGED)
    # --pdeathsig: a change of user clears the parent-death signal set before exec, so setpriv
    # sets it again (INT: PostgreSQL's fast shutdown, which does not wait for clients).
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            *(["--pdeathsig=INT"] if die_with_parent else [])]


def url(port: int) -> str:
    return f"postgres://{USER}@127.0.0.1:{port}/{DATABASE}"


def postgres_command(data_dir: Path, port: int, die_with_parent: bool = False) -> list[str]:
    return [*as_server_user(die_with_parent), str(bin_dir() / "postgres"), "-D", str(data_dir), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data_dir}",
            # FerretDB opens a pool per client connection; the default 100 is short for nine
            # services and the test sessions' many clients.
            "-c", "max_connections=300"]


class PostgresServer(ManagedProcess):
    """The PostgreSQL server under FerretDB; `stop` is a fast shutdown (SIGINT)."""

    name = "postgres"
    start_timeout = 60.0
    stop_timeout = 30.0
    stop_signal = signal.SIGINT

    def __init__(self, *, data_dir: Path, port: int, log_dir: Path,
                 die_with_parent: bool = False) -> None:
        self.data_dir, self.port = data_dir, port
        self.owned_cwd = str(data_dir.resolve())  # where the postmaster and its backends work
        super().__init__(log_path=log_dir / "postgres.log", die_with_parent=die_with_parent)

    @property
    def url(self) -> str:
        return url(self.port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return postgres_command(self.data_dir, self.port, self.die_with_parent)

    def prepare(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        prepare_cluster(self.data_dir, self.log_path)
        self._drop_stale_lock()

    def _drop_stale_lock(self) -> None:
        """A SIGKILLed server leaves its lock files (`postmaster.pid`, the socket's `.lock`);
        while its parent has not reaped it, its pid still answers `kill -0`, and a new server
        then refuses to start. They are stale when that pid is dead or a zombie and no process
        works in the data directory any more (no old backend still attached to the shared
        memory the lock names)."""
        for lock in [self.data_dir / "postmaster.pid", *self.data_dir.glob(".s.PGSQL.*.lock")]:
            try:
                pid = int(lock.read_text().split("\n", 1)[0])
            except (FileNotFoundError, ValueError):
                continue
            if not is_alive(pid, None) and not members(pid, None, self.owned_cwd):
                lock.unlink(missing_ok=True)

    def probe(self) -> str | None:
        return health(self.port)

    def wait_ready(self, timeout: float) -> None:
        # Backends of a SIGKILLed server hold its shared memory for a moment after they are
        # signalled, and a new server refuses to start meanwhile: start again, within `timeout`.
        deadline = time.monotonic() + timeout
        while True:
            try:
                return super().wait_ready(max(1.0, deadline - time.monotonic()))
            except StartupError as error:
                if "shared memory block" not in str(error) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.3)
            self.spawn()


def health(port: int) -> str | None:
    """None when the server accepts connections (`pg_isready`), else why not."""
    if not port_open("127.0.0.1", port):
        return f"port {port} closed"
    done = subprocess.run([str(bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                           str(port), "-U", USER, "-d", DATABASE, "-t", "3"],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    return None if done.returncode == 0 else f"pg_isready answered {done.returncode}"


def prepare_cluster(data_dir: Path, log: Path) -> None:
    """initdb and the `ferretdb` database, the first time only."""
    if (data_dir / "PG_VERSION").exists():
        if os.geteuid() == 0:  # at every start: another pytest run resets its temp root to 0700
            _searchable_parents(data_dir)
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        _open_for(data_dir)
    with log.open("ab") as out:
        _run([*as_server_user(), str(bin_dir() / "initdb"), "-D", str(data_dir), "-U", USER,
              "--auth=trust", "--encoding=UTF8", "--no-locale"], out)
        _run([*as_server_user(), str(bin_dir() / "postgres"), "--single", "-D", str(data_dir),
              "template1"], out, stdin=f"CREATE DATABASE {DATABASE};\n".encode())
        _run([*as_server_user(), str(bin_dir() / "postgres"), "--single", "-j", "-D",
              str(data_dir), DATABASE], out, stdin=GIN_TWINS.encode())


# FerretDB v1 pushes an equality filter down as `_jsonb -> 'field' @> '<value>'`, but the
# indexes it creates (`createIndexes`, and `_id`'s) are btrees on `_jsonb -> 'field'`, which
# cannot answer `@>`: every query was a sequential scan (measured with `explain`, README).
# This event trigger gives each such index a GIN twin on the same expressions, which can, so
# the indexes the services create at start through the MongoDB API are the ones PostgreSQL uses.
# A non-unique btree is then dropped: it serves no query, and it stores the whole value as one
# key, so an array field (a roster's `enrollment_ids`) past 2,704 bytes, about 80 ids, made
# every write of that document fail. Unique ones (`_id`'s) stay: they enforce uniqueness.
GIN_TWINS = """
CREATE FUNCTION bangkom_gin_twin() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
  cmd record; idx record; cols text;
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
    SELECT i.indexrelid, i.indrelid, i.indnatts, i.indisunique, a.amname, c.relname INTO idx
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
      WHERE i.indexrelid = cmd.objid;
    CONTINUE WHEN idx.amname <> 'btree';
    SELECT string_agg(pg_get_indexdef(idx.indexrelid, k, true) || ' jsonb_path_ops', ', ')
      INTO cols FROM generate_series(1, idx.indnatts) AS k;
    CONTINUE WHEN cols NOT LIKE '%_jsonb -> %';
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (%s)',
                   left(idx.relname, 55) || '_gin', idx.indrelid::regclass, cols);
    IF NOT idx.indisunique THEN
      EXECUTE format('DROP INDEX %s', idx.indexrelid::regclass);
    END IF;
  END LOOP;
END $$;

CREATE EVENT TRIGGER bangkom_gin_twin ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION bangkom_gin_twin();

"""  # single-user mode with -j: a statement ends with a semicolon and an empty line


def _run(cmd: list[str], out, stdin: bytes | None = None) -> None:
    done = subprocess.run(cmd, input=stdin, stdout=out, stderr=subprocess.STDOUT, timeout=120)
    if done.returncode != 0:
        raise SetupError(f"{' '.join(cmd)} failed (exit {done.returncode}); see {out.name}")


def _open_for(data_dir: Path) -> None:
    """Hand `data_dir` to the unprivileged user and let it reach it (search permission only on
    the parents: pytest's temp root is 0700)."""
    user = pwd.getpwnam(_UNPRIVILEGED)
    os.chown(data_dir, user.pw_uid, user.pw_gid)
    data_dir.chmod(0o700)
    _searchable_parents(data_dir)


def _searchable_parents(data_dir: Path) -> None:
    for parent in data_dir.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
