"""The dependency lock: requirements/runtime.txt (the services, the image) and
requirements/test.txt (./dev, CI), exact versions with their hashes, made by uv from
pyproject.toml. Standard library only: ./dev runs it before anything is installed.

    python deploy/lockfile.py check   # exit 1, naming the command, if the lock is out of date
    python deploy/lockfile.py write   # resolve anew (uv from PyPI into .venv when missing)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {"runtime.txt": [], "test.txt": ["--extra", "test"]}
MARK = "# pyproject dependencies: "
UV = "uv==0.13.10"


def inputs_digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """What the lock was made from: the dependency lists, not the rest of pyproject.toml."""
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = {"python": project.get("requires-python"), "dependencies": project["dependencies"],
              "optional": project.get("optional-dependencies", {})}
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


def stale(root: Path = ROOT) -> list[str]:
    """The lock files that are missing or were made from other dependency lists."""
    digest = inputs_digest(root / "pyproject.toml")
    out = []
    for name in LOCKS:
        path = root / "requirements" / name
        if not path.exists() or f"{MARK}{digest}" not in path.read_text():
            out.append(f"requirements/{name}")
    return out


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", UV], check=True)
    return found


def write() -> None:
    uv, digest = _uv(), inputs_digest()
    (ROOT / "requirements").mkdir(exist_ok=True)
    for name, extra in LOCKS.items():
        path = ROOT / "requirements" / name
        subprocess.run([uv, "pip", "compile", "pyproject.toml", *extra, "--generate-hashes",
                        "--universal", "--python-version", "3.11", "--quiet",
                        "--no-header", "-o", str(path)], cwd=ROOT, check=True)
        path.write_text(f"# made by `./dev lock` (deploy/lockfile.py) from pyproject.toml\n"
                        f"{MARK}{digest}\n{path.read_text()}")
        print(f"wrote requirements/{name}")


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        if missing := stale():
            sys.exit(f"dev: {', '.join(missing)} out of date with pyproject.toml's dependencies:"
                     " run `./dev lock` and commit the result")
    elif sys.argv[1:] == ["write"]:
        write()
    else:
        sys.exit(__doc__)
