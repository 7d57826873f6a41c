"""The one place the national evaluation service is wired: settings, database, ingest, routes.

Run with `uvicorn --factory services.evaluation.app:create_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.evaluation import api, web
from services.evaluation.heard import Heard, listen
from services.evaluation.ingest import NationalIngest
from services.evaluation.store import DeltaStore
from shared import logging as json_logging
from shared.http import create_api
from shared.kafka_admin import ensure_node_topics
from shared.mongo import connect
from shared.settings import Settings
from shared.topics import NATIONAL, deadletter_topic

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    # This process is the national evaluation whatever the environment says.
    settings = (settings or Settings(node=NATIONAL, service="evaluation")).model_copy(
        update={"service": "evaluation"})
    json_logging.configure(settings, "evaluation")
    client = connect(settings)
    ingest = NationalIngest(settings, DeltaStore(client[settings.database]))
    heard = Heard(settings.behind_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ensure_node_topics(settings, [deadletter_topic(settings.node)])
        # Loading and consuming run in the background: /health answers at once, and the
        # figures answer 503 until the deltas are loaded (never a partial total).
        task = asyncio.create_task(ingest.run(), name="national-ingest")
        task.add_done_callback(_log_end)
        listener = asyncio.create_task(listen(settings, heard), name="national-heard")
        listener.add_done_callback(_log_end)
        try:
            yield
        finally:
            for work in (listener, task):
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
            await client.close()

    async def health(_: FastAPI) -> None:
        await client.admin.command("ping")

    return build_api(settings, ingest, heard, lifespan=lifespan, health=health)


def build_api(settings: Settings, ingest: NationalIngest, heard: Heard | None = None,
              **hooks) -> FastAPI:
    """The HTTP app around an ingest (unit tests pass one filled in memory)."""
    app = create_api(settings, title="Bangkom national evaluation", service="evaluation", **hooks)
    app.state.ingest = ingest
    app.state.heard = heard or Heard(settings.behind_seconds)
    app.include_router(api.router)
    app.include_router(web.router)
    return app


def _log_end(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())
