"""What `bangkom setup` and `bangkom test` need on the machine, checked before anything runs.

- Build tools (java, mvn, go): checked first, so that a missing one is one line naming it and
  the Debian package to install, not a Python traceback from deep inside a build step.
- Test tools (Debian's chromium for the browser tests, prometheus and promtool for the metrics
  tests): installed with apt-get when the command runs as root on a machine with apt (as CI
  does); otherwise the command fails naming the exact install command. The tests themselves
  fail, never skip, without them: a test run that reports green must have run every test.
- The Compose specification's JSON schema, from the Go module of the reference Compose
  implementation (compose-go), through the Go module proxy into the cache: the compose checks
  validate docker-compose.yml against it where no Docker Compose binary is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rich.console import Console

from deploy.local.infra import SetupError, _run_step
from deploy.local.paths import cache_dir

# command -> Debian package that provides it
BUILD_TOOLS = {"java": "default-jdk-headless", "mvn": "maven", "go": "golang-go"}
TEST_TOOLS = {"chromium": "chromium", "prometheus": "prometheus", "promtool": "prometheus"}
COMPOSE_GO = "github.com/compose-spec/compose-go/v2"
# The newest compose-go whose go.mod accepts the Go of the development machine (1.26.8).
COMPOSE_GO_VERSION = "v2.16.2"


def missing(tools: dict[str, str]) -> dict[str, str]:
    return {command: package for command, package in tools.items() if not shutil.which(command)}


def install_command(packages: list[str]) -> str:
    return "apt-get install -y --no-install-recommends " + " ".join(sorted(set(packages)))


def check_build_tools() -> None:
    absent = missing(BUILD_TOOLS)
    if absent:
        raise SetupError(f"{', '.join(absent)} not found on PATH: install "
                         f"({install_command(list(absent.values()))}, as root) and run again")


def ensure_test_tools(console: Console) -> None:
    """Install the test tools with apt-get when root; otherwise fail naming the command."""
    absent = missing(TEST_TOOLS)
    if not absent:
        return
    packages = sorted(set(absent.values()))
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SetupError(f"{', '.join(absent)} not found: the browser and metrics tests need "
                         f"them; install with `sudo {install_command(packages)}` and run again")
    console.print(f"[bold]→[/] installing {' '.join(packages)} from Debian (apt-get, as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Keep the package scripts from starting a system Prometheus on our port 9090.
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        for command in (["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]):
            done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SetupError(f"{' '.join(command)} failed (exit {done.returncode}):\n"
                                 f"{done.stderr[-2000:]}")
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
    still = missing(TEST_TOOLS)
    if still:
        raise SetupError(f"apt-get installed {' '.join(packages)} but {', '.join(still)} "
                         f"is still not on PATH")
    console.print(f"[green]✓[/] installed {' '.join(packages)}")


def compose_schema() -> Path:
    return cache_dir() / "compose-spec" / "compose-spec.json"


def ensure_compose_schema(console: Console) -> Path:
    target = compose_schema()
    marker = target.parent / ".complete"
    if target.exists() and marker.exists() and marker.read_text().strip() == COMPOSE_GO_VERSION:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bangkom-compose-go-") as scratch:
        Path(scratch, "go.mod").write_text("module bangkom.local/fetch\n\ngo 1.21\n")
        out = _run_step(
            console, f"Compose specification schema ({COMPOSE_GO} {COMPOSE_GO_VERSION})",
            ["go", "mod", "download", "-json", f"{COMPOSE_GO}@{COMPOSE_GO_VERSION}"],
            log=target.parent / "download.log", cwd=Path(scratch),
            env={**os.environ, "GOFLAGS": "-mod=mod"}, capture=True)
    info = json.loads(out)
    source = Path(info.get("Dir") or "/nonexistent") / "schema" / "compose-spec.json"
    if info.get("Error") or not source.is_file():
        raise SetupError(f"no compose-spec.json from {COMPOSE_GO}: {info.get('Error') or out}")
    shutil.copyfile(source, target)
    marker.write_text(COMPOSE_GO_VERSION + "\n")
    return target


ASYNCAPI_PARSER = "@asyncapi/parser@3.6.3"


def asyncapi_parser_dir() -> Path:
    return cache_dir() / "asyncapi-parser"


def ensure_asyncapi_parser(console: Console) -> Path:
    """The AsyncAPI project's parser from npm, into the cache (never into the repository)."""
    home = asyncapi_parser_dir()
    marker = home / ".complete"
    if marker.exists() and marker.read_text().strip() == ASYNCAPI_PARSER:
        return home
    if not shutil.which("npm"):
        raise SetupError(f"npm not found on PATH (the AsyncAPI check needs it): install "
                         f"({install_command(['npm'])}, as root) and run again")
    home.mkdir(parents=True, exist_ok=True)
    _run_step(console, f"AsyncAPI parser ({ASYNCAPI_PARSER}) from npm",
              ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(home), ASYNCAPI_PARSER],
              log=home / "npm.log")
    marker.write_text(ASYNCAPI_PARSER + "\n")
    return home
