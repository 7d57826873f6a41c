"""The one place the sessions service is wired: settings, database, broker, relay, routes.

    uvicorn --factory services.sessions.app:create_app
"""

from __future__ import annotations

from fastapi import FastAPI

from services.sessions import api, consumers, store, web
from services.sessions.handlers import SERVICE, SessionsService
from shared import logging as json_logging
from shared.http import create_api
from shared.kafka import make_broker, report_lag
from shared.mongo import connect
from shared.node import running, when_reachable
from shared.outbox import Relay
from shared.settings import Settings
from shared.topics import deadletter_topic, topic


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

    def lifespan(_: FastAPI):
        return running(
            settings, client=client, broker=broker, relay=relay,
            topics=[topic(node, "enrollment"), own_topic, topic(node, "insights"),
                    deadletter_topic(node)],
            background=[when_reachable("indexes", mongo_store.ensure_indexes),
                        report_lag(settings, groups)])

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

