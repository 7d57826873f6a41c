"""Every test in this folder runs against the real Kafka and FerretDB (`infra`, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # conftest hooks see the whole session's items: mark only the ones in this folder.
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)

