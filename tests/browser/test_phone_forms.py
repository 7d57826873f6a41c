"""The forms people fill in on a phone after a training: feedback, the supervisor's follow-up,
an IKM survey and a training need. The completed session they refer to is set up through the APIs."""

from __future__ import annotations

import datetime as dt
import random
import time

import httpx
from playwright.sync_api import expect

from browser_helpers import shot, sign_in
from shared.events import InsightPublished
from shared.pseudonym import person_id

PHONE = {"width": 390, "height": 844}


def completed_session(federation, name: str, nip: str) -> str:
    """A one-day session today with `name` enrolled, present and passing, completed."""
    auth = {"Authorization": f"Bearer {federation.token()}"}
    enr, ses = federation.enrollment.url, federation.sessions.url
    r = httpx.post(f"{enr}/staff", headers=auth, timeout=10, json={
        "nip": nip, "name": name, "unit": "Dinas Pendidikan", "position_type": "functional",
        "rank_group": "III/c"})
    assert r.status_code in (200, 201), r.text
    today = dt.date.today().isoformat()
    r = httpx.post(f"{ses}/sessions", headers=auth, timeout=10, json={
        "title": "Metode Mengajar Aktif", "competency_type": "socio-cultural", "competency": "teaching",
        "method": "mentoring", "provider": "city", "speakers": ["Bu Sari"], "jp": 6, "days": 1,
        "start_date": today, "end_date": today, "place": "SDN 1", "capacity": 1})
    assert r.status_code == 201, r.text
    session_id = r.json()["session_id"]
    deadline = time.monotonic() + 60
    while httpx.post(f"{enr}/enrollments", headers=auth, timeout=10, json={
            "session_id": session_id, "nip": nip, "nominated_by": "supervisor"}).status_code != 201:
        assert time.monotonic() < deadline, "the session never reached the enrollment catalogue"
        time.sleep(0.5)
    while not httpx.get(f"{ses}/sessions/{session_id}", headers=auth, timeout=10).json()["participants"]:
        assert time.monotonic() < deadline, "the roster never reached the sessions service"
        time.sleep(0.5)
    person = httpx.get(f"{ses}/sessions/{session_id}", headers=auth, timeout=10).json()["participants"][0]
    for path, body in (("attendance", {"day": 1, "present": [person]}),
                       ("assessments", {"kind": "post", "scores": {person: 90}}),
                       ("complete", {"actual_cost": 300000})):
        r = httpx.post(f"{ses}/sessions/{session_id}/{path}", headers=auth, timeout=10, json=body)
        assert r.status_code in (200, 201), r.text
    return session_id


def test_feedback_follow_up_survey_and_need_on_a_phone(page, federation):
    rng = random.Random()
    name = f"Sari Rahayu {rng.randrange(1000)}"
    nip = f"1988{rng.randrange(1, 13):02d}{rng.randrange(10, 29)}201203 2{rng.randrange(1, 1000):03d}".replace(" ", "")
    session_id = completed_session(federation, name, nip)
    page.set_viewport_size(PHONE)
    sign_in(page, federation)

    page.goto(federation.city_url("sessions", f"/ui/feedback?session={session_id}"))
    expect(page.locator("#session")).to_have_value(session_id)
    for legend, score in (("Materi", "4"), ("Narasumber", "5"), ("Metode", "4"), ("Relevansi dengan pekerjaan", "5")):
        page.get_by_role("group", name=legend).get_by_label(score, exact=True).check()
    page.fill("#comment", "Sangat membantu untuk kelas saya.")
    shot(page, "11-feedback-phone")
    page.click("#feedback-form button[type=submit]")
    expect(page.locator("#feedback-form .alert")).to_contain_text("Terima kasih")

    page.goto(federation.city_url("sessions", "/ui/followup"))
    page.select_option("#session", session_id)
    page.select_option("#person_id", label=name)
    page.fill("#weeks_after", "12")
    page.get_by_role("group", name="Menerapkan keterampilan").get_by_label("Ya").check()
    page.get_by_role("group", name="Penilaian atasan").get_by_label("4", exact=True).check()
    page.click("#followup-form button[type=submit]")
    expect(page.locator("#followup-form .alert")).to_contain_text("Tersimpan")
    shot(page, "12-followup-phone")

    unit = f"Kelurahan Uji {rng.randrange(10**6)}"
    page.goto(federation.city_url("sessions", "/ui/surveys"))
    page.fill("#unit", unit)
    page.fill("#period", dt.date.today().strftime("%Y-%m"))
    page.fill("#respondents", "120")
    for i in range(9):
        page.fill(f"#element-{i}", "3.5")
    page.click("#survey-form button[type=submit]")
    expect(page.locator("#survey-form .alert")).to_contain_text("IKM 87,5, mutu B (Baik)")
    expect(page.locator("#survey-list")).to_contain_text(unit)
    shot(page, "13-ikm-survey-phone")

    page.goto(federation.city_url("enrollment", "/ui/needs"))
    page.select_option("#competency_type", "technical")
    page.fill("#competency", "Analisis data kepegawaian")
    page.fill("#unit", "BKPSDM")
    page.fill("#staff_count", "15")
    page.click("#need-form button[type=submit]")
    expect(page.locator("#need-form .alert")).to_contain_text("Tersimpan")
    expect(page.locator("#needs")).to_contain_text("Analisis data kepegawaian")
    shot(page, "14-needs-phone")


def test_the_city_dashboard_names_the_people_a_national_insight_flags(page, federation):
    """The nation knows only pseudonymous ids; the city's dashboard puts the names back."""
    rng = random.Random()
    name = f"Rudi Hartono {rng.randrange(1000)}"
    number = f"1979{rng.randrange(1, 13):02d}15" + "200503" + f"1{rng.randrange(1, 1000):03d}"
    r = httpx.post(f"{federation.enrollment.url}/staff", timeout=10,
                   headers={"Authorization": f"Bearer {federation.token()}"},
                   json={"nip": number, "name": name, "unit": "Dinas Kesehatan",
                         "position_type": "general", "rank_group": "II/b"})
    assert r.status_code == 201, r.text
    title = f"ASN di bawah 20 JP ({rng.randrange(10**6)})"
    federation.publish_insight(InsightPublished(
        insight_id=f"browser-{rng.randrange(10**9)}", kind="jp-shortfall", year=dt.date.today().year,
        title=title, detail="Dinas Kesehatan: 1 ASN belum mencapai 20 JP",
        person_ids=(person_id(number, federation.infra.pseudonym_secret),)))
    sign_in(page, federation, role="viewer")
    deadline = time.monotonic() + 60
    while True:
        page.goto(federation.city_url("sessions", "/ui/dashboard"))
        page.wait_for_selector("#insights p, #insights article")
        if page.locator("#insights article", has_text=title).count():
            break
        assert time.monotonic() < deadline, "the insight never reached the city"
        time.sleep(1)
    insight = page.locator("#insights article", has_text=title)
    insight.get_by_text("1 pegawai disebut").click()
    expect(insight).to_contain_text(f"{name} · Dinas Kesehatan")
    shot(page, "15-city-dashboard-insight")
