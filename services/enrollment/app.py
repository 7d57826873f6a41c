"""The one wiring place of the city enrollment service.

    uvicorn --factory services.enrollment.app:create_app
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from shared import logging as json_logging
from shared import outbox
from shared.http import create_api
from shared.kafka import ensure_topics, make_broker, report_lag
from shared.mongo import UNAVAILABLE, connect
from shared.settings import Settings
from shared.topics import deadletter_topic, topic

from . import store
from .api import router
from .consumers import catalogue_group, register_consumers
from .handlers import Deps
from . import web

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service="enrollment")
    json_logging.configure(settings, store.SERVICE)
    client = connect(settings)
    db = client[settings.database]
    deps = Deps(
        staff=store.StaffStore(db, settings.node),
        rosters=store.RosterStore(db, settings.node),
        needs=store.NeedStore(db, settings.node),
        city=settings.node,
        pseudonym_secret=settings.pseudonym_secret.get_secret_value(),
    )
    broker = make_broker(settings)
    register_consumers(broker, deps, settings)
    own_topic = topic(settings.node, "enrollment")
    relay = outbox.Relay(db, store.COLLECTIONS, settings, store.SERVICE, dedupe_topics=[own_topic])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings.kafka_bootstrap,
                            [own_topic, topic(settings.node, "sessions"), deadletter_topic(settings.node)])
        background = [asyncio.create_task(_ensure_indexes(db)),
                      asyncio.create_task(report_lag(settings, [catalogue_group(settings.node)]))]
        await broker.start()
        await relay.start()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await relay.stop()
            await broker.stop()
            await client.close()

    async def ping(_: FastAPI) -> None:
        await db.command("ping")

    app = create_api(settings, title=f"Bangkom enrollment ({settings.node})", service="enrollment",
                     lifespan=lifespan, health=ping)
    app.state.deps = deps
    app.include_router(router)
    app.include_router(web.router)
    return app


async def _ensure_indexes(db) -> None:
    """Indexes speed things up but are not needed to start: a database that is down at boot
    must not keep the API (which then answers 503) from coming up."""
    delay = 0.5
    while True:
        try:
            await store.ensure_indexes(db)
            return
        except UNAVAILABLE as exc:
            log.warning("indexes not created yet (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
