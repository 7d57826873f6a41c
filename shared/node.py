"""How a city service runs: what starts before it serves and stops after it, in one order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from shared.heartbeat import beat_forever
from shared.kafka_admin import ensure_node_topics
from shared.mongo import UNAVAILABLE
from shared.outage import Outage
from shared.outbox import Relay
from shared.settings import Settings
from shared.topics import HEARTBEAT, topic

log = logging.getLogger(__name__)


async def when_reachable(what: str, operation: Callable[[], Awaitable[Any]]) -> None:
    """Run `operation` once the database answers. For start-up work that is useful but not
    needed to serve (indexes): a database down at boot must not keep the API, which answers
    503 meanwhile, from coming up."""
    delay = 0.5
    outage = Outage(what, log)
    while True:
        try:
            await operation()
            outage.succeeded()
            return
        except UNAVAILABLE as exc:
            outage.failed(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


@asynccontextmanager
async def running(
    settings: Settings,
    *,
    client: AsyncMongoClient,
    broker: KafkaBroker,
    relay: Relay,
    topics: Sequence[str],
    background: Sequence[Coroutine[Any, Any, None]] = (),
) -> AsyncIterator[None]:
    """The service's topics exist, its consumers and outbox relay run, its heartbeat and the
    `background` tasks go on until shutdown; then everything stops in reverse order."""
    await ensure_node_topics(settings, [*topics, topic(settings.node, HEARTBEAT)])
    tasks = [asyncio.create_task(work) for work in (*background, beat_forever(settings))]
    await broker.start()
    await relay.start()
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await relay.stop()
        await broker.stop()
        await client.close()
