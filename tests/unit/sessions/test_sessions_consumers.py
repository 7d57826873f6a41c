"""The roster and insight subscribers, through FastStream's in-memory TestKafkaBroker."""

import datetime as dt

import pytest
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from services.sessions import consumers, domain
from services.sessions.handlers import SessionsService
from sessions_builders import FakeSessionStore, created, pid, plan, waitlisted
from shared.events import Envelope, InsightPublished
from shared.settings import Settings

SETTINGS = Settings(node="salatiga", service="sessions")
NOW = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)


async def scheduled_service():
    store = FakeSessionStore()
    session, _ = domain.schedule(plan(), session_id="S1", city="salatiga")
    await store.add_session(session, [])
    return store, SessionsService(store, SETTINGS, clock=lambda: NOW)


async def test_roster_subscriber_applies_a_redelivered_enrollment_once():
    store, service = await scheduled_service()
    broker = KafkaBroker()
    consumers.register(broker, service, SETTINGS)
    ani = Envelope.wrap(created("ani"), city="salatiga", service="enrollment", time=NOW)
    budi = Envelope.wrap(waitlisted("budi"), city="salatiga", service="enrollment", time=NOW)
    async with TestKafkaBroker(broker) as test_broker:
        for message in (ani, ani, budi):
            await test_broker.publish(message.to_bytes(), topic="bangkom.salatiga.enrollment",
                                      key=message.subject.encode())
    session, version = await store.get_session("S1")
    assert session.participants() == [pid("ani")]
    assert session.roster[pid("budi")].status == "waitlisted"
    assert session.applied_events == [str(ani.id), str(budi.id)]
    assert version == 3  # inserted, then two changes: the redelivery wrote nothing


@pytest.mark.timeout(20)
async def test_an_unreadable_message_goes_to_the_dead_letter_topic():
    _, service = await scheduled_service()
    broker = KafkaBroker()
    consumers.register(broker, service, SETTINGS)
    dead = []

    @broker.subscriber("bangkom.salatiga.deadletter")
    async def collect(message: KafkaMessage) -> None:
        dead.append(message.headers.get("x-bangkom-reason", ""))

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"not json", topic="bangkom.salatiga.enrollment")
    assert len(dead) == 1 and dead[0].startswith("contract:")


async def test_insight_subscriber_stores_each_insight_once():
    store, service = await scheduled_service()
    broker = KafkaBroker()
    consumers.register(broker, service, SETTINGS)
    insight = InsightPublished(insight_id="i-9", kind="low-completion", year=2026, title="t",
                               detail="d")
    message = Envelope.wrap(insight, city="salatiga", service="evaluation", time=NOW)
    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):
            await test_broker.publish(message.to_bytes(), topic="bangkom.salatiga.insights")
    assert list(store.insights) == ["i-9"]
