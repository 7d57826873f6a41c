"""What the tests of a whole federation share: the real `bangkom` command in a run directory
of its own, and the environment a running component was given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANGKOM = str(Path(sys.executable).parent / "bangkom")


def run_bangkom(env: dict[str, str], *args: str,
                timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([BANGKOM, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def environment(pid: int) -> dict[str, str]:
    """The environment a process was started with (/proc/<pid>/environ)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def end_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
