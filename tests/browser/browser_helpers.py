"""Helpers of the browser tests: the services under test, signing in, screenshots."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from deploy.local.process import run_coroutine
from shared.events import Envelope
from shared.topics import topic

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CITY = "pematangsiantar"  # the integration tests use the other cities; no consumer group shared


def _service(infra, node: str, service: str, **env):
    """A service of `node` already started in this test session, or a new one."""
    for proc in infra.services:
        if (proc.node, proc.service) == (node, service) and proc.running() \
                and not proc.env.get("BANGKOM_FAULT"):
            return proc
    return infra.start_service(node, service, **env)


class Federation:
    def __init__(self, infra):
        self.infra = infra
        self.enrollment = _service(infra, CITY, "enrollment", outbox_poll_seconds="0.05")
        self.sessions = _service(infra, CITY, "sessions", outbox_poll_seconds="0.05")
        # Its own figures database, hence its own consumer group: it reads every event itself.
        self.national = infra.start_service("national", "evaluation", mongo_db="bangkom_national_browser")

    def token(self, role: str = "operator") -> str:
        return self.infra.token(CITY, role)

    def figures(self, timeout: float = 90.0) -> dict:
        """The national figures once they are loaded (503 until then)."""
        deadline = time.monotonic() + timeout
        while True:
            response = httpx.get(f"{self.national.url}/figures", timeout=10)
            if response.status_code == 200:
                return response.json()
            assert time.monotonic() < deadline, response.text
            time.sleep(0.5)

    def publish_insight(self, insight) -> None:
        """What the national evaluation would send to this city's insights topic."""
        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.infra.kafka_bootstrap, acks="all")
            await producer.start()
            try:
                envelope = Envelope.wrap(insight, city=CITY, service="evaluation")
                await producer.send_and_wait(topic(CITY, "insights"), envelope.to_bytes(),
                                             key=envelope.subject.encode())
            finally:
                await producer.stop()
        run_coroutine(send, timeout=30)  # in a thread: Playwright's loop owns this one

    def city_url(self, service: str, path: str) -> str:
        """A page URL that also tells the page where its peer service is (ports are random here)."""
        base = (self.enrollment if service == "enrollment" else self.sessions).url
        sep = "&" if "?" in path else "?"
        return f"{base}{path}{sep}enrollment={self.enrollment.url}&sessions={self.sessions.url}"


def shot(page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def sign_in(page, federation: Federation, role: str = "operator", path: str = "/ui/staff") -> None:
    page.goto(federation.city_url("enrollment", f"/ui/login?next={path}"))
    page.fill("#token", federation.token(role))
    page.click("#signin button[type=submit]")
    try:
        page.wait_for_url(f"{federation.enrollment.url}{path}")
    except Exception as exc:
        shot(page, "failed-sign-in")
        raise AssertionError(f"sign-in did not lead to {path}: {page.url} "
                             f"{page.locator('#signin').inner_text()}") from exc
