"""Demo data for the local federation: a training year for the four cities, through the city APIs.

    from deploy import demo
    summary = demo.load(urls, tokens, seed=2026, progress=True)

`urls` maps "<node>/<service>" to a base URL ("salatiga/enrollment": "http://127.0.0.1:8011",
...) and `tokens` maps node -> {"operator": ..., "viewer": ...}: exactly what
`deploy.local.federation.Federation.load_demo` passes (it also passes `console`, used for the
progress bars). Every city that has both an enrollment and a sessions URL is loaded, the cities
concurrently; `programmes` maps a node to the programme it gets when the node is not named
after one of the four cities (the integration test runs a throw-away node). The national URL is
not needed: the nation learns everything from the cities' events.

Returns a summary: {"cities": {node: {counts...}}, "seconds": float}. A city whose sessions
service already lists sessions is skipped (`"skipped": True`), so running `load` twice does not
duplicate anything (a city that failed half-way is skipped too: wipe it and load again). A city
that fails is reported under `"error"` (and printed); with `strict=True` the first failure is
raised instead. Each city's entry has `phase_seconds`: where the time went.

Speed: a few hundred requests per city over keep-alive connections, the sessions of a city side
by side. The load waits twice on Kafka (the session catalogue reaching enrollment, each roster
reaching sessions), so it takes as long as the sessions service's roster consumer needs.

What is loaded, per city, only through the HTTP APIs (so every step produces the real events):
a staff register imported as a CSV (40-80 people with valid NIPs, two deliberately bad rows so
the import report shows errors), 7-10 sessions grounded in the city's documents (seeds/), the
enrollments (one session over-subscribed: waitlist, cancellations mostly "busy", promotions),
attendance, pre/post tests, completion with JP credits (some people miss the attendance or
post-test rule), feedback, supervisor follow-ups, IKM surveys of the units before and after the
training, and training needs from surveys and forums.

Dates: the delivered sessions are spread over this year, from February to last month, as a
city would record sessions it held before it used the system: enrollments into a session that
has started are sent with `late=true` (an operator catching up with a paper register), and each
session is completed on its end date. Upcoming sessions start in the coming weeks. IKM surveys
close in December and January (before any training) and this month (after it). Events carry the
time of the load; the nation dates figures by the session's dates, not by event time.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# --- the four programmes (from /work/shared/seeds) ---------------------------------------------

DUKCAPIL = "Dinas Kependudukan dan Pencatatan Sipil"
PENDIDIKAN = "Dinas Pendidikan"
KEUANGAN = "Badan Keuangan Daerah"
BAPPEDA = "Bappeda"
DPMPTSP = "DPMPTSP"
KOMINFO = "Dinas Kominfo"
BKPSDM = "BKPSDM"

# Units that serve the public directly: their IKM is surveyed.
SERVICE_UNITS = (DUKCAPIL, PENDIDIKAN, DPMPTSP, KOMINFO, KEUANGAN)


@dataclass(frozen=True)
class SessionSpec:
    """One session of a city's programme and how the demo fills it.

    `when`: "today" (enrolled, run and completed now), "upcoming" (enrollment open) or
    "cut" (scheduled, a few enroll, then cancelled for budget). `enroll` is how many people
    ask for a seat; more than `capacity` makes a waitlist.
    """

    title: str
    competency_type: str
    competency: str
    method: str
    provider: str
    jp: int
    capacity: int
    enroll: int
    units: tuple[str, ...] = ()  # preferred units; () = anyone
    speakers: tuple[str, ...] = ()
    when: str = "today"
    starts_in: int = 0  # days from today (upcoming / cut)
    days: int = 1
    span: int = 1  # calendar days from start to end
    cost_per_seat: int = 1_500_000
    mentoring_pairs: int = 0  # mentoring: that many sessions, each one mentor + one junior


@dataclass(frozen=True)
class Programme:
    units: tuple[str, ...]
    names: str  # key of NAMES
    staff: tuple[int, int]  # range of the register's size
    sessions: tuple[SessionSpec, ...]
    extra_needs: tuple[tuple[str, str, str], ...]  # (type, competency, unit) for next year


ONLINE = "https://elearning.bangkom.example.go.id/kelas/"

PROGRAMMES: dict[str, Programme] = {
    "salatiga": Programme(
        units=(DUKCAPIL, PENDIDIKAN, KEUANGAN, BAPPEDA, DPMPTSP, KOMINFO, BKPSDM),
        names="jawa", staff=(55, 75),
        sessions=(
            SessionSpec("Workshop Pengelolaan Keuangan Daerah bersama Pakar Kemendagri",
                        "technical", "Pengelolaan Keuangan Daerah", "workshop", "ministry",
                        jp=10, capacity=20, enroll=25, units=(KEUANGAN, BAPPEDA),
                        speakers=("Tim Ahli Ditjen Bina Keuangan Daerah, Kemendagri",),
                        cost_per_seat=2_250_000),
            SessionSpec("Pelatihan Metode Pembelajaran Inovatif Berbasis Teknologi bagi Guru",
                        "technical", "Metode Pembelajaran Guru", "classroom", "city",
                        jp=12, capacity=30, enroll=16, units=(PENDIDIKAN,),
                        speakers=("Pengawas Sekolah Dinas Pendidikan",), cost_per_seat=900_000),
            SessionSpec("Pelatihan TI dan E-Government untuk Layanan Perizinan",
                        "technical", "E-Government", "blended", "national-institute",
                        jp=12, capacity=25, enroll=20, units=(DUKCAPIL, DPMPTSP, KOMINFO),
                        speakers=("Widyaiswara Pusat Pengembangan Kompetensi ASN",),
                        cost_per_seat=1_400_000),
            SessionSpec("Program Mentoring ASN Senior untuk ASN Junior",
                        "managerial", "Pembimbingan Tugas Sehari-hari", "mentoring", "city",
                        jp=4, capacity=1, enroll=1, mentoring_pairs=4, cost_per_seat=150_000),
            SessionSpec("Pelatihan Pelayanan Publik yang Ramah dan Efisien",
                        "socio-cultural", "Pelayanan Prima", "classroom", "city",
                        jp=24, capacity=30, enroll=18, when="upcoming", starts_in=10, days=3,
                        span=3, units=(DUKCAPIL, DPMPTSP), speakers=("Tim BKPSDM",)),
            SessionSpec("Seminar Daring Komunikasi Digital dan Media Sosial Pemerintah",
                        "socio-cultural", "Komunikasi Publik", "seminar", "city",
                        jp=4, capacity=100, enroll=22, when="upcoming", starts_in=21,
                        units=(KOMINFO,), cost_per_seat=100_000),
            SessionSpec("Bimbingan Teknis Kearsipan Digital", "technical", "Kearsipan Digital",
                        "workshop", "provincial-agency", jp=16, capacity=25, enroll=6,
                        when="cut", starts_in=30, days=2, span=2),
        ),
        extra_needs=(("technical", "Analisis Data untuk Kebijakan", BAPPEDA),
                     ("socio-cultural", "Komunikasi Publik", DUKCAPIL)),
    ),
    "sawahlunto": Programme(
        units=(BAPPEDA, KEUANGAN, DUKCAPIL, DPMPTSP, PENDIDIKAN, KOMINFO, "Dinas Pariwisata"),
        names="minang", staff=(40, 60),
        sessions=(
            SessionSpec("Pelatihan Berbasis Proyek: Penyusunan Rancangan RPJMD",
                        "technical", "Perencanaan Pembangunan (RPJMD)", "project-based",
                        "university", jp=12, capacity=18, enroll=22, units=(BAPPEDA,),
                        speakers=("Dosen Administrasi Publik, perguruan tinggi mitra",),
                        cost_per_seat=2_000_000),
            SessionSpec("Kelas Administrasi Publik: Praktik Baik Pelayanan",
                        "technical", "Administrasi Publik", "classroom", "university",
                        jp=10, capacity=30, enroll=20,
                        speakers=("Dosen Administrasi Publik, perguruan tinggi mitra",),
                        cost_per_seat=1_100_000),
            SessionSpec("Pelatihan Pelayanan Prima bagi Petugas Layanan",
                        "socio-cultural", "Pelayanan Prima", "simulation", "city",
                        jp=8, capacity=25, enroll=18, units=(DUKCAPIL, DPMPTSP, "Dinas Pariwisata"),
                        cost_per_seat=750_000),
            SessionSpec("Penyusunan Anggaran Daerah yang Transparan dan Akuntabel",
                        "technical", "Pengelolaan Keuangan Daerah", "classroom",
                        "provincial-agency", jp=10, capacity=20, enroll=14,
                        units=(KEUANGAN, BAPPEDA), cost_per_seat=1_300_000),
            SessionSpec("Pelatihan Berbasis Proyek: RPJMD Tahap II (Rancangan Akhir)",
                        "technical", "Perencanaan Pembangunan (RPJMD)", "project-based",
                        "university", jp=60, capacity=15, enroll=12, when="upcoming",
                        starts_in=14, days=10, span=26, units=(BAPPEDA, KEUANGAN),
                        cost_per_seat=4_500_000),
            SessionSpec("Seminar Inovasi Pelayanan Publik", "socio-cultural", "Pelayanan Prima",
                        "seminar", "professional-organisation", jp=6, capacity=80, enroll=20,
                        when="upcoming", starts_in=25, cost_per_seat=200_000),
            SessionSpec("Bimtek Manajemen Pemerintahan Daerah", "managerial",
                        "Manajemen Pemerintahan Daerah", "classroom", "provincial-agency",
                        jp=24, capacity=30, enroll=7, when="cut", starts_in=35, days=3, span=3),
        ),
        extra_needs=(("managerial", "Manajemen Pemerintahan Daerah", BAPPEDA),
                     ("technical", "Pengelolaan Keuangan Daerah", KEUANGAN)),
    ),
    "palu": Programme(
        units=(DUKCAPIL, DPMPTSP, KEUANGAN, BAPPEDA, PENDIDIKAN, KOMINFO, BKPSDM),
        names="sulawesi", staff=(55, 80),
        sessions=(
            SessionSpec("Pelatihan Komunikasi Efektif dalam Pelayanan Publik",
                        "socio-cultural", "Komunikasi Publik", "workshop", "city",
                        jp=8, capacity=25, enroll=30, units=(DUKCAPIL, DPMPTSP),
                        speakers=("Tim BKPSDM Kota Palu",), cost_per_seat=800_000),
            SessionSpec("Pelatihan Kepemimpinan bagi Pejabat Pengawas",
                        "managerial", "Kepemimpinan", "classroom", "national-institute",
                        jp=12, capacity=20, enroll=14,
                        speakers=("Widyaiswara Lembaga Administrasi Negara",),
                        cost_per_seat=1_800_000),
            SessionSpec("Manajemen Waktu dan Produktivitas Kerja", "managerial",
                        "Manajemen Waktu", "seminar", "city", jp=6, capacity=40, enroll=24,
                        cost_per_seat=300_000),
            SessionSpec("Kursus Daring Manajemen Proyek: Modul Dasar", "managerial",
                        "Manajemen Proyek", "e-learning", "national-institute", jp=10,
                        capacity=40, enroll=22, units=(BAPPEDA, KEUANGAN, KOMINFO),
                        cost_per_seat=250_000),
            SessionSpec("Simulasi Penanganan Pengaduan Masyarakat", "socio-cultural",
                        "Pelayanan Prima", "simulation", "city", jp=8, capacity=20, enroll=15,
                        units=(DUKCAPIL, DPMPTSP, PENDIDIKAN), cost_per_seat=700_000),
            SessionSpec("Kursus Daring Manajemen Proyek: Modul Lanjutan", "managerial",
                        "Manajemen Proyek", "e-learning", "national-institute", jp=30,
                        capacity=50, enroll=16, when="upcoming", starts_in=7, days=8, span=28,
                        units=(BAPPEDA, KEUANGAN, KOMINFO), cost_per_seat=400_000),
            SessionSpec("Workshop Public Speaking untuk Petugas Humas", "socio-cultural",
                        "Komunikasi Publik", "workshop", "city", jp=16, capacity=20, enroll=5,
                        when="cut", starts_in=28, days=2, span=2, units=(KOMINFO,)),
        ),
        extra_needs=(("managerial", "Kepemimpinan", BKPSDM),
                     ("technical", "E-Government", KOMINFO)),
    ),
    "pematangsiantar": Programme(
        units=(DPMPTSP, DUKCAPIL, KOMINFO, KEUANGAN, BAPPEDA, PENDIDIKAN, BKPSDM),
        names="batak", staff=(50, 70),
        sessions=(
            SessionSpec("Pelatihan E-Government: Aplikasi Layanan Publik Daring",
                        "technical", "E-Government", "blended", "city", jp=12, capacity=22,
                        enroll=28, units=(DUKCAPIL, DPMPTSP, KOMINFO),
                        speakers=("Tim Dinas Kominfo",), cost_per_seat=1_000_000),
            SessionSpec("Pelatihan Pemrosesan Perizinan Digital", "technical",
                        "Pelayanan Perizinan Digital", "classroom", "ministry", jp=10,
                        capacity=20, enroll=15, units=(DPMPTSP,),
                        speakers=("Narasumber Kementerian Investasi/BKPM",),
                        cost_per_seat=1_600_000),
            SessionSpec("Manajemen Administrasi: Simulasi Kasus Layanan Sehari-hari",
                        "technical", "Administrasi Perkantoran", "simulation", "city",
                        jp=8, capacity=25, enroll=18, cost_per_seat=650_000),
            SessionSpec("Kuliah Umum Administrasi Publik Terkini", "technical",
                        "Administrasi Publik", "seminar", "university", jp=6, capacity=40,
                        enroll=20, speakers=("Dosen Universitas mitra",), cost_per_seat=250_000),
            SessionSpec("Pelatihan Layanan Publik Berbasis Digital Tahap II", "technical",
                        "Pelayanan Perizinan Digital", "blended", "city", jp=32, capacity=25,
                        enroll=14, when="upcoming", starts_in=12, days=4, span=4,
                        units=(DPMPTSP, DUKCAPIL), cost_per_seat=1_200_000),
            SessionSpec("E-Learning Keamanan Informasi bagi ASN", "technical", "E-Government",
                        "e-learning", "national-institute", jp=20, capacity=60, enroll=18,
                        when="upcoming", starts_in=5, days=5, span=14, cost_per_seat=200_000),
            SessionSpec("Workshop Pengelolaan Arsip Digital", "technical", "Kearsipan Digital",
                        "workshop", "provincial-agency", jp=16, capacity=25, enroll=6,
                        when="cut", starts_in=33, days=2, span=2),
        ),
        extra_needs=(("socio-cultural", "Pelayanan Prima", DUKCAPIL),
                     ("technical", "Analisis Data untuk Kebijakan", BAPPEDA)),
    ),
}

NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "jawa": {
        "m": ("Agus", "Budi", "Bambang", "Dwi", "Eko", "Hadi", "Joko", "Slamet", "Teguh", "Wahyu",
              "Rizky", "Aditya", "Sigit", "Heru", "Arif", "Fajar", "Imam", "Yusuf", "Anton", "Gilang"),
        "f": ("Sri", "Endang", "Dewi", "Siti", "Rina", "Wulan", "Ayu", "Retno", "Lestari", "Yuni",
              "Indah", "Fitri", "Novi", "Tri", "Astuti", "Nur", "Dian", "Ratna", "Puji", "Anik"),
        "last": ("Santoso", "Wibowo", "Susanto", "Prasetyo", "Setiawan", "Nugroho", "Purnomo",
                 "Hidayat", "Wijaya", "Kurniawan", "Saputra", "Utomo", "Raharjo", "Pamungkas",
                 "Hartono", "Suryono", "Widodo", "Sulistyo"),
        "last_f": ("Handayani", "Wulandari", "Rahayu", "Lestari", "Suryani", "Kusumawati",
                   "Pratiwi", "Rahmawati"),
    },
    "minang": {
        "m": ("Rahmat", "Fauzi", "Hendra", "Yudi", "Afrizal", "Zulkifli", "Syafrizal", "Irwan",
              "Doni", "Rudi", "Andi", "Fadli", "Yulianto", "Erizal", "Jufri", "Asrul"),
        "f": ("Yusnidar", "Rosmaini", "Nurhayati", "Fitria", "Yulia", "Rahmi", "Desi", "Elfi",
              "Mira", "Silvia", "Yenni", "Nelvi", "Rika", "Welly"),
        "last": ("Chaniago", "Piliang", "Tanjung", "Sikumbang", "Koto", "Jambak", "Malik",
                 "Syahputra", "Putra", "Rasyid", "Nasution", "Hakim"),
        "last_f": ("Putri", "Yanti", "Wati", "Susanti", "Marlina"),
    },
    "sulawesi": {
        "m": ("Moh. Rizal", "Andi", "Abdul", "Hasan", "Irfan", "Taufik", "Sofyan", "Syamsul",
              "Ridwan", "Arman", "Fikri", "Akbar", "Rahmat", "Moh. Iqbal", "Firmansyah"),
        "f": ("Nurhayati", "Sitti", "Rosmawati", "Hasna", "Asni", "Nurul", "Fatmawati", "Hartini",
              "Nurlela", "Andi Sri", "Mutmainah", "Wahyuni"),
        "last": ("Lamakarate", "Labaso", "Tombolotutu", "Lapasere", "Lariwu", "Rahman",
                 "Hamzah", "Said", "Alhabsyi", "Badjeber", "Pettalolo", "Lahay", "Masyhuddin"),
        "last_f": ("Rahmawati", "Hasanah", "Sulastri"),
    },
    "batak": {
        "m": ("Hotman", "Parlindungan", "Bonar", "Togar", "Martua", "Sahat", "Freddy", "Benny",
              "Ronald", "Daniel", "Jonni", "Robert", "Tumpal", "Partogi", "Rizal"),
        "f": ("Rosmawati", "Lasmaria", "Tiurma", "Dame", "Nurmala", "Sondang", "Rotua", "Ester",
              "Maria", "Friska", "Lenny", "Rugun", "Kristina"),
        "last": ("Simanjuntak", "Siregar", "Sinaga", "Damanik", "Purba", "Saragih", "Sitorus",
                 "Nainggolan", "Hutapea", "Simatupang", "Manurung", "Sipayung", "Girsang",
                 "Sembiring", "Lubis"),
        "last_f": (),
    },
}

CANCEL_REASONS = (("busy", 66), ("illness", 13), ("other", 11), ("budget", 10))
CANCEL_NOTES = {
    "busy": ("Bertepatan dengan pelayanan di loket", "Tugas penyusunan laporan akhir tahun",
             "Tidak dapat meninggalkan pekerjaan harian", "Ada rapat koordinasi dengan pimpinan"),
    "illness": ("Sakit, surat keterangan dokter menyusul",),
    "other": ("Tugas luar kota", "Keperluan keluarga"),
    "budget": ("Biaya perjalanan tidak tersedia di DPA unit",),
}
PROVIDER_QUALITY = {"city": 3.8, "university": 4.2, "ministry": 4.1, "national-institute": 4.1,
                    "provincial-agency": 3.6, "professional-organisation": 3.9}
FEEDBACK_COMMENTS = ("Materi sangat relevan dengan pekerjaan", "Waktu pelatihan terlalu singkat",
                     "Narasumber menguasai materi", "Perlu lebih banyak praktik", None, None)


# --- the plan: everything decided up front from the seed, no I/O -------------------------------

@dataclass
class Person:
    nip: str
    name: str
    unit: str
    position: str  # as written in the CSV: struktural / fungsional / pelaksana
    grade: str  # "III/b"
    supervisor: str | None
    keen: float  # how often this person signs up (some people train a lot, many little)
    appointed: int


@dataclass
class PlannedSession:
    spec: SessionSpec
    body: dict[str, Any]  # POST /sessions
    enrollees: list[int]  # staff indexes, in the order they ask
    cancels: list[tuple[int, str, str]]  # (staff index, reason, note), in order
    absent: set[int] = field(default_factory=set)
    pre: dict[int, float] = field(default_factory=dict)
    post: dict[int, float] = field(default_factory=dict)
    actual_cost: int = 0
    # Learned while loading: staff index -> enrollment id; person ids who completed.
    enrollment_ids: dict[int, str] = field(default_factory=dict)
    completed: set[str] = field(default_factory=set)


@dataclass
class CityPlan:
    node: str
    programme: str
    today: dt.date
    staff: list[Person]
    csv_text: str
    bad_rows: int
    sessions: list[PlannedSession]
    surveys: list[dict[str, Any]]
    needs: list[dict[str, Any]]
    seed: int

    def writes(self) -> int:
        """How many write requests the load makes (the progress bar's total)."""
        n = 1 + len(self.sessions) + len(self.surveys) + len(self.needs)
        for s in self.sessions:
            n += len(s.enrollees) + len(s.cancels)
            if s.spec.when == "cut":
                n += 1
            if s.spec.when == "today":
                n += 4 + feedback_count(s) + followup_count(s)
        return n


def feedback_count(s: PlannedSession) -> int:
    return max(1, round(0.7 * (len(s.enrollees) - len(s.cancels)))) if s.enrollees else 0


def followup_count(s: PlannedSession) -> int:
    return max(1, round(0.5 * min(len(s.enrollees) - len(s.cancels), s.spec.capacity)))


def _nip(rng: random.Random, today: dt.date, taken: set[str]) -> tuple[str, dt.date, int, str]:
    while True:
        birth = dt.date(rng.randint(1967, 1999), rng.randint(1, 12), rng.randint(1, 28))
        first = birth.year + 21
        last = min(birth.year + 36, today.year - 1)
        year = rng.randint(first, max(first, last))
        sex = rng.choice("12")
        nip = f"{birth:%Y%m%d}{year:04d}{rng.randint(1, 12):02d}{sex}{rng.randint(1, 999):03d}"
        if nip not in taken:
            taken.add(nip)
            return nip, birth, year, sex


def _grade(rng: random.Random, appointed: int, today: dt.date, structural: bool) -> str:
    service = today.year - appointed
    if structural:
        return rng.choice(("IV/a", "IV/b")) if service > 18 else rng.choice(("III/c", "III/d"))
    if service > 22:
        return rng.choice(("III/d", "IV/a", "IV/b"))
    if service > 8:
        return rng.choice(("III/b", "III/c", "III/d"))
    return rng.choice(("II/c", "II/d", "III/a", "III/a", "III/b"))


def _staff(rng: random.Random, programme: Programme, today: dt.date) -> list[Person]:
    names = NAMES[programme.names]
    size = rng.randint(*programme.staff)
    taken: set[str] = set()
    # Education and civil registration employ the most people, the planning office the fewest.
    weights = [3 if u in (PENDIDIKAN, DUKCAPIL) else 2 if u in (DPMPTSP, KEUANGAN, BAPPEDA) else 1
               for u in programme.units]
    units = list(programme.units) + rng.choices(programme.units, weights, k=size - len(programme.units))
    drawn = []
    for unit in units:
        nip, _, appointed, sex = _nip(rng, today, taken)
        female = sex == "2"
        first = rng.choice(names["f" if female else "m"])
        name = f"{first} {rng.choice(names['last'] + (names['last_f'] if female else ()))}"
        if rng.random() < 0.12:
            name += rng.choice((", S.Sos.", ", S.E.", ", S.Kom.", ", S.Pd.", ", M.Si."))
        drawn.append((unit, nip, appointed, name))
    # The longest-serving person of each unit heads it and supervises the others.
    heads: dict[str, str] = {}
    for unit, nip, _appointed, _ in sorted(drawn, key=lambda d: (d[2], d[1])):
        heads.setdefault(unit, nip)
    people = []
    for unit, nip, appointed, name in drawn:
        structural = heads[unit] == nip
        if structural:
            position = "struktural"
        elif unit == PENDIDIKAN or rng.random() < 0.3:
            position = "fungsional"
        else:
            position = "pelaksana"
        # Few people train a lot and many train little: what makes the 20-JP figure telling.
        people.append(Person(
            nip=nip, name=name, unit=unit, position=position,
            grade=_grade(rng, appointed, today, structural),
            supervisor=None if structural else heads[unit],
            keen=rng.choice((0.3, 0.5, 0.8, 1.0, 1.0, 2.0, 4.0)), appointed=appointed))
    return people


def _csv(rng: random.Random, staff: list[Person]) -> tuple[str, int]:
    """The register as an HR office exports it: Indonesian headers, `;`-delimited, plus two
    rows a careless export really produces (a birth date that does not exist, a bad grade)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(["nip", "nama", "unit_kerja", "jenis_jabatan", "golongan", "nip_atasan"])
    rows = [[p.nip, p.name, p.unit, p.position, p.grade, p.supervisor or ""] for p in staff]
    model = staff[len(staff) // 2]
    bad_date = "19870230" + model.nip[8:]  # 30 February
    bad_grade = model.nip[:-3] + f"{(int(model.nip[-3:]) % 998) + 1:03d}"
    rows.insert(len(rows) // 3, [bad_date, "Data Lama Tanpa Verifikasi", model.unit, "pelaksana",
                                 "III/a", ""])
    rows.insert(2 * len(rows) // 3, [bad_grade, "Salah Ketik Golongan", model.unit, "pelaksana",
                                     "V/a", model.supervisor or ""])
    writer.writerows(rows)
    return out.getvalue(), 2


def _weighted_sample(rng: random.Random, pool: list[int], weights: list[float], k: int) -> list[int]:
    chosen: list[int] = []
    pool, weights = list(pool), list(weights)
    while pool and len(chosen) < k:
        i = rng.choices(range(len(pool)), weights)[0]
        chosen.append(pool.pop(i))
        weights.pop(i)
    return chosen


def _reason(rng: random.Random) -> str:
    return rng.choices([r for r, _ in CANCEL_REASONS], [w for _, w in CANCEL_REASONS])[0]


def _session_body(spec: SessionSpec, start: dt.date, speakers: tuple[str, ...], capacity: int,
                  rng: random.Random) -> dict[str, Any]:
    end = start + dt.timedelta(days=spec.span - 1)
    body: dict[str, Any] = {
        "title": spec.title, "competency_type": spec.competency_type,
        "competency": spec.competency, "method": spec.method, "provider": spec.provider,
        "speakers": list(speakers), "jp": spec.jp, "days": spec.days,
        "start_date": start.isoformat(), "end_date": end.isoformat(), "capacity": capacity,
        "planned_cost": spec.cost_per_seat * capacity // 50_000 * 50_000,
    }
    online = spec.method in ("e-learning", "blended") or (
        spec.method == "seminar" and rng.random() < 0.5)  # a seminar may be a webinar
    if online:
        slug = "-".join(spec.competency.lower().replace("(", "").replace(")", "").split())
        body["online_link"] = ONLINE + slug
    if spec.method == "blended" or not online:
        body["place"] = rng.choice(("Aula BKPSDM", "Ruang Rapat Sekretariat Daerah",
                                    "Gedung Serbaguna Balai Kota", "Ruang Pelatihan Dinas Kominfo"))
    return body


def delivery_date(spec: SessionSpec, today: dt.date, rng: random.Random) -> dt.date:
    """The start date a session gets: a delivered session ("today" in the specs: enrolled, run
    and completed by the load) is held between February and last month; others start in the
    coming weeks."""
    if spec.when != "today":
        return today + dt.timedelta(days=spec.starts_in)
    first, last = dt.date(today.year, 2, 1), today - dt.timedelta(days=30)
    if last <= first:  # early in the year: nothing to look back on yet
        return today
    return first + dt.timedelta(days=rng.randrange((last - first).days))


def plan_city(node: str, programme_name: str, *, seed: int = 2026,
              today: dt.date | None = None) -> CityPlan:
    """Everything the load will send for one city, decided from the seed alone."""
    today = today or dt.datetime.now(dt.UTC).date()
    programme = PROGRAMMES[programme_name]
    rng = random.Random(f"bangkom-demo/{seed}/{programme_name}")
    staff = _staff(rng, programme, today)
    csv_text, bad = _csv(rng, staff)
    everyone = list(range(len(staff)))
    sessions: list[PlannedSession] = []
    dates = random.Random(f"bangkom-demo/{seed}/{programme_name}/dates")

    for spec in programme.sessions:
        start = delivery_date(spec, today, dates)
        if spec.mentoring_pairs:
            # Seniors (structural heads, or long-serving staff) each take one junior of their unit.
            seniors = [i for i in everyone if staff[i].position == "struktural"]
            rng.shuffle(seniors)
            for mentor in seniors[:spec.mentoring_pairs]:
                juniors = [i for i in everyone if staff[i].unit == staff[mentor].unit
                           and staff[i].appointed >= today.year - 8 and i != mentor]
                juniors = juniors or [i for i in everyone if staff[i].unit == staff[mentor].unit
                                      and i != mentor]
                if not juniors:
                    continue  # a one-person unit: this senior has nobody to mentor
                junior = rng.choice(juniors)
                body = _session_body(spec, start, (staff[mentor].name,), 1, rng)
                body["title"] = f"{spec.title}: {staff[mentor].unit}"
                sessions.append(PlannedSession(spec, body, [junior], []))
            continue
        body = _session_body(spec, start, spec.speakers, spec.capacity, rng)
        weights = [staff[i].keen * (4.0 if staff[i].unit in spec.units else 1.0 if not spec.units
                                    else 0.15) for i in everyone]
        enrollees = _weighted_sample(rng, everyone, weights, spec.enroll)
        cancels: list[tuple[int, str, str]] = []
        if spec.when != "cut" and len(enrollees) > 4:
            seated = enrollees[:spec.capacity]
            waiting = enrollees[spec.capacity:]
            n_cancel = max(1, round(len(seated) * rng.uniform(0.08, 0.16)))
            # An over-subscribed session loses a few seats (promotions) and one waiting person.
            picks = rng.sample(seated, min(n_cancel + (1 if waiting else 0), len(seated)))
            if waiting:
                picks.append(rng.choice(waiting))
            for i in picks:
                reason = _reason(rng)
                cancels.append((i, reason, rng.choice(CANCEL_NOTES[reason])))
        sessions.append(PlannedSession(spec, body, enrollees, cancels))

    quality_rng = random.Random(f"bangkom-demo/{seed}/{programme_name}/outcomes")
    for s in sessions:
        if s.spec.when != "today":
            continue
        cancelled = {i for i, _, _ in s.cancels}
        # Who ends up seated: the first `capacity` of those who did not cancel (promotions in order).
        seated = [i for i in s.enrollees if i not in cancelled][:s.spec.capacity]
        for i in seated:
            keen = staff[i].keen
            if quality_rng.random() < (0.14 if keen < 0.8 else 0.06):
                s.absent.add(i)  # "too busy with daily duties" on the day itself
            pre = min(90.0, max(25.0, quality_rng.gauss(56, 11)))
            s.pre[i] = round(pre)
            if i not in s.absent:
                gain = quality_rng.gauss(17, 9)
                s.post[i] = round(min(100.0, max(35.0, pre + gain)))
        cost = s.body["planned_cost"] * quality_rng.uniform(0.82, 1.03)  # budgets are tight
        s.actual_cost = int(cost) // 10_000 * 10_000

    surveys = _surveys(rng, programme, today)
    needs = _needs(rng, programme, today)
    return CityPlan(node, programme_name, today, staff, csv_text, bad, sessions, surveys, needs, seed)


def _surveys(rng: random.Random, programme: Programme, today: dt.date) -> list[dict[str, Any]]:
    """IKM per service unit: surveys closing in December and January, before any training of
    the year (delivered sessions start in February), and one closing this month, after it."""
    before = [f"{today.year - 1}-12", f"{today.year}-01"]
    after = f"{today.year}-{today.month:02d}"
    out = []
    for unit in (u for u in programme.units if u in SERVICE_UNITS):
        base = rng.uniform(2.85, 3.2)
        for period in before:
            out.append(_survey(rng, unit, period, base + rng.uniform(-0.05, 0.04)))
        out.append(_survey(rng, unit, after, base + rng.uniform(0.08, 0.2)))
    return out


def _survey(rng: random.Random, unit: str, period: str, level: float) -> dict[str, Any]:
    means = [round(min(4.0, max(1.0, level + rng.uniform(-0.18, 0.18))), 2) for _ in range(9)]
    return {"unit": unit, "period": period, "respondents": rng.randint(80, 400),
            "element_means": means}


def _needs(rng: random.Random, programme: Programme, today: dt.date) -> list[dict[str, Any]]:
    """This year's needs (they shaped the programme) and next year's, from surveys and forums."""
    out = []
    seen: set[tuple[str, str]] = set()
    for spec in programme.sessions:
        if spec.when == "cut" or (spec.competency_type, spec.competency) in seen:
            continue
        seen.add((spec.competency_type, spec.competency))
        unit = spec.units[0] if spec.units else rng.choice(programme.units)
        out.append({"competency_type": spec.competency_type, "competency": spec.competency,
                    "unit": unit, "staff_count": rng.randint(8, 35),
                    "priority": rng.choice(("high", "high", "medium")), "source": "survey",
                    "plan_year": today.year})
    for ctype, competency, unit in programme.extra_needs:
        out.append({"competency_type": ctype, "competency": competency, "unit": unit,
                    "staff_count": rng.randint(5, 25), "priority": rng.choice(("medium", "high", "low")),
                    "source": "forum", "plan_year": today.year + 1})
    return out


# --- running a plan against the APIs ------------------------------------------------------------

class DemoLoadError(RuntimeError):
    """A city's API refused a step or did not catch up in time: what, where, and the answer."""


class _Api:
    """One service of one city: keep-alive client, bearer token, retry on 503 / transport."""

    def __init__(self, base_url: str, token: str, node: str, service: str,
                 concurrency: int = 6) -> None:
        self.where = f"{node}/{service}"
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))
        # Requests to different documents run side by side; this bounds how many at once.
        self.slots = asyncio.Semaphore(concurrency)

    async def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201),
                   **kwargs: Any) -> httpx.Response:
        delay = 0.2
        for attempt in range(6):
            try:
                async with self.slots:
                    response = await self.http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                if attempt == 5:
                    raise DemoLoadError(f"{self.where}: {method} {path}: {error!r}") from error
            else:
                if response.status_code in ok:
                    return response
                # 503: database briefly down; 409 "try again": lost optimistic races.
                retry = response.status_code == 503 or (
                    response.status_code == 409 and "try again" in response.text)
                if not retry or attempt == 5:
                    raise DemoLoadError(f"{self.where}: {method} {path} answered "
                                        f"{response.status_code}: {response.text[:400]}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.http.aclose()


class _Watch:
    """When anything a city waits for last moved. Waits give up only when the whole city has
    been still for `stall_timeout` seconds: one session's roster may sit unchanged for a long
    time while the consumer works through the other sessions' events (a busy machine)."""

    def __init__(self, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self.moved = time.monotonic()

    async def until(self, what: str, check: Callable[[], Any],
                    show: Callable[[str], None] = lambda _: None) -> Any:
        """Poll `check` until it returns (result, marker) with a truthy result; a marker that
        changes counts as progress."""
        marker = None
        delay = 0.1
        while True:
            result, now = await check()
            if result:
                self.moved = time.monotonic()
                return result
            if now != marker:
                self.moved, marker = time.monotonic(), now
                show(f"waiting for Kafka: {what}")
            elif time.monotonic() - self.moved > self.stall_timeout:
                raise DemoLoadError(
                    f"{what}: nothing moved for {self.stall_timeout:.0f} s (is Kafka flowing?); "
                    "the city is partly loaded: wipe it and load again")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)


class _CityLoader:
    def __init__(self, plan: CityPlan, enrollment: _Api, sessions: _Api,
                 step: Callable[[str, int], None], wait_timeout: float) -> None:
        self.plan, self.enr, self.ses = plan, enrollment, sessions
        self.step, self.watch = step, _Watch(wait_timeout)
        self.count: Counter[str] = Counter()
        self.phases: dict[str, float] = {}
        self.clock = time.monotonic()
        self.reasons: Counter[str] = Counter()
        self.jp: dict[str, int] = defaultdict(int)  # person_id -> JP credited
        self.session_ids: list[str] = []

    def _lap(self, phase: str) -> None:
        """Seconds spent per phase, in the summary: shows whether the APIs or Kafka were slow."""
        now = time.monotonic()
        self.phases[phase] = round(now - self.clock, 1)
        self.clock = now

    def _show(self, description: str) -> None:
        self.step(description, 0)

    async def already_loaded(self) -> bool:
        return bool((await self.ses.call("GET", "/sessions")).json())

    async def run(self) -> dict[str, Any]:
        plan = self.plan
        self.step("staff register (CSV)", 0)
        report = (await self.enr.call("POST", "/staff/import", content=plan.csv_text.encode(),
                                      headers={"Content-Type": "text/csv"})).json()
        self.count["staff_imported"] = report["created"] + report["updated"] + report["unchanged"]
        self.count["csv_rejected"] = report["rejected"]
        self.csv_errors = report["errors"]
        self.step("scheduling sessions", 1)
        self._lap("staff")

        for s in plan.sessions:
            created = (await self.ses.call("POST", "/sessions", json=s.body)).json()
            s.body["session_id"] = created["session_id"]
            self.session_ids.append(created["session_id"])
            self.step("scheduling sessions", 1)
        self._lap("schedule")
        await self.watch.until("catalogue in enrollment", self._catalogue_complete, self._show)
        self._lap("catalogue_wait")

        # One session's requests go one after the other (one document: the waitlist order and
        # the promotions stay deterministic); sessions, surveys and needs go side by side, so
        # one session waits for its roster to cross Kafka while others are still enrolling.
        # The sessions held today enroll first: the roster consumer then meets their events
        # first, and the upcoming sessions' enrollments do not hold up today's delivery.
        today = [s for s in plan.sessions if s.spec.when == "today"]
        later = [s for s in plan.sessions if s.spec.when != "today"]
        waiting = {id(s) for s in today}
        today_enrolled = asyncio.Event()
        if not waiting:
            today_enrolled.set()

        async def deliver(s: PlannedSession) -> None:
            await self._enroll(s)
            waiting.discard(id(s))
            if not waiting:
                today_enrolled.set()
            await self._deliver(s)
            await self._evaluate(s)

        async def enroll_later(s: PlannedSession) -> None:
            await today_enrolled.wait()
            await self._enroll(s)
            if s.spec.when == "cut":
                await self._cut(s)

        await asyncio.gather(*(deliver(s) for s in today), *(enroll_later(s) for s in later),
                             *(self._survey(survey) for survey in plan.surveys),
                             *(self._need(need) for need in plan.needs))
        self._lap("sessions_surveys_needs")
        return self.summary()

    async def _cut(self, s: PlannedSession) -> None:
        await self.ses.call("POST", f"/sessions/{s.body['session_id']}/cancel",
                            json={"reason": "Anggaran dialihkan: efisiensi belanja daerah"})
        self.count["sessions_cancelled"] += 1
        self.step("budget cut", 1)

    async def _survey(self, survey: dict[str, Any]) -> None:
        response = await self.ses.call("POST", "/surveys", json=survey, ok=(201, 409))
        self.count["surveys"] += response.status_code == 201
        self.step("IKM surveys", 1)

    async def _need(self, need: dict[str, Any]) -> None:
        await self.enr.call("POST", "/needs", json=need)
        self.count["needs"] += 1
        self.step("training needs", 1)

    async def _catalogue_complete(self) -> tuple[bool, int]:
        items = (await self.enr.call("GET", "/sessions", params={"include_past": "true"})).json()
        known = {i["session_id"] for i in items["items"]}
        return set(self.session_ids) <= known, len(known)

    async def _enroll(self, s: PlannedSession) -> None:
        staff, session_id = self.plan.staff, s.body["session_id"]
        self.step(f"enrolling: {s.spec.competency}", 0)
        for n, i in enumerate(s.enrollees):
            nominated = "self" if (n + len(staff[i].name)) % 4 == 0 else "supervisor"
            answer = (await self.enr.call("POST", "/enrollments", json={
                "session_id": session_id, "nip": staff[i].nip, "nominated_by": nominated,
                "late": s.body["start_date"] < dt.date.today().isoformat()})).json()
            s.enrollment_ids[i] = answer["enrollment_id"]
            # As the nation counts them: a seat taken at once, or a place on the waitlist.
            self.count["waitlisted" if answer["status"] == "waitlisted" else "enrollments"] += 1
            self.step(f"enrolling: {s.spec.competency}", 1)
        for i, reason, note in s.cancels:
            answer = (await self.enr.call(
                "POST", f"/enrollments/{s.enrollment_ids[i]}/cancel",
                json={"reason": reason, "note": note})).json()
            self.count["cancellations"] += 1
            self.reasons[reason] += 1
            self.count["promoted"] += len(answer["promoted"])
            self.step(f"cancellations: {s.spec.competency}", 1)

    async def _deliver(self, s: PlannedSession) -> None:
        """Wait for the roster to reach the sessions service, then run the day and close it."""
        session_id = s.body["session_id"]
        label = f"running: {s.spec.competency}"
        self.step(label, 0)
        roster = (await self.enr.call("GET", f"/sessions/{session_id}/roster")).json()
        seated = {e["enrollment_id"] for e in roster["enrolled"]}

        async def synced() -> tuple[dict[str, str] | None, str]:
            view = (await self.ses.call("GET", f"/sessions/{session_id}")).json()
            here = {e["enrollment_id"]: p for p, e in view["roster"].items()
                    if e["status"] == "participant"}
            marker = sorted((e["enrollment_id"], e["status"]) for e in view["roster"].values())
            return (here if set(here) == seated else None), marker

        person_of_enrollment = await self.watch.until(f"roster of {session_id} in sessions",
                                                      synced, self._show)
        person = {i: person_of_enrollment[e] for i, e in s.enrollment_ids.items()
                  if e in person_of_enrollment}
        if not person:
            return
        pre = {person[i]: v for i, v in s.pre.items() if i in person}
        await self.ses.call("POST", f"/sessions/{session_id}/assessments",
                            json={"kind": "pre", "scores": pre})
        self.step(label, 1)
        present = sorted(person[i] for i in person if i not in s.absent)
        absent = sorted(person[i] for i in person if i in s.absent)
        await self.ses.call("POST", f"/sessions/{session_id}/attendance",
                            json={"day": 1, "present": present, "absent": absent})
        self.step(label, 1)
        post = {person[i]: v for i, v in s.post.items() if i in person}
        if post:
            await self.ses.call("POST", f"/sessions/{session_id}/assessments",
                                json={"kind": "post", "scores": post})
        self.step(label, 1)
        done = (await self.ses.call("POST", f"/sessions/{session_id}/complete",
                                    json={"actual_cost": s.actual_cost,
                                          "completed_on": s.body["end_date"]})).json()
        self.step(label, 1)
        self.count["sessions_completed"] += 1
        for outcome in done["completion"]["outcomes"]:
            self.count["participants"] += 1
            if outcome["completed"]:
                self.count["completions"] += 1
                self.jp[outcome["person_id"]] += outcome["jp"]
                s.completed.add(outcome["person_id"])
            else:
                self.count["not_completed"] += 1
                self.count["missed_attendance"] += outcome["attendance_percent"] < 80

    async def _evaluate(self, s: PlannedSession) -> None:
        """Reaction (feedback) and behaviour (supervisor follow-ups) of a delivered session."""
        session_id = s.body["session_id"]
        rng = random.Random(f"bangkom-demo/{self.plan.seed}/{s.body['title']}/{s.enrollees}")
        quality = PROVIDER_QUALITY[s.spec.provider]
        label = f"evaluation: {s.spec.competency}"

        async def one(scores: dict[str, Any]) -> None:
            await self.ses.call("POST", f"/sessions/{session_id}/feedback", json=scores)
            self.count["feedback"] += 1
            self.step(label, 1)

        forms = [{**{k: min(5, max(1, round(rng.gauss(quality + bias, 0.7))))
                     for k, bias in (("content", 0.1), ("speaker", 0.2), ("method", -0.2),
                                     ("relevance", 0.15))},
                  "comment": rng.choice(FEEDBACK_COMMENTS)} for _ in range(feedback_count(s))]
        await asyncio.gather(*(one(form) for form in forms))  # each form is a document of its own
        completers = sorted(s.completed)
        rng.shuffle(completers)
        for person_id in completers[:followup_count(s)]:
            applies = rng.random() < 0.72
            await self.ses.call("POST", f"/sessions/{session_id}/followups", json={
                "person_id": person_id, "applies_skills": applies,
                "rating": min(5, max(1, round(rng.gauss(3.9 if applies else 2.8, 0.6)))),
                "weeks_after": rng.choice((6, 8, 12))})
            self.count["followups"] += 1
            self.step(label, 1)
        # Steps planned but not taken (fewer completers than planned follow-ups) still count.
        self.step(label, max(0, followup_count(s) - len(completers)))

    def summary(self) -> dict[str, Any]:
        staff = self.count["staff_imported"]
        at_target = sum(1 for jp in self.jp.values() if jp >= 20)
        return {
            "programme": self.plan.programme,
            "staff_imported": staff, "csv_rejected": self.count["csv_rejected"],
            "csv_errors": self.csv_errors,
            "sessions": len(self.plan.sessions),
            "sessions_completed": self.count["sessions_completed"],
            "sessions_cancelled": self.count["sessions_cancelled"],
            "sessions_upcoming": sum(s.spec.when == "upcoming" for s in self.plan.sessions),
            "enrollments": self.count["enrollments"], "waitlisted": self.count["waitlisted"],
            "promoted": self.count["promoted"], "cancellations": self.count["cancellations"],
            "cancellation_reasons": dict(self.reasons),
            "participants": self.count["participants"], "completions": self.count["completions"],
            "not_completed": self.count["not_completed"],
            "missed_attendance": self.count["missed_attendance"],
            "jp_credited": sum(self.jp.values()),
            "people_at_least_20_jp": at_target, "people_below_20_jp": staff - at_target,
            "feedback": self.count["feedback"], "followups": self.count["followups"],
            "surveys": self.count["surveys"], "needs": self.count["needs"],
            "phase_seconds": self.phases,
        }


# --- entry points -------------------------------------------------------------------------------

def city_nodes(urls: dict[str, str]) -> list[str]:
    """Nodes that have both city services in `urls`, in the federation's order."""
    nodes = {key.split("/")[0] for key in urls}
    found = [n for n in nodes if f"{n}/enrollment" in urls and f"{n}/sessions" in urls]
    order = list(PROGRAMMES)
    return sorted(found, key=lambda n: (order.index(n) if n in order else len(order), n))


async def load_async(urls: dict[str, str], tokens: dict[str, dict[str, str]], *,
                     seed: int = 2026, progress: bool = True, console: Any = None,
                     programmes: dict[str, str] | None = None, strict: bool = False,
                     wait_timeout: float = 45.0) -> dict[str, Any]:
    """`load` for callers already in an event loop."""
    started = time.monotonic()
    nodes = city_nodes(urls)
    programmes = programmes or {}
    for node in nodes:
        if programmes.get(node, node) not in PROGRAMMES:
            raise ValueError(f"no demo programme for {node!r}: pass programmes={{{node!r}: "
                             f"one of {sorted(PROGRAMMES)}}}")
    plans = {n: plan_city(n, programmes.get(n, n), seed=seed) for n in nodes}
    bar = _Progress(console, nodes, plans) if progress else None
    results: dict[str, dict[str, Any]] = {}

    async def one(node: str) -> None:
        token = tokens[node]["operator"]
        enr = _Api(urls[f"{node}/enrollment"], token, node, "enrollment")
        ses = _Api(urls[f"{node}/sessions"], token, node, "sessions")
        step = bar.stepper(node) if bar else (lambda _d, _n: None)
        city_started = time.monotonic()
        try:
            loader = _CityLoader(plans[node], enr, ses, step, wait_timeout)
            if await loader.already_loaded():
                results[node] = {"programme": plans[node].programme, "skipped": True}
                if bar:
                    bar.finish(node, "already has sessions: skipped")
                return
            results[node] = await loader.run()
            results[node]["seconds"] = round(time.monotonic() - city_started, 1)
            if bar:
                bar.finish(node, "done")
        except (DemoLoadError, httpx.HTTPError) as error:
            if strict:
                raise
            results[node] = {"programme": plans[node].programme, "error": str(error)}
            if bar:
                bar.finish(node, "[red]failed[/]")
        finally:
            await enr.close()
            await ses.close()

    try:
        if bar:
            bar.start()
        await asyncio.gather(*(one(n) for n in nodes))
    finally:
        if bar:
            bar.stop()
    summary = {"cities": {n: results[n] for n in nodes},
               "seconds": round(time.monotonic() - started, 1)}
    if bar:
        bar.table(summary)
    return summary


def load(urls: dict[str, str], tokens: dict[str, dict[str, str]], *, seed: int = 2026,
         progress: bool = True, console: Any = None, programmes: dict[str, str] | None = None,
         strict: bool = False, wait_timeout: float = 45.0) -> dict[str, Any]:
    """Load the demo year into every city in `urls`; see the module docstring."""
    coroutine = load_async(urls, tokens, seed=seed, progress=progress, console=console,
                           programmes=programmes, strict=strict, wait_timeout=wait_timeout)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from inside an event loop (e.g. an async test): run on a thread of its own.
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = asyncio.run(coroutine)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = error

    thread = threading.Thread(target=run, name="bangkom-demo")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


class _Progress:
    """One rich progress bar per city, and the summary table at the end."""

    def __init__(self, console: Any, nodes: list[str], plans: dict[str, CityPlan]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.fields[city]:<16}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
            console=self.console)
        self.tasks = {n: self.progress.add_task("waiting", total=plans[n].writes(), city=n)
                      for n in nodes}

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def stepper(self, node: str) -> Callable[[str, int], None]:
        task = self.tasks[node]
        return lambda description, n: self.progress.update(task, description=description, advance=n)

    def finish(self, node: str, description: str) -> None:
        task = self.tasks[node]
        total = next(t.total for t in self.progress.tasks if t.id == task)
        self.progress.update(task, description=description, completed=total)

    def table(self, summary: dict[str, Any]) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        rows = {  # one line per measure, one column per city: fits 80 columns with 4 cities
            "staff (CSV rows rejected)": lambda r: f"{r['staff_imported']} ({r['csv_rejected']})",
            "sessions done/next/cut": lambda r: f"{r['sessions_completed']}/"
                                                f"{r['sessions_upcoming']}/{r['sessions_cancelled']}",
            "seated/waitlist/promoted": lambda r: f"{r['enrollments']}/{r['waitlisted']}/"
                                                  f"{r['promoted']}",
            "cancellations (busy)": lambda r: f"{r['cancellations']} "
                                              f"({r['cancellation_reasons'].get('busy', 0)})",
            "completed/not": lambda r: f"{r['completions']}/{r['not_completed']}",
            "JP credited": lambda r: str(r["jp_credited"]),
            "staff with >= 20 JP": lambda r: f"{r['people_at_least_20_jp']}/{r['staff_imported']}",
            "feedback/follow-ups": lambda r: f"{r['feedback']}/{r['followups']}",
            "IKM surveys/needs": lambda r: f"{r['surveys']}/{r['needs']}",
            "seconds": lambda r: str(r.get("seconds", "")),
        }
        loaded = {n: r for n, r in summary["cities"].items()
                  if "error" not in r and not r.get("skipped")}
        for node, row in summary["cities"].items():
            if "error" in row:
                self.console.print(Text(f"{node}: {row['error']}", style="red"))
            elif row.get("skipped"):
                self.console.print(f"{node}: already has sessions, left as it is")
        if not loaded:
            return
        table = Table(title=f"Demo data loaded in {summary['seconds']} s", title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("", no_wrap=True)
        for node in loaded:
            table.add_column(node, justify="right")
        for label, show in rows.items():
            table.add_row(label, *[show(r) for r in loaded.values()])
        self.console.print(table)


if __name__ == "__main__":  # python -m deploy.demo: print one city's plan, no I/O
    import json
    import sys

    name = sys.argv[1] if len(sys.argv) > 1 else "salatiga"
    p = plan_city(name, name)
    print(p.csv_text[:600])
    print(json.dumps([s.body for s in p.sessions], indent=1, ensure_ascii=False)[:3000])
    print("writes:", p.writes())
