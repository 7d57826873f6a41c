"""The thin path, for two cities at once, on the real broker and database:

POST an enrollment at a city node -> stored in that city's database -> EnrollmentCreated on
Kafka -> consumed by the national evaluation service -> the national API counts it.
A malformed message on a city topic on the way is dead-lettered and changes nothing.
"""

import asyncio
import datetime as dt
import time

import httpx
from aiokafka import AIOKafkaProducer

from shared.topics import topic

CITIES = {"salatiga": "198501012010011003", "palu": "199205172019032002"}


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def settled(read, quiet: float = 2.0, timeout: float = 60.0) -> int:
    """A value that has stopped changing: other tests' events may still be arriving."""
    last, since, deadline = read(), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
        if value != last:
            last, since = value, time.monotonic()
    return last


def national_enrollments(national, city: str) -> int:
    r = httpx.get(f"{national.url}/figures", timeout=10)
    if r.status_code != 200 or city not in r.json()["cities"]:
        return 0
    return r.json()["cities"][city]["enrollment"]["enrollments"]


async def test_an_enrollment_posted_at_a_city_is_counted_by_the_nation(infra):
    # Its own national database (and so its own consumer group): earlier tests in this session
    # wrote to the same topics, and this test counts from a settled baseline.
    national = infra.start_service("national", "evaluation", BANGKOM_MONGO_DB="thin_path_national")
    nodes = {city: (infra.start_service(city, "sessions"), infra.start_service(city, "enrollment"))
             for city in CITIES}
    try:
        await _thin_path(infra, national, nodes)
    finally:
        for proc in [national, *(p for pair in nodes.values() for p in pair)]:
            proc.stop()


async def _thin_path(infra, national, nodes) -> None:

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:  # garbage first: every consumer of the topic must skip it and keep going
        await producer.send_and_wait(topic("salatiga", "enrollment"), b"{not an event")
    finally:
        await producer.stop()

    baseline = {city: await asyncio.to_thread(settled, lambda c=city: national_enrollments(national, c))
                for city in CITIES}
    start = dt.date.today() + dt.timedelta(days=14)
    for city, nip in CITIES.items():
        sessions, enrollment = nodes[city]
        auth = infra.auth(city)
        r = httpx.post(f"{sessions.url}/sessions", headers=auth, timeout=10, json={
            "title": "Pelayanan Publik Digital", "competency_type": "technical",
            "competency": "e-government", "method": "blended", "provider": "city",
            "jp": 16, "days": 2, "start_date": str(start),
            "end_date": str(start + dt.timedelta(days=1)), "capacity": 20,
            "place": "Aula BKPSDM", "online_link": "https://elearning.example.go.id/kelas/1",
        })
        assert r.status_code == 201, r.text
        session_id = r.json()["session_id"]
        r = httpx.post(f"{enrollment.url}/staff", headers=auth, timeout=10, json={
            "nip": nip, "name": "Dewi Lestari", "unit": "Dinas Kominfo",
            "position_type": "general", "rank_group": "III/a"})
        assert r.status_code in (200, 201), r.text

        # The enrollment node learns the session from the sessions topic, not from its database.
        await asyncio.to_thread(wait_for, f"{city} catalogue", lambda sid=session_id, url=enrollment.url, auth=auth: any(
            s["session_id"] == sid for s in httpx.get(
                f"{url}/sessions", headers=auth, timeout=10).json()["items"]))
        r = httpx.post(f"{enrollment.url}/enrollments", headers=auth, timeout=10,
                       json={"session_id": session_id, "nip": nip, "nominated_by": "supervisor"})
        assert r.status_code == 201, r.text

    for city in CITIES:
        await asyncio.to_thread(wait_for, f"{city} in the national count",
                                lambda c=city: national_enrollments(national, c) > baseline[c])
        # counted once, and it stays counted once
        count = await asyncio.to_thread(settled, lambda c=city: national_enrollments(national, c))
        assert count == baseline[city] + 1

    # No personal data reached the nation.
    body = httpx.get(f"{national.url}/figures", timeout=10).text
    assert "Dewi Lestari" not in body and not any(nip in body for nip in CITIES.values())
