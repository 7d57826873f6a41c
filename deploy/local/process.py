"""A long-running child process (broker, database, service) with a log file and a readiness probe.

Each child gets its own session (process group), so stopping it also stops anything it forked,
and a pid plus the kernel's start time identify it safely from another shell (`bangkom down`):
a recycled pid never matches the recorded start time.
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


def start_time(pid: int) -> int | None:
    """Clock ticks since boot when `pid` started (field 22 of /proc/<pid>/stat); None if gone
    or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    if fields[0] == "Z":
        return None
    return int(fields[19])


def is_alive(pid: int, started: int | None) -> bool:
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def stop_group(pid: int, started: int | None, timeout: float) -> None:
    """SIGTERM the process group, SIGKILL it when it is still there after `timeout` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if not is_alive(pid, started):
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and is_alive(pid, started):
            time.sleep(0.1)


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
            stop_group(self.pid, self.started, self.stop_timeout)
        self._reap()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.pid is not None and self.running():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
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
