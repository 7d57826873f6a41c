"""The dependency lock (deploy/lockfile.py): made from the dependency lists pyproject.toml has
now, every requirement pinned with hashes, the image's lock a part of the suite's."""

import re
import subprocess
import sys

from deploy.lockfile import LOCKS, ROOT, inputs_digest, stale


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", text, re.M))


def test_the_lock_is_made_from_the_dependencies_of_now():
    assert stale() == [], "run ./dev lock and commit requirements/"


def test_every_requirement_is_pinned_with_a_hash():
    for name in LOCKS:
        text = (ROOT / "requirements" / name).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        assert blocks and all("==" in b and "--hash=sha256:" in b for b in blocks if b.strip()), name


def test_the_image_gets_the_versions_the_suite_runs():
    runtime, test = _pins("runtime.txt"), _pins("test.txt")
    assert {"faststream", "aiokafka", "pymongo", "fastapi"} <= set(runtime)
    assert {k: v for k, v in test.items() if k in runtime} == runtime
    assert "pytest" in test and "pytest" not in runtime


def test_a_change_of_the_dependencies_makes_the_lock_stale(tmp_path):
    pyproject = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "requirements").mkdir()
    for name in LOCKS:
        (tmp_path / "requirements" / name).write_text((ROOT / "requirements" / name).read_text())
    (tmp_path / "pyproject.toml").write_text(pyproject.replace('"rich>=13"', '"rich>=14"'))
    assert inputs_digest(tmp_path / "pyproject.toml") != inputs_digest()
    assert stale(tmp_path) == ["requirements/runtime.txt", "requirements/test.txt"]
    (tmp_path / "pyproject.toml").write_text(pyproject.replace("[tool.ruff]", "[tool.ruff]\n# x"))
    assert stale(tmp_path) == []  # only the dependency lists count


def test_dev_names_the_command_when_the_lock_is_stale(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "lockfile.py").write_text((ROOT / "deploy" / "lockfile.py").read_text())
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    done = subprocess.run([sys.executable, "deploy/lockfile.py", "check"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "./dev lock" in done.stderr, done.stderr
