"""A whole training cycle clicked through a city console, then seen on the national dashboard;
the language switch; a bad form answered with a clear error beside the field; a viewer's view."""

from __future__ import annotations

import datetime as dt
import random
import re
import time

from playwright.sync_api import expect

from browser_helpers import CITY, shot, sign_in

CITY_COLUMN = CITY.capitalize()


def nip(rng: random.Random, sex: int) -> str:
    born = dt.date(1980, 1, 1) + dt.timedelta(days=rng.randrange(7000))
    return f"{born:%Y%m%d}2010{rng.randrange(1, 13):02d}{sex}{rng.randrange(1, 1000):03d}"


def national_value(figures: dict, section: str, field: str) -> int:
    city = figures["cities"].get(CITY)
    return city[section][field] if city else 0


def cell(page, row: str):
    return page.locator(f'tr[data-row="{row}"] td[data-city="{CITY_COLUMN}"]')


def test_a_training_cycle_through_the_city_console_reaches_the_national_dashboard(page, federation):
    rng = random.Random()
    people = {"Ani Lestari": nip(rng, 2), "Bayu Saputra": nip(rng, 1), "Citra Dewi": nip(rng, 2)}
    ani, bayu, citra = people
    before = federation.figures()
    completions_before = national_value(before, "enrollment", "completions")
    jp_before = national_value(before, "cost", "jp_credited")

    # 1. staff register: a CSV with three good rows and one bad one
    sign_in(page, federation)
    csv = "nip;nama;unit_kerja;jenis_jabatan;golongan\n" + "".join(
        f"{n};{name};Dinas Kominfo;fungsional;III/b\n" for name, n in people.items()) + \
        "12345;Salah Ketik;Dinas Kominfo;umum;II\n"
    page.set_input_files("#file", files=[{"name": "pegawai.csv", "mimeType": "text/csv",
                                          "buffer": csv.encode()}])
    page.click("#import-form button[type=submit]")
    expect(page.locator("#import-form .alert")).to_contain_text("3 baru", timeout=60_000)
    expect(page.locator("#row-errors tbody tr")).to_have_count(1)
    expect(page.locator("#row-errors")).to_contain_text("harus 18 digit")
    expect(page.locator("#staff-table")).to_contain_text("Citra Dewi")
    shot(page, "01-staff-import")

    # 2. schedule a one-day session today, two seats
    title = f"Layanan Digital {rng.randrange(10**6):06d}"
    today = dt.date.today().isoformat()
    page.get_by_role("navigation").get_by_role("link", name="Jadwal pelatihan").click()  # to the sessions port
    page.wait_for_url(f"{federation.sessions.url}/ui/sessions")
    page.fill("#title", title)
    page.select_option("#competency_type", "technical")
    page.fill("#competency", "e-government")
    page.select_option("#method", "workshop")
    page.select_option("#provider", "university")
    page.fill("#speakers", "Dr. Rina")
    page.fill("#start_date", today)
    page.fill("#end_date", today)
    page.fill("#days", "1")
    page.fill("#jp", "8")
    page.fill("#capacity", "2")
    page.fill("#planned_cost", "5000000")
    page.fill("#place", "Aula BKPSDM")
    page.click("#session-form button[type=submit]")
    expect(page.locator("#session-form .alert")).to_contain_text(title)
    row = page.locator("tr[data-session]", has_text=title)
    session_id = row.get_attribute("data-session")
    expect(page.locator("#calendar")).to_contain_text(title)
    shot(page, "02-sessions")

    # 3. enroll three into two seats: the third waits; a cancellation promotes them
    row.get_by_role("link", name="Daftarkan peserta").click()  # back to the enrollment port
    page.wait_for_url(f"{federation.enrollment.url}/ui/enrollment?session={session_id}")
    expect(page.locator("#session_id")).to_have_value(session_id, timeout=60_000)
    for name, number in people.items():
        page.fill("#nip", number)
        page.click("#enroll-form button[type=submit]")
        expect(page.locator("#enroll-form .alert")).to_contain_text(name)
    expect(page.locator("#enroll-form .alert")).to_contain_text("daftar tunggu")
    expect(page.locator("#waitlist")).to_contain_text(citra)
    shot(page, "03-enrollment-waitlist")
    page.get_by_label(f"Alasan: {ani}").select_option("busy")
    page.get_by_role("button", name=f"Batalkan: {ani}").click()
    expect(page.locator("#enroll-form .alert")).to_contain_text(f"Naik dari daftar tunggu menjadi peserta: {citra}")
    expect(page.locator("#enrolled tr.flash")).to_contain_text(citra)
    shot(page, "04-enrollment-promoted")

    # 4. the roster reaches the sessions service through Kafka: attendance, tests, completion
    session_url = federation.city_url("sessions", f"/ui/session?id={session_id}")
    deadline = time.monotonic() + 60
    while True:
        page.goto(session_url)
        page.wait_for_selector("#attendance-sheet table, #attendance-sheet p")
        names = page.locator("#attendance-sheet label").all_inner_texts()
        if sorted(names) == [bayu, citra]:
            break
        assert time.monotonic() < deadline, f"roster never became Bayu and Citra: {names}"
        time.sleep(1)
    page.click("#attendance-form button[type=submit]")
    expect(page.locator("#attendance-form .alert")).to_contain_text("2 hadir")
    scores = {bayu: ("55", "85"), citra: ("60", "45")}
    for name, (pre, post) in scores.items():
        page.get_by_label(f"Pre-test: {name}").fill(pre)
        page.get_by_label(f"Post-test: {name}").fill(post)
    page.click("#tests-form button[type=submit]")
    expect(page.locator("#tests-form .alert")).to_contain_text("4 nilai")
    page.fill("#actual_cost", "4500000")
    page.click("#complete-form button[type=submit]")
    outcomes = page.locator("#outcome-table")
    expect(outcomes).to_be_visible()
    bayu_row = outcomes.locator("tr", has_text=bayu)
    expect(bayu_row).to_contain_text("Lulus")
    expect(bayu_row.locator("code")).to_have_text(re.compile(rf"^PEM-\d{{4}}-{session_id}-001$"))
    expect(bayu_row.locator("td").nth(4)).to_have_text("8")
    expect(outcomes.locator("tr", has_text=citra)).to_contain_text("post-test 45 di bawah 60")
    expect(page.locator("#outcomes")).to_contain_text("Rp\u00a04.500.000")
    shot(page, "05-session-completed")

    # 5. the city dashboard joins names (enrollment) with JP (sessions)
    page.goto(federation.city_url("sessions", "/ui/dashboard"))
    expect(page.locator("#jp-progress tr", has_text=bayu)).to_contain_text("kurang 12 JP")
    expect(page.locator("#jp-progress tr", has_text=bayu).locator("td.num")).to_have_text("8")
    expect(page.locator("#cancel-table")).to_contain_text("Sibuk tugas kantor")
    shot(page, "06-city-dashboard")

    # 6. the national dashboard shows the new figures by itself
    page.goto(federation.national.url + "/")
    expect(cell(page, "nat.completions")).to_have_text(str(completions_before + 1), timeout=90_000)
    expect(cell(page, "nat.jp_credited")).to_have_text(str(jp_before + 8), timeout=30_000)
    after = federation.figures()
    assert national_value(after, "enrollment", "completions") == completions_before + 1
    expect(page.locator("#compare-table thead")).to_contain_text("Nasional")
    # the city is up: heard from within seconds, shown current with its newest event's time
    row = page.locator(f"#reporting-table tr[data-city='{CITY}']")
    expect(row).to_have_attribute("data-behind", "false", timeout=30_000)
    expect(row).to_contain_text("terkini")
    assert not page.locator("main").get_by_text(bayu).count(), "a name reached the national side"
    with page.expect_download() as download:
        page.click("#export")
    exported = download.value.path().read_text(encoding="utf-8")
    assert CITY_COLUMN in exported and "Peserta lulus" in exported
    shot(page, "07-national-dashboard")


def test_the_language_switch_turns_every_page_to_english_and_back(page, federation):
    sign_in(page, federation)
    expect(page.locator("h1")).to_have_text("Daftar pegawai")
    assert page.evaluate("Bkm.rupiah(12500000)") == "Rp\u00a012.500.000"
    assert page.evaluate("Bkm.num(1234.5)") == "1.234,5"
    assert page.evaluate("Bkm.date('2026-11-22')") == "22 November 2026"
    page.click("#lang-switch")
    expect(page.locator("h1")).to_have_text("Staff register")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    # the choice is a cookie of the host: the sessions port and the nation speak English too
    page.goto(federation.city_url("sessions", "/ui/sessions"))
    expect(page.locator("h1")).to_have_text("Training sessions")
    page.goto(federation.national.url + "/")
    expect(page.locator("h1")).to_have_text("National dashboard of civil-servant competency development")
    shot(page, "08-national-english")
    page.click("#lang-switch")
    expect(page.locator("h1")).to_have_text("Dasbor nasional pengembangan kompetensi ASN")


def test_a_bad_form_shows_a_clear_error_next_to_the_field(page, federation):
    sign_in(page, federation)
    page.fill("#nip", "12345")
    page.fill("#name", "Dedi")
    page.fill("#unit", "Bappeda")
    page.fill("#rank_group", "III/a")
    page.click("#person-form button[type=submit]")
    nip_field = page.locator("#nip")
    expect(nip_field).to_have_attribute("aria-invalid", "true")
    error = page.locator("#nip-error")
    expect(error).to_have_text("harus 18 digit")
    expect(nip_field).to_have_attribute("aria-describedby", "nip-hint nip-error")
    expect(page.get_by_role("textbox", name="NIP", exact=True)).to_have_accessible_description(
        re.compile("harus 18 digit"))
    expect(page.locator("#person-form .alert")).to_contain_text("Perbaiki isian yang ditandai")
    shot(page, "09-staff-field-error", full_page=False)
    page.fill("#nip", nip(random.Random(), 1))  # corrected: the error goes, the person is saved
    page.click("#person-form button[type=submit]")
    expect(page.locator("#person-form .alert")).to_contain_text("Dedi ditambahkan")
    expect(page.locator("#person-form .field-error")).to_have_count(0)
    expect(nip_field).to_have_attribute("aria-describedby", "nip-hint")

    # a rule spanning fields: the end date before the start date
    page.goto(federation.city_url("sessions", "/ui/sessions"))
    page.fill("#title", "Salah tanggal")
    page.fill("#competency", "x")
    page.fill("#start_date", "2026-12-10")
    page.fill("#end_date", "2026-12-01")
    page.fill("#days", "1")
    page.fill("#jp", "4")
    page.fill("#capacity", "10")
    page.fill("#place", "Aula")
    page.click("#session-form button[type=submit]")
    expect(page.locator("#end_date-error")).to_have_text("harus sama dengan atau setelah tanggal mulai")
    expect(page.locator("#session-form .field-error")).to_have_count(1)


def test_a_viewer_sees_the_forms_disabled_with_the_reason(page, federation):
    sign_in(page, federation, role="viewer")
    expect(page.locator("#viewer-note")).to_contain_text("peninjau")
    expect(page.locator("#person-form button[type=submit]")).to_be_disabled()
    expect(page.locator("#file")).to_be_disabled()
    page.keyboard.press("Tab")  # the keyboard's first stop skips the menu
    expect(page.get_by_role("link", name="Lompat ke isi")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(federation.city_url("sessions", "/ui/feedback"))
    expect(page.locator("#feedback-form button[type=submit]")).to_be_disabled()
    shot(page, "10-feedback-phone-viewer")


def test_a_form_sent_before_the_page_is_ready_is_held_then_sent(page, federation):
    """Held dictionaries keep the page script from wiring its form: the click must not submit the
    form natively (that would put the token in the URL); it goes out once the page is ready."""
    held = []
    page.route("**/ui/static/i18n/*.json", lambda route: held.append(route))
    page.goto(federation.city_url("enrollment", "/ui/login?next=/ui/needs"))
    page.fill("#token", federation.token())
    page.click("#signin button[type=submit]")
    assert "token=" not in page.url and held
    for route in held:
        route.continue_()
    page.unroute("**/ui/static/i18n/*.json")
    page.wait_for_url(f"{federation.enrollment.url}/ui/needs")
    expect(page.locator("h1")).to_have_text("Analisis kebutuhan pelatihan")
