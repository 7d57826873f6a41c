"""Browser tests: Debian's chromium driven by Playwright against real services.

The services run on the real Kafka and FerretDB of the session's `infra` fixture
(tests/conftest.py), shared with the integration tests. Every test here is marked `browser`; without
chromium they fail naming the install command (`bangkom test` installs it when run as root).
Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from browser_helpers import CHROMIUM, Federation

from playwright import sync_api as playwright

from deploy.local.tools import install_command

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def federation(infra) -> Federation:
    return Federation(infra)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is not installed: {install_command(['chromium'])} (as root)")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="id-ID",
                                  accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
