"""The one wiring place of the city enrollment service.

    uvicorn --factory services.enrollment.app:create_app
"""

from __future__ import annotations

from fastapi import FastAPI

from shared import logging as json_logging
from shared import node, outbox
from shared.http import create_api
from shared.kafka import make_broker, report_lag
from shared.mongo import connect
from shared.settings import Settings
from shared.topics import deadletter_topic, topic

from . import store
from .api import router
from .consumers import catalogue_group, register_consumers
from .handlers import Deps
from . import web


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

    def lifespan(_: FastAPI):
        return node.running(
            settings, client=client, broker=broker, relay=relay,
            topics=[own_topic, topic(settings.node, "sessions"), deadletter_topic(settings.node)],
            background=[node.when_reachable("indexes", lambda: store.ensure_indexes(db)),
                        node.when_reachable("staff count", deps.staff.total),
                        report_lag(settings, [catalogue_group(settings.node)])])

    async def ping(_: FastAPI) -> None:
        await db.command("ping")

    app = create_api(settings, title=f"Bangkom enrollment ({settings.node})", service="enrollment",
                     lifespan=lifespan, health=ping)
    app.state.deps = deps
    app.include_router(router)
    app.include_router(web.router)
    return app

