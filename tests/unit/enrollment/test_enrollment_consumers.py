"""The catalogue subscriber, through FastStream's in-memory TestKafkaBroker."""

import datetime as dt

from faststream.kafka import TestKafkaBroker

from services.enrollment.consumers import catalogue_group, register_consumers
from shared.events import Envelope, SessionScheduled
from shared.kafka import make_broker
from shared.settings import Settings

from enrollment_fakes import fake_deps


async def test_a_scheduled_session_reaches_the_catalogue_once():
    settings = Settings(node="salatiga", service="enrollment")
    deps = fake_deps()
    broker = make_broker(settings)
    register_consumers(broker, deps, settings)
    payload = SessionScheduled(
        session_id="s-7", title="Kepemimpinan Pengawas", competency_type="managerial",
        competency="leadership", method="blended", provider="national-institute", jp=40,
        start_date=dt.date(2027, 1, 11), end_date=dt.date(2027, 1, 15), days=5, capacity=30,
        planned_cost=45_000_000)
    raw = Envelope.wrap(payload, city="salatiga", service="sessions").to_bytes()
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(raw, topic="bangkom.salatiga.sessions")
        await test_broker.publish(raw, topic="bangkom.salatiga.sessions")  # redelivered
    roster = deps.rosters.docs["s-7"]
    assert (roster.info.capacity, roster.info.title, roster.version) == (30, "Kepemimpinan Pengawas", 1)
    assert catalogue_group("salatiga") == "bangkom.salatiga.enrollment.catalogue"
