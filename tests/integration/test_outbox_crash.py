"""A state change and its event are never separated by a crash, and never published twice.

The enrollment service is SIGKILLed by its own relay (BANGKOM_FAULT) at the two dangerous
moments: after the change is stored but before its event is published, and after the event is
published but before the outbox entry is removed. After a restart each event is on Kafka
exactly once. Real Kafka, real FerretDB, real processes.
"""

import asyncio
import time

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from shared.events import decode
from shared.pseudonym import person_id
from shared.topics import topic

CITY = "sawahlunto"


def staff(nip: str, name: str) -> dict:
    return {"nip": nip, "name": name, "unit": "Bappeda", "position_type": "functional",
            "rank_group": "III/b"}


async def events_for(infra, subject_suffix: str, *, settle: float = 3.0) -> list[str]:
    """Ids of the events on the city's enrollment topic whose subject ends with the suffix."""
    consumer = AIOKafkaConsumer(topic(CITY, "enrollment"), bootstrap_servers=infra.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    ids: list[str] = []
    deadline = time.monotonic() + settle
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    envelope, _ = decode(record.value)
                    if envelope.subject.endswith(subject_suffix):
                        ids.append(str(envelope.id))
    finally:
        await consumer.stop()
    return ids


def wait_dead(proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while proc.running():
        assert time.monotonic() < deadline, "the fault point was never reached"
        time.sleep(0.2)


@pytest.mark.parametrize("fault", ["relay-before-publish", "relay-after-publish"])
async def test_a_crash_around_the_publish_still_publishes_the_event_exactly_once(infra, fault):
    proc = infra.start_service(CITY, "enrollment", BANGKOM_FAULT=fault)
    nip = "198703122010011001" if fault == "relay-before-publish" else "199002202014022001"
    r = httpx.post(f"{proc.url}/staff", json=staff(nip, "Rina Oktaviani"),
                   headers=infra.auth(CITY), timeout=10)
    assert r.status_code in (200, 201), r.text
    person = person_id(nip, infra.pseudonym_secret)
    await asyncio.to_thread(wait_dead, proc)  # the relay killed the whole service process

    before = await events_for(infra, person, settle=2.0)
    assert len(before) == (0 if fault == "relay-before-publish" else 1)

    proc.env.pop("BANGKOM_FAULT")
    proc.start(timeout=60)
    after = await events_for(infra, person, settle=4.0)
    assert len(after) == 1, f"expected the StaffRegistered event exactly once, got {after}"
    if before:
        assert after == before
    # and the stored state survived the crash
    r = httpx.get(f"{proc.url}/staff/{nip}", headers=infra.auth(CITY), timeout=10)
    assert r.status_code == 200 and r.json()["name"] == "Rina Oktaviani"
    proc.stop()
