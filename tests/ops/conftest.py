import os
import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's promtool. Skips on a developer machine without it; CI (CI=true) must have it."""
    path = shutil.which("promtool")
    if path:
        return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("promtool is missing in CI: install Debian's `prometheus` package")
    pytest.skip("promtool not installed (apt-get install -y prometheus); CI runs these")
