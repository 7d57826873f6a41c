"""Every test in this folder runs against the real Kafka and FerretDB (`infra`, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # conftest hooks see the whole session's items: mark only the ones in this folder.
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)



async def _eventually(probe, timeout: float = 30.0):
    """`await probe()` until it gives something truthy or `timeout` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


@pytest.fixture
def eventually():
    return _eventually
