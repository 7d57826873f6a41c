"""The sessions use cases through the HTTP API, over an in-memory store."""

import datetime as dt

import httpx
import pytest

from services.sessions.app import build_api
from services.sessions.handlers import SessionsService
from sessions_builders import START, FakeSessionStore, cancelled, created, pid, waitlisted
from shared import metrics
from shared.events import Envelope, InsightPublished
from shared.http import hash_token
from shared.settings import Settings

OPERATOR = "bkm.salatiga.operator.op-secret"
VIEWER = "bkm.salatiga.viewer.view-secret"
SETTINGS = Settings(
    node="salatiga", service="sessions",
    token_hashes=f"{hash_token(OPERATOR)}:operator,{hash_token(VIEWER)}:viewer",
)
NOW = dt.datetime(2026, 11, 10, 3, 0, tzinfo=dt.UTC)
PLAN = {
    "title": "Pelayanan Publik Digital", "competency_type": "technical",
    "competency": "e-government", "method": "workshop", "provider": "university",
    "speakers": ["Prof. Hadi"], "jp": 24, "days": 3, "start_date": str(START),
    "end_date": str(START + dt.timedelta(days=2)), "place": "Ruang Rapat Setda",
    "capacity": 25, "planned_cost": 7_500_000,
}


@pytest.fixture
def store():
    return FakeSessionStore()


@pytest.fixture
def service(store):
    return SessionsService(store, SETTINGS, clock=lambda: NOW)


@pytest.fixture
async def client(service):
    transport = httpx.ASGITransport(app=build_api(SETTINGS, service))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sessions",
        headers={"Authorization": f"Bearer {OPERATOR}"},
    ) as http:
        yield http


def envelope(payload):
    return Envelope.wrap(payload, city="salatiga", service="enrollment", time=NOW)


async def schedule(client, **overrides) -> str:
    response = await client.post("/sessions", json=PLAN | overrides)
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


class TestScheduling:
    async def test_schedules_and_stages_session_scheduled(self, client, store):
        session_id = await schedule(client)
        assert store.staged_types() == ["session.scheduled"]
        body = (await client.get(f"/sessions/{session_id}")).json()
        assert body["status"] == "scheduled" and body["speakers"] == ["Prof. Hadi"]
        assert body["completion_rule"]["min_attendance_percent"] == 80
        listed = (await client.get("/sessions")).json()
        assert [s["session_id"] for s in listed] == [session_id]

    @pytest.mark.parametrize("overrides, status, field", [
        ({"end_date": str(START - dt.timedelta(days=1))}, 400, "end_date"),
        ({"jp": 0}, 422, "jp"),
        ({"method": "e-learning", "place": None}, 400, "online_link"),
        ({"method": "e-learning", "online_link": "not a url"}, 400, "online_link"),
        ({"competency_type": "spiritual"}, 422, "competency_type"),
        ({"planned_cost": 1.5}, 422, "planned_cost"),
    ])
    async def test_bad_input_names_the_field_and_writes_nothing(
        self, client, store, overrides, status, field
    ):
        response = await client.post("/sessions", json=PLAN | overrides)
        assert response.status_code == status
        assert response.json()["errors"][0]["field"] == field
        assert store.sessions == {} and store.staged == []

    async def test_unknown_session_is_404(self, client):
        response = await client.post("/sessions/NOPE/cancel", json={"reason": "x"})
        assert response.status_code == 404
        assert response.json()["errors"][0]["field"] == "session_id"

    async def test_cancel_then_cancel_again_is_a_conflict(self, client, store):
        session_id = await schedule(client)
        assert (await client.post(f"/sessions/{session_id}/cancel", json={"reason": "budget"})).status_code == 200
        again = await client.post(f"/sessions/{session_id}/cancel", json={"reason": "budget"})
        assert again.status_code == 409
        assert store.staged_types() == ["session.scheduled", "session.cancelled"]


class TestAccess:
    async def test_reads_need_a_token(self, client):
        response = await client.get("/sessions", headers={"Authorization": ""})
        assert response.status_code == 401

    async def test_a_viewer_cannot_write(self, client, store):
        response = await client.post("/sessions", json=PLAN, headers={"Authorization": f"Bearer {VIEWER}"})
        assert response.status_code == 403 and store.sessions == {}

    async def test_a_viewer_can_read(self, client):
        response = await client.get("/surveys", headers={"Authorization": f"Bearer {VIEWER}"})
        assert response.status_code == 200

    async def test_a_token_of_another_city_is_refused(self, client):
        response = await client.get("/sessions", headers={"Authorization": "Bearer bkm.palu.viewer.x"})
        assert response.status_code == 403


class TestFullSession:
    async def test_roster_attendance_tests_and_completion(self, client, service, store):
        session_id = await schedule(client)
        ani = envelope(created("ani", session_id))
        assert await service.apply_enrollment_event(ani, ani.payload()) == "applied"
        assert await service.apply_enrollment_event(ani, ani.payload()) == "duplicate"
        for payload in (created("budi", session_id), waitlisted("citra", session_id)):
            assert await service.apply_enrollment_event(envelope(payload), payload) == "applied"
        gone = cancelled("budi", session_id)
        assert await service.apply_enrollment_event(envelope(gone), gone) == "applied"

        for day in (1, 2, 3):
            response = await client.post(f"/sessions/{session_id}/attendance",
                                         json={"day": day, "present": [pid("ani")]})
            assert response.status_code == 200 and response.json()["recorded"] == 1
        waitlisted_mark = await client.post(f"/sessions/{session_id}/attendance",
                                            json={"day": 1, "present": [pid("citra")]})
        assert waitlisted_mark.status_code == 400
        for kind, score in (("pre", 45), ("post", 82.5)):
            response = await client.post(f"/sessions/{session_id}/assessments",
                                         json={"kind": kind, "scores": {pid("ani"): score}})
            assert response.status_code == 200

        completions = metrics.COMPLETIONS.labels("salatiga")._value.get()
        jp = metrics.JP_CREDITED.labels("salatiga")._value.get()
        response = await client.post(f"/sessions/{session_id}/complete", json={"actual_cost": 7_000_000})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["completion_rule"]["min_post_test"] == 60
        assert body["completion"]["participants"] == 1 and body["completion"]["completed"] == 1
        assert body["completion"]["outcomes"][0]["certificate"] == f"SAL-2026-{session_id}-001"
        assert metrics.COMPLETIONS.labels("salatiga")._value.get() == completions + 1
        assert metrics.JP_CREDITED.labels("salatiga")._value.get() == jp + 24

        assert store.staged_types() == (
            ["session.scheduled"] + ["attendance.recorded"] * 3 + ["assessment.recorded"] * 2
            + ["participant.completed", "session.completed"]
        )
        completed = store.staged[-2].payload()
        assert (completed.person_id, completed.jp, completed.completed_on) == (pid("ani"), 24, NOW.date())

        late = await client.post(f"/sessions/{session_id}/attendance", json={"day": 1, "absent": [pid("ani")]})
        assert late.status_code == 409

        followup = await client.post(f"/sessions/{session_id}/followups", json={
            "person_id": pid("ani"), "applies_skills": True, "rating": 4, "weeks_after": 12})
        assert followup.status_code == 201
        assert store.staged_types()[-1] == "followup.recorded"

    async def test_feedback_keeps_the_comment_local(self, client, store):
        session_id = await schedule(client)
        response = await client.post(f"/sessions/{session_id}/feedback", json={
            "content": 5, "speaker": 4, "method": 4, "relevance": 5,
            "comment": "Pak Budi dari Bappeda sangat membantu"})
        assert response.status_code == 201
        record = next(iter(store.feedback.values()))
        assert record["comment"].startswith("Pak Budi")
        event = store.staged[-1]
        assert event.type == "bangkom.feedback.submitted.v1" and "comment" not in event.data

    async def test_a_roster_event_for_an_unknown_session_is_an_error(self, service):
        payload = created("ani", "UNKNOWN")
        from shared.errors import NotFoundError
        with pytest.raises(NotFoundError):
            await service.apply_enrollment_event(envelope(payload), payload)


class TestSurveysAndInsights:
    async def test_records_an_ikm_survey_once(self, client, store):
        body = {"unit": "Disdukcapil", "period": "2026-10", "respondents": 120,
                "element_means": [3.2, 3.1, 3.4, 3.0, 3.3, 3.5, 2.9, 3.2, 3.6]}
        response = await client.post("/surveys", json=body)
        assert response.status_code == 201
        assert (response.json()["ikm"], response.json()["grade"]) == (81.11, "B")
        assert (await client.post("/surveys", json=body)).status_code == 409
        assert store.staged_types() == ["satisfaction.surveyed"]
        assert len((await client.get("/surveys")).json()) == 1

    async def test_rejects_eight_elements(self, client, store):
        response = await client.post("/surveys", json={
            "unit": "Disdukcapil", "period": "2026-10", "respondents": 1, "element_means": [3] * 8})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "element_means"
        assert store.surveys == {}

    async def test_an_insight_is_stored_once(self, client, service):
        insight = InsightPublished(insight_id="i-1", kind="jp-shortfall", year=2026,
                                   title="JP kurang", detail="120 ASN di bawah 20 JP",
                                   figures={"below_20_jp": 120})
        wrapped = Envelope.wrap(insight, city="salatiga", service="evaluation", time=NOW)
        assert await service.store_insight(wrapped, insight) == "applied"
        assert await service.store_insight(wrapped, insight) == "duplicate"
        listed = (await client.get("/insights")).json()
        assert [i["insight_id"] for i in listed] == ["i-1"]
