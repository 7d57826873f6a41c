"""Kafka entry points of the enrollment service: thin subscribers around the handlers.

The catalogue comes only from the sessions stream (never from the sessions database), so the
two services can be deployed, scaled and broken independently.
"""

from faststream.kafka import KafkaBroker

from shared.events import Envelope, EventData
from shared.kafka import subscribe_events
from shared.settings import Settings
from shared.topics import group, topic

from . import handlers
from .handlers import Deps


def catalogue_group(city: str) -> str:
    return group(city, "enrollment", "catalogue")


def register_consumers(broker: KafkaBroker, deps: Deps, settings: Settings) -> None:
    async def on_session_event(envelope: Envelope, payload: EventData) -> str:
        return await handlers.apply_session_event(deps, envelope, payload)

    # subscribe_events: group as named, ACK only after the handler returned, dead-letters bad input.
    subscribe_events(broker, topics=[topic(settings.node, "sessions")], group=catalogue_group(settings.node),
                     settings=settings, handler=on_session_event)
