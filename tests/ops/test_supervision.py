"""Supervision of the local federation's processes, on real processes (no broker needed): a
component's orphans are found after its server died, `status` names them, `up` ends the
checkout's own leftovers and refuses a port that another program holds, touching nothing of it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from deploy.local.federation import Federation, RunState
from deploy.local.process import (
    ManagedProcess, StartupError, free_port, is_alive, members, port_holders,
)

ROOT = Path(__file__).resolve().parents[2]


class Forking(ManagedProcess):
    """A server that starts two children of its own, as a wrapper or a pre-forking server does."""

    name = "forking"

    def __init__(self, tmp: Path) -> None:
        super().__init__(log_path=tmp / "forking.log")

    def command(self) -> list[str]:
        return ["sh", "-c", "sleep 600 & sleep 600 & wait"]

    def probe(self) -> str | None:
        return None if len(members(self.pid)) == 3 else "children not started yet"


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def forking(tmp_path):
    proc = Forking(tmp_path)
    proc.start(timeout=10)
    yield proc
    proc.kill()


def test_a_server_killed_hard_leaves_orphans_that_its_stop_still_ends(forking):
    children = [pid for pid in members(forking.pid) if pid != forking.pid]
    assert len(children) == 2
    os.kill(forking.pid, signal.SIGKILL)
    forking._reap()
    assert not is_alive(forking.pid, forking.started)
    # The orphans (now children of init) still carry the dead server's session.
    assert sorted(members(forking.pid, forking.started)) == sorted(children)
    forking.stop()
    assert members(forking.pid, forking.started) == []
    assert not any(is_alive(pid, None) for pid in children)


def test_kill_is_a_crash_of_the_whole_session(forking):
    everything = members(forking.pid)
    forking.kill()
    _wait(lambda: not any(is_alive(pid, None) for pid in everything))


def _federation(tmp_path: Path) -> Federation:
    # An offset no real federation uses here; nothing listens on these ports in this test
    # except what the test starts.
    return Federation(console=Console(file=open(os.devnull, "w")),
                      state=RunState(root=tmp_path / "run"), offset=1500)


def test_status_names_the_orphans_and_up_ends_them(tmp_path, forking):
    federation = _federation(tmp_path)
    federation.state.record("forking", forking, "-")
    children = [pid for pid in members(forking.pid) if pid != forking.pid]
    os.kill(forking.pid, signal.SIGKILL)
    forking._reap()

    row = next(r for r in federation.status() if r["name"] == "forking")
    assert row["health"].startswith("orphaned"), row
    assert all(str(pid) in row["health"] for pid in children), row

    ended = federation.clear_leftovers()
    assert sorted(ended) == sorted(children)
    assert federation.state.processes("forking") == []
    row = next(r for r in federation.status() if r["name"] == "forking")
    assert row["health"].startswith("process gone"), row


def _listener(port: int, cwd: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                             "127.0.0.1"], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _wait(lambda: port_holders(port) == [proc.pid])
    return proc


def test_a_leftover_of_the_checkout_on_a_port_of_the_federation_is_ended(tmp_path):
    federation = _federation(tmp_path)
    port = federation.ports()["salatiga-sessions"][0]
    leftover = _listener(port, federation.state.root / "logs")  # works in the run directory
    try:
        assert federation.clear_leftovers() == [leftover.pid]
        assert leftover.wait(timeout=15) is not None
    finally:
        leftover.kill()


def test_up_while_another_program_holds_a_port_fails_fast_naming_it_and_leaves_it_alone(tmp_path):
    offset = 1500
    port = Federation(offset=offset, state=RunState(root=tmp_path / "run")).ports()["ferretdb"][0]
    other = _listener(port, tmp_path / "elsewhere")  # another checkout's, say
    env = {**os.environ, "BANGKOM_RUN_DIR": str(tmp_path / "run"),
           "BANGKOM_PORT_OFFSET": str(offset)}
    try:
        began = time.monotonic()
        done = subprocess.run([str(Path(sys.executable).parent / "bangkom"), "up"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - began
        assert done.returncode == 1, done.stderr
        assert seconds < 5, f"{seconds:.1f} s"
        assert f"port {port} (ferretdb) is held by pid {other.pid}" in done.stderr, done.stderr
        assert "http.server" in done.stderr and "Traceback" not in done.stderr
        assert other.poll() is None, "the other program was touched"
        assert port_holders(port) == [other.pid]
        assert not (tmp_path / "run" / "state.json").exists(), "nothing was started"
    finally:
        other.kill()


def test_free_port_is_not_a_port_of_the_test_federations():
    # The healing tests run federations at offsets 1000 and 1500: their ports sit below the
    # kernel's ephemeral range, so no free_port() of a parallel test can take one.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert max(max(p) for p in Federation(offset=1500).ports().values()) < low
    assert free_port() >= low
    with socket.socket() as sock:  # and free_port's answer is a bindable port
        sock.bind(("127.0.0.1", free_port()))


def test_each_node_has_its_own_broker_unless_one_is_asked_for(tmp_path):
    federated = Federation(state=RunState(root=tmp_path / "a"), offset=0)
    assert federated.topology == "federated"  # what a new user gets
    nodes = ["national", "salatiga", "sawahlunto", "palu", "pematangsiantar"]
    assert [federated.bootstrap(n) for n in nodes] == [
        "127.0.0.1:19092", "127.0.0.1:19192", "127.0.0.1:19292", "127.0.0.1:19392",
        "127.0.0.1:19492"]
    assert "mirrormaker" in federated.ports() and "kafka-palu" in federated.ports()
    single = Federation(state=RunState(root=tmp_path / "b"), offset=0, single_broker=True)
    assert {single.bootstrap(n) for n in nodes} == {"127.0.0.1:19092"}
    assert "mirrormaker" not in single.ports()
    single.state.set_topology(single.topology)  # a later `up` (after a crash) keeps it
    assert Federation(state=RunState(root=tmp_path / "b"), offset=0).topology == "single-broker"


def test_a_new_run_directory_is_secured_and_one_made_plaintext_stays_so_until_wiped(tmp_path):
    assert Federation(state=RunState(root=tmp_path / "new"), offset=0).secure  # a new user's
    old = tmp_path / "old"
    (old / "kafka-palu" / "data").mkdir(parents=True)
    (old / "kafka-palu" / "data" / "meta.properties").write_text("")  # brokers made plaintext
    assert not Federation(state=RunState(root=old), offset=0).secure
    with pytest.raises(StartupError, match="made PLAINTEXT; `bangkom down --wipe` first"):
        Federation(console=Console(file=open(os.devnull, "w")), state=RunState(root=old),
                   offset=1500, secure=True).up()
    (tmp_path / "secured" / "security").mkdir(parents=True)
    with pytest.raises(StartupError, match="are secured; `bangkom down --wipe` first"):
        Federation(console=Console(file=open(os.devnull, "w")),
                   state=RunState(root=tmp_path / "secured"), offset=1500, secure=False).up()


def test_status_gives_a_services_own_reason_for_failing(monkeypatch):
    import httpx

    from deploy.local import federation

    said = {"status": "degraded", "database": "up",
            "kafka": "refused: Topic bangkom.palu.insights is not authorized for this client "
                     "(Kafka principal User:palu-sessions)"}
    monkeypatch.setattr(federation.httpx, "get",
                        lambda url, timeout: httpx.Response(503, json=said))
    assert federation.http_health("http://127.0.0.1:1") == (
        "GET /health answered 503: kafka refused: Topic bangkom.palu.insights is not authorized "
        "for this client (Kafka principal User:palu-sessions)")


def test_why_a_process_ended_is_read_from_the_end_of_its_log(tmp_path):
    import json

    from deploy.local.federation import last_error

    log = tmp_path / "palu-enrollment.log"
    lines = [{"level": "INFO", "message": "started"},
             {"level": "ERROR", "message": "Unable connect to node 1 (Kafka principal "
                                           "User:palu-enrollment): authentication failed"},
             {"level": "ERROR", "message": "some later error"},
             {"level": "ERROR", "message": "Application startup failed. Exiting."}]
    log.write_text("not json: a traceback line\n" + "".join(json.dumps(e) + "\n" for e in lines))
    # the refusal names who was refused: preferred to any later error
    assert last_error(log).startswith("Unable connect to node 1 (Kafka principal User:palu-enrollment)")
    log.write_text("".join(json.dumps(e) + "\n" for e in (lines[0], lines[2], lines[3])))
    assert last_error(log) == "some later error"
    log.write_text(json.dumps(lines[0]) + "\n")
    assert last_error(log) is None
    assert last_error(tmp_path / "absent.log") is None
