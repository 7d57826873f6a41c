"""The one place the sessions service is wired: settings, database, broker, relay, routes.

    uvicorn --factory services.sessions.app:create_app
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.sessions import api, consumers, store, web
from services.sessions.handlers import SERVICE, SessionsService
from shared import logging as json_logging
from shared.http import create_api
from shared.kafka import ensure_topics, make_broker, report_lag
from shared.mongo import UNAVAILABLE, connect
from shared.outbox import Relay
from shared.settings import Settings
from shared.topics import deadletter_topic, topic

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    # This process is the sessions service whatever BANGKOM_SERVICE says, so it can never
    # open another service's database.
    settings = (settings or Settings(service=SERVICE)).model_copy(update={"service": SERVICE})
    json_logging.configure(settings, SERVICE)
    node = settings.node
    client = connect(settings)
    db = client[settings.database]
    mongo_store = store.MongoSessionStore(db)
    sessions = SessionsService(mongo_store, settings)
    broker = make_broker(settings)
    consumers.register(broker, sessions, settings)
    own_topic = topic(node, "sessions")
    relay = Relay(db, store.OUTBOX_COLLECTIONS, settings, SERVICE, dedupe_topics=[own_topic])
    groups = [consumers.roster_group(node), consumers.insights_group(node)]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings.kafka_bootstrap, [
            topic(node, "enrollment"), own_topic, topic(node, "insights"), deadletter_topic(node),
        ])
        background = [
            asyncio.create_task(_ensure_indexes(mongo_store)),
            asyncio.create_task(report_lag(settings, groups)),
        ]
        await broker.start()
        await relay.start()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await relay.stop()
            await broker.stop()
            await client.close()

    async def ping(_: FastAPI) -> None:
        await db.command("ping")

    return build_api(settings, sessions, lifespan=lifespan, health=ping)


def build_api(settings: Settings, sessions: SessionsService, **hooks) -> FastAPI:
    """The HTTP app around a SessionsService (unit tests pass one over an in-memory store)."""
    app = create_api(settings, title=f"Bangkom sessions ({settings.node})", service=SERVICE, **hooks)
    app.state.sessions = sessions
    app.include_router(api.router)
    app.include_router(web.router)
    return app


async def _ensure_indexes(mongo_store: store.MongoSessionStore) -> None:
    """Indexes speed reads up but are not needed to start: a database down at boot must not
    keep the API (which answers 503 meanwhile) from coming up."""
    delay = 0.5
    while True:
        try:
            await mongo_store.ensure_indexes()
            return
        except UNAVAILABLE as exc:
            log.warning("indexes not created yet (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
