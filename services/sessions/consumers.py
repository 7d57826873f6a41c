"""Kafka entry points of the sessions service: which topics, which groups, which use case.

Both subscribers go through shared.kafka.subscribe_events: commit after processing, dead-letter
for what cannot be read, retries for a database outage. The use cases are idempotent.
"""

from faststream.kafka import KafkaBroker

from services.sessions.handlers import SessionsService
from shared.kafka import subscribe_events
from shared.settings import Settings
from shared.topics import group, topic


def roster_group(node: str) -> str:
    return group(node, "sessions", "roster")


def insights_group(node: str) -> str:
    return group(node, "sessions", "insights")


def register(broker: KafkaBroker, sessions: SessionsService, settings: Settings) -> None:
    # The roster is learned only from enrollment events, never from the enrollment database.
    subscribe_events(
        broker, topics=[topic(settings.node, "enrollment")], group=roster_group(settings.node),
        settings=settings, handler=sessions.apply_enrollment_event,
    )
    subscribe_events(
        broker, topics=[topic(settings.node, "insights")], group=insights_group(settings.node),
        settings=settings, handler=sessions.store_insight,
    )
