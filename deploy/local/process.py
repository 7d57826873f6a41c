"""A long-running child process (broker, database, service) with a log file and a readiness probe.

Each child gets its own session, so stopping it also stops anything it forked, even after the
child itself died (its orphans keep the session id). A pid plus the kernel's start time identify
it safely from another shell (`bangkom down`): a recycled pid never matches the recorded start
time. Every component is the server itself, never a shell wrapped around it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from shared.process import die_with_parent


class StartupError(RuntimeError):
    """A component did not become ready; the message quotes the end of its log."""


def free_port() -> int:
    """A port the kernel just handed out, so parallel test sessions do not pick the same one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_TROUBLE = re.compile(r"\b(ERROR|FATAL|PANIC|panic)\b|Exception\b|Error:")


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log, preceded by its first error lines: a broker that fails at start
    logs the cause early and then pages of orderly shutdown."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 256 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    # Only this run's part of an appended log.
    all_lines = text.splitlines()
    starts = [i for i, line in enumerate(all_lines) if line.startswith("--- start ")]
    current = all_lines[starts[-1]:] if starts else all_lines
    last = current[-lines:]
    trouble = [line for line in current[:-lines] if _TROUBLE.search(line)][:8]
    if not current:
        return f"(empty log {path})"
    return "\n".join([*trouble, "..." if trouble else "", *last]).lstrip("\n")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (0: state, 1: ppid, 2: process
    group, 3: session, 19: start time); None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    return None if fields[0] == "Z" else fields


def start_time(pid: int) -> int | None:
    """Clock ticks since boot when `pid` started; None if gone or a zombie."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def is_alive(pid: int, started: int | None) -> bool:
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def members(session: int, started: int | None = None, cwd: str | None = None) -> list[int]:
    """A component's live processes: its session's, and those working in `cwd` (PostgreSQL's
    backends start sessions of their own, and work in the data directory)."""
    found = session_members(session, started)
    if cwd:
        found += [pid for pid in all_pids() if pid not in found and working_dir(pid) == cwd]
    return found


def session_members(session: int, started: int | None = None) -> list[int]:
    """Every live process of the session that `session` (a recorded pid) leads, the leader
    included, even after the leader itself died: its children keep the session id, and the
    kernel hands that number to no new process while one of them lives. If a process now has the
    number but another start time, the number was reused and the session is not ours: []."""
    if started is not None and start_time(session) not in (None, started):
        return []
    members = []
    for pid in all_pids():
        fields = _stat(pid)
        if fields and int(fields[3]) == session:
            members.append(pid)
    return members


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def working_dir(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def port_holders(port: int) -> list[int]:
    """The pids holding a listening TCP socket on `port` (IPv4 or IPv6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return []
    holders = []
    for pid in all_pids():
        try:
            fds = os.scandir(f"/proc/{pid}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) in inodes:
                        holders.append(pid)
                        break
                except OSError:
                    continue
    return holders


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def end_processes(pids: list[int], timeout: float,
                  first: signal.Signals = signal.SIGTERM) -> list[int]:
    """`first`, then SIGKILL to what is still there after `timeout` s; the pids left (none
    unless a process is stuck in the kernel)."""
    started = {pid: start_time(pid) for pid in pids}
    left = [pid for pid, at in started.items() if at is not None]
    for sig, wait in ((first, timeout), (signal.SIGKILL, 10.0)):
        if not left:
            break
        signal_all(left, sig)
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for pid in left if is_alive(pid, started[pid])]
    return left


def stop_group(pid: int, started: int | None, timeout: float,
               first: signal.Signals = signal.SIGTERM, cwd: str | None = None) -> list[int]:
    """Stop every process of the session `pid` leads, whether or not the leader still lives:
    `first` (a clean shutdown), SIGKILL to what is still there after `timeout` seconds. The
    leader gets `first` alone at first (a server that stops its own children in order, like
    PostgreSQL); the rest of the session gets it once the leader is gone. Returns the pids left."""
    if is_alive(pid, started):
        signal_all([pid], first)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_alive(pid, started):
            time.sleep(0.1)
    return end_processes(members(pid, started, cwd), timeout=2.0, first=first)


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, Any]], timeout: float) -> Any:
    """Run a coroutine to completion from synchronous code, even when the caller's thread already
    has an event loop (a pytest-asyncio session): a fresh thread gets its own loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(factory(), timeout)).result()


class ManagedProcess:
    """Base class: subclasses give the command and a readiness probe."""

    name = "process"
    start_timeout = 60.0
    stop_timeout = 15.0
    stop_signal = signal.SIGTERM
    owned_cwd: str | None = None  # processes working there belong to this component too

    def __init__(self, *, log_path: Path, die_with_parent: bool = False) -> None:
        self.log_path = log_path
        self.die_with_parent = die_with_parent
        self._popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.started: int | None = None

    # -- to override ---------------------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def cwd(self) -> Path | None:
        return None

    def prepare(self) -> None:
        """Runs before each spawn: write configuration, create directories."""

    def probe(self) -> str | None:
        """None when ready, else why not (shown when the wait times out)."""
        raise NotImplementedError

    def logs(self) -> list[Path]:
        """Files quoted when the start fails."""
        return [self.log_path]

    # -- lifecycle -----------------------------------------------------------------------------
    def spawn(self) -> None:
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(self.command())}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.environment(), cwd=self.cwd(), start_new_session=True,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )
        self.pid = self._popen.pid
        self.started = start_time(self.pid)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        reason = "not probed yet"
        while True:
            code = self._popen.poll() if self._popen else None
            if code is not None:
                raise StartupError(self._failure(f"exited with code {code} before it was ready"))
            reason = self.probe()
            if reason is None:
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise StartupError(self._failure(f"not ready after {timeout:.0f}s ({reason})"))
            time.sleep(0.25)

    def start(self, timeout: float | None = None) -> None:
        self.spawn()
        self.wait_ready(timeout or self.start_timeout)

    def running(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return self.pid is not None and is_alive(self.pid, self.started)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after `stop_timeout`."""
        if self.pid is not None:
            stop_group(self.pid, self.started, self.stop_timeout, self.stop_signal, self.owned_cwd)
        self._reap()

    def kill(self) -> None:
        """SIGKILL to the whole session at once, as a crash would."""
        if self.pid is not None:
            signal_all(members(self.pid, self.started, self.owned_cwd), signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        if self._popen is not None:
            try:
                self._popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def _failure(self, what: str) -> str:
        quoted = "\n".join(f"--- {path}:\n{tail(path)}" for path in self.logs())
        return f"{self.name} {what}.\n{quoted}"
