import shutil

import pytest

from deploy.local.tools import install_command


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's promtool (`bangkom test` installs it when run as root); missing, a failure."""
    path = shutil.which("promtool")
    if not path:
        pytest.fail(f"promtool is not installed: {install_command(['prometheus'])} (as root)")
    return path
