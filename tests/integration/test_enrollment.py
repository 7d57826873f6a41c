"""The city enrollment service on real Kafka and FerretDB: catalogue from the sessions stream,
CSV import, enroll, waitlist, cancel, promote, and what leaves the city on its topic."""

import asyncio
import datetime as dt
import random
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.events import Envelope, SessionScheduled, decode

CITY = "salatiga"
SESSIONS_TOPIC, ENROLLMENT_TOPIC = f"bangkom.{CITY}.sessions", f"bangkom.{CITY}.enrollment"


def nip(birth: str, appointed: str, sex: str) -> str:
    # A random sequence keeps this test independent of others sharing the session's database.
    return f"{birth}{appointed}{sex}{random.randint(1, 999):03d}"


@pytest.fixture(scope="module")
def service(infra):
    proc = infra.start_service(CITY, "enrollment", outbox_poll_seconds="0.05")
    yield proc
    # Later modules start their own salatiga enrollment: ours must not share its consumer
    # group and outbox with theirs.
    proc.stop()


async def publish_session(infra, capacity: int) -> str:
    session_id = f"it-{uuid.uuid4().hex[:10]}"
    start = dt.date.today() + dt.timedelta(days=30)
    payload = SessionScheduled(
        session_id=session_id, title="Pelayanan Publik Digital", competency_type="technical",
        competency="e-government", method="classroom", provider="city", jp=16, start_date=start,
        end_date=start + dt.timedelta(days=1), days=2, capacity=capacity, planned_cost=7_500_000)
    envelope = Envelope.wrap(payload, city=CITY, service="sessions")
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(SESSIONS_TOPIC, envelope.to_bytes(), key=envelope.subject.encode())
    finally:
        await producer.stop()
    return session_id


async def test_enroll_waitlist_cancel_promote_reaches_kafka_in_order_without_personal_data(
        eventually, infra, service):
    budi, sri = nip("19850315", "201012", "1"), nip("19900101", "201503", "2")
    names = ("Budi Santoso Integrasi", "Sri Wahyuni Integrasi")
    csv = (f"nip,nama,unit_kerja,jenis_jabatan,golongan,nip_atasan\n"
           f"{budi},{names[0]},Bappeda,struktural,IV/a,\n"
           f"198702292010121001,Tanggal Salah,Bappeda,umum,II,\n"
           f"{sri},{names[1]},Bappeda,fungsional,III/b,{budi}\n")
    session_id = await publish_session(infra, capacity=1)
    async with httpx.AsyncClient(base_url=service.url, headers=infra.auth(CITY), timeout=10) as http:
        async def catalogued():
            items = (await http.get("/sessions")).json()["items"]
            return [s for s in items if s["session_id"] == session_id]
        assert (await eventually(catalogued))[0]["capacity"] == 1

        imported = (await http.post("/staff/import", content=csv, headers={"content-type": "text/csv"})).json()
        assert (imported["created"], imported["rejected"]) == (2, 1)
        assert [(e["line"], e["field"]) for e in imported["errors"]] == [(3, "nip")]
        again = (await http.post("/staff/import", files={"file": ("pegawai.csv", csv.encode(), "text/csv")})).json()
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)

        first = await http.post("/enrollments", json={"session_id": session_id, "nip": budi, "nominated_by": "supervisor"})
        second = await http.post("/enrollments", json={"session_id": session_id, "nip": sri, "nominated_by": "self"})
        assert (first.status_code, first.json()["status"]) == (201, "enrolled")
        assert (second.status_code, second.json()["status"]) == (201, "waitlisted")
        double = await http.post("/enrollments", json={"session_id": session_id, "nip": sri, "nominated_by": "self"})
        assert (double.status_code, double.json()["errors"][0]["field"]) == (409, "nip")

        cancelled = await http.post(f"/enrollments/{first.json()['enrollment_id']}/cancel", json={"reason": "busy"})
        assert cancelled.json()["promoted"] == [second.json()["enrollment_id"]]
        roster = (await http.get(f"/sessions/{session_id}/roster")).json()
        assert [p["name"] for p in roster["enrolled"]] == [names[1]] and roster["waitlist"] == []

    async def session_events():
        records = await infra.read_topic(ENROLLMENT_TOPIC)
        mine = [r for r in records if r.key == f"session/{session_id}".encode()]
        return records if len(mine) >= 4 else None

    records = await eventually(session_events)
    assert records, "the outbox relay did not publish the four enrollment events"
    mine = [decode(r.value) for r in records if r.key == f"session/{session_id}".encode()]
    assert [env.type for env, _ in mine] == [
        "bangkom.enrollment.created.v1", "bangkom.enrollment.waitlisted.v1",
        "bangkom.enrollment.cancelled.v1", "bangkom.enrollment.promoted.v1"]
    assert len({r.partition for r in records if r.key == f"session/{session_id}".encode()}) == 1
    promoted = mine[3][1]
    assert promoted.enrollment_id == second.json()["enrollment_id"]
    everything = b"\n".join(r.value for r in records)
    for personal in (budi, sri, *names, *(n.split()[0] for n in names)):
        assert personal.encode() not in everything
    # The second import published nothing: one StaffRegistered per person.
    person_ids = {mine[0][1].person_id, mine[1][1].person_id}
    registered = [p for env, p in map(decode, (r.value for r in records))
                  if env.type == "bangkom.staff.registered.v1" and p.person_id in person_ids]
    assert len(registered) == 2


async def test_concurrent_enrollments_never_overbook_and_keep_one_waitlist_order(
        eventually, infra, service):
    people = [f"19770707200001{1 + i % 2}{random.randint(100, 999)}" for i in range(12)]
    people = list(dict.fromkeys(people))  # the random sequence could repeat
    csv = "nip,name,unit,position_type,rank_group\n" + "".join(
        f"{p},Peserta {i},Dinas Kesehatan,general,II\n" for i, p in enumerate(people))
    session_id = await publish_session(infra, capacity=3)
    async with httpx.AsyncClient(base_url=service.url, headers=infra.auth(CITY), timeout=30) as http:
        await http.post("/staff/import", content=csv, headers={"content-type": "text/csv"})

        async def catalogued():
            return (await http.get(f"/sessions/{session_id}/roster")).status_code == 200
        assert await eventually(catalogued)

        answers = await asyncio.gather(*(
            http.post("/enrollments", json={"session_id": session_id, "nip": p, "nominated_by": "self"})
            for p in people))
        assert [a.status_code for a in answers] == [201] * len(people)
        roster = (await http.get(f"/sessions/{session_id}/roster")).json()

    assert len(roster["enrolled"]) == 3
    assert [p["position"] for p in roster["waitlist"]] == list(range(1, len(people) - 2))
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses.count("enrolled") == 3 and statuses.count("waitlisted") == len(people) - 3
    assert roster["session"]["seats_left"] == 0
