"""Deterministic generator of a realistic training year for N cities, as Kafka records.

`generate(cities=50, seed=1)` yields `Record(topic, key, value)` with `value` the JSON bytes of a
Bangkom CloudEvent (the same shape `Envelope.to_bytes()` writes), in time order per city. The
same seed gives byte-identical output. Events are built as plain dicts and serialised with
orjson (no pydantic per event) so a million events take seconds; a test decodes a sample with
the real contracts.

Proportions follow the source documents (seeds/) and national practice: face-to-face classes,
e-learning from national institutes, workshops, seminars, simulations, project-based training
and mentoring; providers city, universities, ministries, national institutes; staff too busy
with daily duties is the dominant reason to cancel; budgets are tight.

    python -m deploy.datagen --cities 50 --staff 800 --out events.jsonl   # or --kafka host:port
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import time
from collections.abc import Iterator
from typing import NamedTuple

import orjson

from shared.pseudonym import person_id
from shared.topics import CITIES, topic

EXTRA_CITIES = (
    "bandung", "surabaya", "semarang", "yogyakarta", "malang", "medan", "padang", "pekanbaru",
    "jambi", "palembang", "bengkulu", "bandar-lampung", "pangkalpinang", "tanjungpinang",
    "serang", "cilegon", "bogor", "depok", "bekasi", "tangerang", "cirebon", "tasikmalaya",
    "surakarta", "magelang", "pekalongan", "tegal", "kediri", "blitar", "madiun", "denpasar",
    "mataram", "kupang", "pontianak", "singkawang", "palangka-raya", "banjarmasin",
    "banjarbaru", "samarinda", "balikpapan", "bontang", "tarakan", "manado", "bitung",
    "gorontalo", "makassar", "parepare", "kendari", "ambon", "ternate", "jayapura",
)
UNITS = (
    "Dinas Penanaman Modal dan PTSP", "Dinas Kependudukan dan Pencatatan Sipil",
    "Badan Perencanaan Pembangunan Daerah", "Badan Pengelolaan Keuangan dan Aset Daerah",
    "Dinas Pendidikan", "Dinas Kesehatan", "Dinas Komunikasi dan Informatika",
    "Dinas Sosial", "Dinas Perhubungan", "Badan Kepegawaian dan Pengembangan SDM",
    "Kecamatan Kota", "Rumah Sakit Umum Daerah",
)
COMPETENCIES = {
    "technical": (
        "Pengelolaan Keuangan Daerah", "Perencanaan Pembangunan (RPJMD)", "E-Government",
        "Pelayanan Perizinan Digital", "Pengadaan Barang dan Jasa", "Kearsipan Digital",
        "Analisis Data", "Metode Pembelajaran Guru",
    ),
    "managerial": ("Kepemimpinan", "Manajemen Kinerja", "Manajemen Waktu", "Manajemen Perubahan"),
    "socio-cultural": ("Komunikasi Publik", "Pelayanan Prima", "Integritas dan Antikorupsi"),
}
# (weight, JP range, cost per participant-JP in rupiah)
METHODS = {
    "classroom": (24, (16, 40), (150_000, 300_000)),
    "e-learning": (20, (10, 30), (20_000, 60_000)),
    "workshop": (16, (8, 24), (150_000, 350_000)),
    "seminar": (10, (4, 8), (80_000, 200_000)),
    "blended": (8, (20, 40), (100_000, 220_000)),
    "mentoring": (8, (12, 32), (10_000, 40_000)),
    "project-based": (7, (24, 60), (60_000, 150_000)),
    "simulation": (7, (8, 16), (120_000, 250_000)),
}
PROVIDERS = {  # weight, feedback quality (mean score of 1..5)
    "city": (38, 3.8), "university": (15, 4.2), "ministry": (14, 4.0),
    "national-institute": (20, 4.1), "provincial-agency": (8, 3.6),
    "professional-organisation": (5, 3.9),
}
CANCEL = (("busy", 62), ("illness", 15), ("budget", 9), ("other", 14))
# Few sessions in January (budget not yet released) and December (year-end closing).
MONTH_WEIGHTS = (2, 7, 10, 10, 9, 9, 10, 10, 10, 10, 9, 4)
SECRET = "local-demo-secret-change-me"  # the default Settings.pseudonym_secret


class Record(NamedTuple):
    topic: str
    key: bytes
    value: bytes


def city_names(count: int) -> list[str]:
    names = list(CITIES) + [c for c in EXTRA_CITIES if c not in CITIES]
    return names[:count] + [f"kota-{i:03d}" for i in range(len(names), count)]


class _City:
    """Events of one city for one year, built as dicts and sorted by time."""

    def __init__(self, city: str, seed: int, year: int, staff: int) -> None:
        self.city, self.year = city, year
        self.rng = random.Random(f"{seed}/{city}/{year}")
        self.out: list[tuple[str, str, bytes, dict]] = []  # (time, stream, key, envelope)
        self.people: list[dict] = []
        self.n_staff = staff
        self.trained_units: dict[str, dt.date] = {}

    def emit(self, when: dt.datetime, stream: str, etype: str, subject: str, data: dict) -> None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.out.append((stamp, stream, subject.encode(), {
            "specversion": "1.0",
            "id": f"{self.rng.getrandbits(128):032x}",
            "source": f"/bangkom/{self.city}/{stream}",
            "type": f"bangkom.{etype}.v1",
            "time": stamp,
            "subject": subject,
            "datacontenttype": "application/json",
            "city": self.city,
            "data": data,
        }))

    def day(self, month_from: int = 1, month_to: int = 12) -> dt.date:
        start = dt.date(self.year, month_from, 1)
        end = dt.date(self.year, month_to, 28)
        return start + dt.timedelta(days=self.rng.randrange((end - start).days + 1))

    def at(self, day: dt.date, hour: int) -> dt.datetime:
        return dt.datetime(day.year, day.month, day.day, hour, self.rng.randrange(60),
                           self.rng.randrange(60))

    def build(self) -> list[Record]:
        self.staff_register()
        self.training_needs()
        for number in range(max(1, round(self.n_staff * 3.0 / 24))):
            self.session(number)
        self.satisfaction_surveys()
        self.out.sort(key=lambda item: item[0])
        return [
            Record(topic(self.city, stream), key, orjson.dumps(envelope))
            for _, stream, key, envelope in self.out
        ]

    def staff_register(self) -> None:
        rng = self.rng
        for seq in range(self.n_staff):
            sex = rng.choice("12")
            nip = (f"{rng.randrange(1965, 2000)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
                   f"{rng.randrange(1990, self.year)}{rng.randrange(1, 13):02d}{sex}{seq % 1000:03d}")
            person = {
                "person_id": person_id(f"{self.city}:{nip}", SECRET),
                "unit": UNITS[rng.randrange(len(UNITS))],
                "position_type": rng.choice(("structural", "functional", "functional", "general")),
                "rank_group": rng.choice(("II", "III", "III", "III", "IV")),
                "sex": "M" if sex == "1" else "F",
                # some staff train a lot, many little: the spread the 20-JP target is about
                "zeal": rng.betavariate(2, 2),
            }
            self.people.append(person)
            data = {k: person[k] for k in ("person_id", "unit", "position_type", "rank_group", "sex")}
            self.emit(self.at(dt.date(self.year, 1, rng.randrange(2, 15)), 8), "enrollment",
                      "staff.registered", f"staff/{person['person_id']}", data)

    def training_needs(self) -> None:
        rng = self.rng
        for unit_no, unit in enumerate(UNITS):
            for n in range(rng.randrange(2, 5)):
                ctype = rng.choices(("technical", "managerial", "socio-cultural"), (60, 22, 18))[0]
                need_id = f"{self.city[:12]}-n{unit_no:02d}{n}"
                self.emit(self.at(self.day(1, 2), 10), "enrollment", "need.submitted",
                          f"need/{need_id}", {
                              "need_id": need_id, "competency_type": ctype,
                              "competency": rng.choice(COMPETENCIES[ctype]), "unit": unit,
                              "staff_count": rng.randrange(3, 31),
                              "priority": rng.choice(("high", "medium", "medium", "low")),
                              "source": rng.choice(("survey", "survey", "forum")),
                              "plan_year": self.year,
                          })

    def session(self, number: int) -> None:
        rng = self.rng
        sid = f"{self.city[:12]}-{self.year}-{number:04d}"
        subject = f"session/{sid}"
        ctype = rng.choices(("technical", "managerial", "socio-cultural"), (58, 24, 18))[0]
        method = _pick(rng, METHODS)
        provider = _pick(rng, PROVIDERS)
        _, (jp_lo, jp_hi), (cost_lo, cost_hi) = METHODS[method]
        jp = rng.randrange(jp_lo, jp_hi + 1)
        days = max(1, -(-jp // 8))
        month = rng.choices(range(1, 13), MONTH_WEIGHTS)[0]
        # inside the year: after the staff register (early January), done by 20 December
        start = min(max(self.day(month, month), dt.date(self.year, 1, 20)),
                    dt.date(self.year, 12, 20) - dt.timedelta(days=days - 1))
        end = start + dt.timedelta(days=days - 1)
        capacity = rng.randrange(15, 41)
        planned = capacity * jp * rng.randrange(cost_lo, cost_hi, 5_000)
        scheduled_on = max(start - dt.timedelta(days=rng.randrange(21, 45)),
                           dt.date(self.year, 1, 16))
        competency = rng.choice(COMPETENCIES[ctype])
        self.emit(self.at(scheduled_on, 9), "sessions", "session.scheduled", subject, {
            "session_id": sid, "title": f"Pelatihan {competency}",
            "competency_type": ctype, "competency": competency,
            "method": method, "provider": provider, "jp": jp,
            "start_date": start.isoformat(), "end_date": end.isoformat(), "days": days,
            "capacity": capacity, "planned_cost": planned,
        })
        if rng.random() < 0.03:
            self.emit(self.at(start - dt.timedelta(days=3), 11), "sessions", "session.cancelled",
                      subject, {"session_id": sid, "reason": "anggaran dialihkan"})
            return
        # demand sometimes exceeds the seats: the rest wait
        demand = min(len(self.people), int(capacity * rng.uniform(0.7, 1.35)))
        chosen = rng.sample(self.people, demand)
        chosen.sort(key=lambda p: -p["zeal"] * rng.random())
        enrolled = chosen[:capacity]
        waiting = chosen[capacity:]
        window = max(1, (start - scheduled_on).days - 1)
        for position, person in enumerate(chosen):
            when = self.at(scheduled_on + dt.timedelta(days=1 + rng.randrange(window)), 10)
            data = {"session_id": sid, **_dims(person), "enrollment_id": f"{sid}-e{position:03d}",
                    "nominated_by": "supervisor" if rng.random() < 0.7 else "self"}
            if position < capacity:
                self.emit(when, "enrollment", "enrollment.created", subject, data)
            else:
                data["position"] = position - capacity + 1
                self.emit(when, "enrollment", "enrollment.waitlisted", subject, data)
        participants = []
        last_call = self.at(start - dt.timedelta(days=1), 13)
        for position, person in enumerate(enrolled):
            if rng.random() < 0.12:
                self.emit(last_call, "enrollment", "enrollment.cancelled", subject, {
                    "session_id": sid, "enrollment_id": f"{sid}-e{position:03d}",
                    "person_id": person["person_id"], "reason": _pick(rng, CANCEL),
                    "was_waitlisted": False,
                })
                if waiting:
                    promoted = waiting.pop(0)
                    self.emit(last_call + dt.timedelta(minutes=1), "enrollment",
                              "enrollment.promoted", subject, {
                                  "session_id": sid, "person_id": promoted["person_id"],
                                  "enrollment_id": f"{sid}-e{chosen.index(promoted):03d}",
                              })
                    participants.append(promoted)
            else:
                participants.append(person)
        for person in waiting:
            if rng.random() < 0.3:
                self.emit(last_call + dt.timedelta(hours=2), "enrollment", "enrollment.cancelled",
                          subject, {
                              "session_id": sid, "person_id": person["person_id"],
                              "enrollment_id": f"{sid}-e{chosen.index(person):03d}",
                              "reason": _pick(rng, CANCEL), "was_waitlisted": True,
                          })
        self.deliver(sid, subject, ctype, method, provider, jp, start, end, days, planned,
                     participants)

    def deliver(self, sid, subject, ctype, method, provider, jp, start, end, days, planned,
                participants) -> None:
        rng = self.rng
        quality = PROVIDERS[provider][1] + rng.gauss(0, 0.3)
        completed = 0
        for person in participants:
            pid = person["person_id"]
            reliability = 0.9 + 0.09 * person["zeal"]
            present_days = 0
            for d in range(1, days + 1):
                present = rng.random() < reliability
                present_days += present
                self.emit(self.at(start + dt.timedelta(days=d - 1), 8), "sessions",
                          "attendance.recorded", subject,
                          {"session_id": sid, "person_id": pid, "day": d, "present": present})
            pre = min(100.0, max(0.0, round(rng.gauss(55, 13), 1)))
            post = min(100.0, max(0.0, round(pre + rng.gauss(14, 9) * (quality / 4), 1)))
            self.emit(self.at(start, 8), "sessions", "assessment.recorded", subject,
                      {"session_id": sid, "person_id": pid, "kind": "pre", "score": pre})
            self.emit(self.at(end, 15), "sessions", "assessment.recorded", subject,
                      {"session_id": sid, "person_id": pid, "kind": "post", "score": post})
            if present_days >= 0.8 * days and post >= 50:  # attended 80 % and passed
                completed += 1
                self.emit(self.at(end, 16), "sessions", "participant.completed", subject, {
                    "session_id": sid, **_dims(person), "jp": jp,
                    "completed_on": end.isoformat(), "competency_type": ctype, "method": method,
                    "provider": provider,
                })
                unit_first = self.trained_units.get(person["unit"])
                if unit_first is None or end < unit_first:
                    self.trained_units[person["unit"]] = end
                weeks = rng.randrange(8, 17)
                follow_up = end + dt.timedelta(weeks=weeks)
                if rng.random() < 0.6 and follow_up.year == self.year:
                    applies = rng.random() < 0.45 + 0.1 * quality / 4 + 0.2 * person["zeal"]
                    self.emit(self.at(follow_up, 10), "sessions", "followup.recorded", subject, {
                        "session_id": sid, "person_id": pid, "applies_skills": applies,
                        "rating": _score(rng, quality + (0.5 if applies else -0.5)),
                        "weeks_after": weeks,
                    })
            if rng.random() < 0.8:
                self.emit(self.at(end, 16), "sessions", "feedback.submitted", subject, {
                    "session_id": sid, "feedback_id": f"{rng.getrandbits(64):016x}",
                    "content": _score(rng, quality), "speaker": _score(rng, quality + 0.2),
                    "method": _score(rng, quality - 0.2), "relevance": _score(rng, quality),
                })
        self.emit(self.at(end + dt.timedelta(days=1), 10), "sessions", "session.completed",
                  subject, {
                      "session_id": sid, "completed_on": end.isoformat(),
                      "participants": len(participants), "completed": completed,
                      "actual_cost": int(planned * rng.uniform(0.78, 1.08)) // 1000 * 1000,
                  })

    def satisfaction_surveys(self) -> None:
        """IKM per unit: a baseline in January, then each quarter; trained units improve."""
        rng = self.rng
        for unit_no, unit in enumerate(UNITS):
            base = rng.uniform(66, 86)
            first = self.trained_units.get(unit)
            for quarter_end in (1, 4, 7, 10, 12):
                closed = dt.date(self.year, quarter_end, 15)
                lift = 0.0
                if first is not None and closed > first:
                    lift = rng.uniform(1.0, 5.0)
                target = min(3.95, (base + lift) / 25)
                elements = [round(min(4.0, max(1.0, rng.gauss(target, 0.12))), 2) for _ in range(9)]
                survey_id = f"{self.city[:12]}-s{unit_no:02d}-{quarter_end:02d}"
                self.emit(self.at(closed, 12), "sessions", "satisfaction.surveyed",
                          f"survey/{survey_id}", {
                              "survey_id": survey_id, "unit": unit,
                              "period": f"{self.year}-{quarter_end:02d}",
                              "respondents": rng.randrange(100, 400), "element_means": elements,
                              "ikm": round(sum(elements) / 9 * 25, 2),
                          })


def _pick(rng: random.Random, weighted: dict | tuple) -> str:
    items = weighted.items() if isinstance(weighted, dict) else weighted
    names, weights = zip(*((n, w[0] if isinstance(w, tuple) else w) for n, w in items), strict=True)
    return rng.choices(names, weights)[0]


def _dims(person: dict) -> dict:
    return {k: person[k] for k in ("person_id", "unit", "position_type", "rank_group", "sex")}


def _score(rng: random.Random, mean: float) -> int:
    return min(5, max(1, round(rng.gauss(mean, 0.7))))


def generate(cities: int | list[str] = 4, *, seed: int = 1, year: int = 2026,
             staff: int = 800) -> Iterator[Record]:
    """All events of `cities` (a count or names), city after city, each city in time order.

    About 25 events per staff member: 50 cities x 800 staff is a bit over 1,000,000 events.
    """
    names = city_names(cities) if isinstance(cities, int) else list(cities)
    for name in names:
        yield from _City(name, seed, year, staff).build()


async def produce(bootstrap: str, records: Iterator[Record], *, linger_ms: int = 20,
                  mirror: str | None = None) -> int:
    """Write records to Kafka (topics must exist), the key deciding the partition as a relay would.

    `mirror`: also write every record to this one topic (Kafka's ConsumerPerformance reads one)."""
    from aiokafka import AIOKafkaProducer

    from shared.events import KAFKA_HEADERS

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms,
                                max_batch_size=512 * 1024, compression_type=None)
    await producer.start()
    sent = 0
    try:
        pending = []
        for record in records:
            pending.append(await producer.send(record.topic, record.value, key=record.key,
                                               headers=KAFKA_HEADERS))
            if mirror:
                pending.append(await producer.send(mirror, record.value, key=record.key,
                                                   headers=KAFKA_HEADERS))
            sent += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=4)
    parser.add_argument("--staff", type=int, default=800, help="staff per city")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--out", help="JSON lines {topic, key, value} to this file ('-' = stdout)")
    parser.add_argument("--kafka", help="bootstrap servers to produce to instead")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    records = generate(args.cities, seed=args.seed, year=args.year, staff=args.staff)
    if args.kafka:
        from shared.kafka_admin import ensure_topics

        async def run() -> int:
            names = [topic(c, s) for c in city_names(args.cities) for s in ("enrollment", "sessions")]
            await ensure_topics(args.kafka, names)
            return await produce(args.kafka, records)

        count = asyncio.run(run())
    else:
        out = sys.stdout.buffer if args.out in (None, "-") else open(args.out, "wb")
        count = 0
        for record in records:
            out.write(orjson.dumps({"topic": record.topic, "key": record.key.decode(),
                                    "value": orjson.Fragment(record.value)}) + b"\n")
            count += 1
        out.flush()
    elapsed = time.perf_counter() - began
    print(f"{count} events in {elapsed:.1f} s ({count / elapsed:,.0f}/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
