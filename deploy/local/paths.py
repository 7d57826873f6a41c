"""Where downloads, builds and run state live: the repo's gitignored `.cache/` and `.run/`."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Downloads and builds, reused by every run (CI points it at a directory kept across runs)."""
    configured = os.environ.get("BANGKOM_CACHE_DIR")
    return Path(configured).expanduser().resolve() if configured else REPO_ROOT / ".cache"


def run_dir() -> Path:
    """State of the local federation (pids, ports, tokens, data, logs): `down` and `status` read
    it from any shell."""
    return REPO_ROOT / ".run"
