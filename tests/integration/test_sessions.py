"""The city sessions service on real Kafka and FerretDB: schedule, roster from the enrollment
stream (with a redelivery), attendance, tests, completion, and what leaves on its topic."""

import asyncio
import datetime as dt
import uuid
from collections import Counter

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.events import (
    EnrollmentCreated, EnrollmentWaitlisted, Envelope, InsightPublished, decode,
)
from shared.pseudonym import person_id

CITY = "salatiga"
ENROLLMENT_TOPIC, SESSIONS_TOPIC = f"bangkom.{CITY}.enrollment", f"bangkom.{CITY}.sessions"
INSIGHTS_TOPIC = f"bangkom.{CITY}.insights"


@pytest.fixture(scope="module")
def service(infra):
    return infra.start_service(CITY, "sessions", outbox_poll_seconds="0.05")


async def publish(infra, topic: str, envelopes: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(topic, envelope.to_bytes(), key=envelope.subject.encode())
    finally:
        await producer.stop()


def enrollment(infra, session_id: str, nip: str, *, waitlist: bool = False) -> Envelope:
    dims = dict(session_id=session_id, person_id=person_id(nip, infra.pseudonym_secret),
                enrollment_id=uuid.uuid4().hex, nominated_by="supervisor",
                unit="Dinas Komunikasi dan Informatika", position_type="functional",
                rank_group="III", sex="F")
    payload = EnrollmentWaitlisted(**dims, position=1) if waitlist else EnrollmentCreated(**dims)
    return Envelope.wrap(payload, city=CITY, service="enrollment")


async def test_a_session_from_schedule_to_completion_on_kafka(eventually, infra, service):
    today = dt.date.today()
    plan = {
        "title": "Keamanan Informasi untuk Pelayanan Publik", "competency_type": "technical",
        "competency": "IT and e-government", "method": "blended", "provider": "university",
        "speakers": ["Dr. Wulan (UKSW)"], "jp": 18, "days": 3,
        "start_date": str(today - dt.timedelta(days=4)),
        "end_date": str(today - dt.timedelta(days=2)), "place": "Aula Diskominfo",
        "online_link": "https://lms.salatiga.go.id/course/42", "capacity": 2,
        "planned_cost": 9_000_000,
    }
    async with httpx.AsyncClient(base_url=service.url, headers=infra.auth(CITY), timeout=10) as http:
        bad = await http.post("/sessions", json=plan | {"online_link": None})
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "online_link"
        response = await http.post("/sessions", json=plan)
        assert response.status_code == 201, response.text
        session_id = response.json()["session_id"]

        ani = enrollment(infra, session_id, "198503152010122001")
        budi = enrollment(infra, session_id, "199001012015031002")
        citra = enrollment(infra, session_id, "199205202018012003", waitlist=True)
        # ani's envelope twice: a redelivery must not count her twice
        await publish(infra, ENROLLMENT_TOPIC, [ani, ani, budi, citra])
        ani_id, budi_id = ani.data["person_id"], budi.data["person_id"]

        async def roster_learned():
            body = (await http.get(f"/sessions/{session_id}")).json()
            return body if len(body["roster"]) == 3 else None

        body = await eventually(roster_learned)
        assert body, "the roster never reached the sessions service"
        assert sorted(body["participants"]) == sorted([ani_id, budi_id])
        assert body["roster"][citra.data["person_id"]]["status"] == "waitlisted"

        for day in (1, 2, 3):
            present, absent = ([ani_id, budi_id], []) if day == 1 else ([ani_id], [budi_id])
            response = await http.post(f"/sessions/{session_id}/attendance",
                                       json={"day": day, "present": present, "absent": absent})
            assert response.status_code == 200, response.text
        for kind, scores in (("pre", {ani_id: 40, budi_id: 55}), ("post", {ani_id: 80, budi_id: 90})):
            response = await http.post(f"/sessions/{session_id}/assessments",
                                       json={"kind": kind, "scores": scores})
            assert response.status_code == 200, response.text

        response = await http.post(f"/sessions/{session_id}/complete", json={"actual_cost": 8_750_000})
        assert response.status_code == 200, response.text
        completion = response.json()["completion"]
        assert (completion["participants"], completion["completed"]) == (2, 1)
        certificate = next(o["certificate"] for o in completion["outcomes"] if o["completed"])
        assert certificate == f"SAL-{today.year}-{session_id}-001"

    async def published():
        records = await infra.read_topic(SESSIONS_TOPIC)
        mine = [decode(r.value) for r in records if r.key == f"session/{session_id}".encode()]
        return mine if any(e.type.endswith("session.completed.v1") for e, _ in mine) else None

    events = await eventually(published)
    assert events, "SessionCompleted never reached Kafka"
    counts = Counter(tuple(envelope.type.split(".")[1:3]) for envelope, _ in events)
    assert counts == {
        ("session", "scheduled"): 1, ("attendance", "recorded"): 6,
        ("assessment", "recorded"): 4, ("participant", "completed"): 1,
        ("session", "completed"): 1,
    }
    completed = [p for e, p in events if e.type == "bangkom.participant.completed.v1"]
    assert (completed[0].person_id, completed[0].jp, completed[0].method) == (ani_id, 18, "blended")
    summary = events[-1][1]
    assert (summary.participants, summary.completed, summary.actual_cost) == (2, 1, 8_750_000)
    assert len({e.id for e, _ in events}) == len(events)  # the relay published each event once


async def test_insights_from_the_nation_are_stored_once(eventually, infra, service):
    insight = InsightPublished(
        insight_id=f"it-{uuid.uuid4().hex[:8]}", kind="jp-shortfall", year=2026,
        title="ASN di bawah 20 JP", detail="Dinas Pendidikan: 40% ASN di bawah 20 JP",
        figures={"share_below_20": 0.4})
    envelope = Envelope.wrap(insight, city=CITY, service="evaluation")
    await publish(infra, INSIGHTS_TOPIC, [envelope, envelope])
    async with httpx.AsyncClient(base_url=service.url, headers=infra.auth(CITY, "viewer")) as http:
        async def stored():
            found = [i for i in (await http.get("/insights")).json()
                     if i["insight_id"] == insight.insight_id]
            return found or None

        assert await eventually(stored)
        await asyncio.sleep(1.0)  # give the redelivered copy its chance to (not) appear
        assert len(await stored()) == 1

        # The nation publishes a newer version under the same id (fewer people below 20 JP);
        # an older copy arriving after it must not bring the old figures back.
        newer = insight.model_copy(update={"figures": {"share_below_20": 0.25}})
        later = envelope.time + dt.timedelta(days=7)
        await publish(infra, INSIGHTS_TOPIC, [
            Envelope.wrap(newer, city=CITY, service="evaluation", time=later), envelope])

        async def updated():
            found = await stored()
            return found if found and found[0]["figures"] == {"share_below_20": 0.25} else None

        assert await eventually(updated)
        await asyncio.sleep(1.0)
        assert [i["figures"] for i in await stored()] == [{"share_below_20": 0.25}]


async def test_surveys_feedback_and_lists_on_the_real_database(eventually, infra, service):
    period = f"20{uuid.uuid4().int % 90 + 10:02d}-07"  # a fresh unit-period pair per run
    survey = {"unit": "Dinas Kependudukan dan Pencatatan Sipil", "period": period,
              "respondents": 210, "element_means": [3.6, 3.5, 3.55, 3.5, 3.52, 3.54, 3.5, 3.56, 3.5216]}
    async with httpx.AsyncClient(base_url=service.url, headers=infra.auth(CITY), timeout=10) as http:
        response = await http.post("/surveys", json=survey)
        assert response.status_code == 201, response.text
        assert (response.json()["ikm"], response.json()["grade"]) == (88.31, "A")
        assert (await http.post("/surveys", json=survey)).status_code == 409
        listed = (await http.get("/surveys")).json()
        assert [s["ikm"] for s in listed if s["period"] == period] == [88.31]

        today = dt.date.today()
        response = await http.post("/sessions", json={
            "title": "Komunikasi Efektif", "competency_type": "socio-cultural",
            "competency": "communication", "method": "seminar", "provider": "city", "jp": 4,
            "days": 1, "start_date": str(today), "end_date": str(today),
            "online_link": "https://zoom.us/j/123", "capacity": 100})
        assert response.status_code == 201, response.text
        session_id = response.json()["session_id"]
        response = await http.post(f"/sessions/{session_id}/feedback", json={
            "content": 4, "speaker": 5, "method": 3, "relevance": 4, "comment": "Narasumber jelas"})
        assert response.status_code == 201, response.text
        assert session_id in [s["session_id"] for s in (await http.get("/sessions")).json()]

    async def feedback_published():
        records = await infra.read_topic(SESSIONS_TOPIC)
        found = [decode(r.value) for r in records if r.key == f"session/{session_id}".encode()]
        return [p for e, p in found if e.type == "bangkom.feedback.submitted.v1"] or None

    feedback = await eventually(feedback_published)
    assert feedback and feedback[0].speaker == 5
    assert "Narasumber" not in str(feedback[0].model_dump())


async def test_concurrent_writes_lose_no_change_and_no_event(eventually, infra, service):
    """FerretDB v1 does not make a guarded update atomic; the service serialises its writes."""
    today = dt.date.today()
    days = 10
    async with httpx.AsyncClient(base_url=service.url, headers=infra.auth(CITY), timeout=20) as http:
        response = await http.post("/sessions", json={
            "title": "Manajemen Waktu", "competency_type": "managerial", "competency": "time management",
            "method": "classroom", "provider": "city", "jp": 20, "days": days,
            "start_date": str(today - dt.timedelta(days=days + 1)),
            "end_date": str(today - dt.timedelta(days=2)), "place": "Aula Setda", "capacity": 30})
        session_id = response.json()["session_id"]
        people = [enrollment(infra, session_id, f"1980010120050110{i:02d}") for i in range(3)]
        await publish(infra, ENROLLMENT_TOPIC, people)
        ids = [p.data["person_id"] for p in people]

        async def roster_learned():
            return len((await http.get(f"/sessions/{session_id}")).json()["participants"]) == 3

        assert await eventually(roster_learned)
        # every day's register at once, while the relay is removing published events
        responses = await asyncio.gather(*(
            http.post(f"/sessions/{session_id}/attendance", json={"day": day, "present": ids})
            for day in range(1, days + 1)))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        body = (await http.get(f"/sessions/{session_id}")).json()
        assert sorted(int(d) for d in body["attendance"]) == list(range(1, days + 1))

    async def all_published():
        records = await infra.read_topic(SESSIONS_TOPIC)
        mine = [decode(r.value)[0] for r in records if r.key == f"session/{session_id}".encode()]
        marks = [e for e in mine if e.type == "bangkom.attendance.recorded.v1"]
        return marks if len(marks) >= days * 3 else None

    marks = await eventually(all_published)
    assert marks and len(marks) == days * 3
    assert len({m.id for m in marks}) == days * 3  # none lost, none published twice
