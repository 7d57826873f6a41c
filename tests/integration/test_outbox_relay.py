"""The outbox relay on the real FerretDB and Kafka: it scans for pending documents only after a
start (and every RESCAN_SECONDS); in between it reads the documents this process wrote by `_id`.
Either way every staged event reaches its topic, once."""

from __future__ import annotations

import asyncio
import time
import uuid

from pymongo import AsyncMongoClient

from shared import outbox
from shared.events import Envelope, StaffRegistered, decode
from shared.kafka_admin import ensure_topics
from shared.pseudonym import person_id
from shared.settings import Settings
from shared.topics import topic

CITY = "relaykota"
TOPIC = topic(CITY, "enrollment")


def _event(n: int) -> Envelope:
    payload = StaffRegistered(person_id=person_id(f"19900101201501100{n}", "k"), unit="Bappeda",
                              position_type="general", rank_group="III", sex="M")
    return Envelope.wrap(payload, city=CITY, service="enrollment")


async def _published(infra, event: Envelope, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = {str(decode(r.value)[0].id) for r in await infra.read_topic(TOPIC)}
        if str(event.id) in ids:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"event {event.id} never reached {TOPIC}")


async def test_hinted_writes_are_published_without_a_scan_and_a_rescan_finds_the_rest(
        infra, monkeypatch):
    await ensure_topics(infra.kafka_bootstrap, [TOPIC])
    client = AsyncMongoClient(infra.mongo_url)
    db = client[f"bangkom_relay_test_{uuid.uuid4().hex[:8]}"]
    things = db["things"]
    settings = Settings(node=CITY, service="enrollment", kafka_bootstrap=infra.kafka_bootstrap,
                        mongo_url=infra.mongo_url, outbox_poll_seconds=0.05)
    relay = outbox.Relay(db, ["things"], settings, "enrollment", dedupe_topics=[TOPIC])
    scans: list[float] = []
    scan = relay._scan

    async def counted_scan(coll):
        scans.append(time.monotonic())
        return await scan(coll)

    relay._scan = counted_scan
    first, second, third = _event(1), _event(2), _event(3)
    try:
        # staged before the relay runs, as by a process that crashed: the start-up scan finds it
        await outbox.insert(things, {"_id": "doc"}, [first])
        await relay.start()
        await _published(infra, first)
        assert len(scans) == 1

        # staged by this process while the relay runs: published from the hint, no scan
        assert await outbox.update(things, "doc", 1, {"n": 2}, [second])
        await _published(infra, second)
        assert len(scans) == 1

        # staged behind the relay's back (no hint): the periodic rescan publishes it
        monkeypatch.setattr(outbox, "RESCAN_SECONDS", 0.5)
        await things.update_one({"_id": "doc"}, {
            "$push": {outbox.OUTBOX: outbox._entry(third)}, "$set": {outbox.PENDING: True},
            "$inc": {outbox.VERSION: 1}})
        await _published(infra, third)
        assert len(scans) >= 2

        # an entry whose removal was lost (read again after it was sent) is cleared, not resent
        await things.update_one({"_id": "doc"}, {
            "$push": {outbox.OUTBOX: outbox._entry(first)}, "$set": {outbox.PENDING: True}})
        relay.hint(things.full_name, "doc")
        deadline = time.monotonic() + 30
        while (await things.find_one({"_id": "doc"}))[outbox.OUTBOX]:
            assert time.monotonic() < deadline, "the stale entry was never cleared"
            await asyncio.sleep(0.1)
    finally:
        await relay.stop()
        await client.close()
    published = [str(decode(r.value)[0].id) for r in await infra.read_topic(TOPIC)]
    assert sorted(published) == sorted(str(e.id) for e in (first, second, third))  # once each
