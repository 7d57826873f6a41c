"""National figures: what every city's events add up to. Pure: no I/O, no clock.

`Figures` keeps only sums, counts and set-once facts, so a delta reduced from one Kafka batch
can be merged into the total exactly, in any grouping (merge of deltas == applying all events).
Means and rates are derived on read by the query functions at the bottom, which return plain
dicts for the API and the insights.

Every sum is an integer: scores and IKM in thousandths, normalised gains in millionths, so the
sum of a batch's deltas is exactly the sum of its events whatever the grouping or order
(floating-point sums are not associative, and a mean rounded for display could flip).

Most figures are kept per session and joined with the session's dimensions (competency type,
method, provider, start month) only on read: enrollments travel on the enrollment topic and
`SessionScheduled` on the sessions topic, so no batch can be relied on to hold both.
Session figures are dated by the session's start month (the month the training happened);
JP by the completion date's calendar year; IKM by the survey period.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from shared import events as ev

JP_TARGET = ev.JP_TARGET
SCORE_SCALE = 1000  # test scores and IKM are summed in thousandths of a point
GAIN_SCALE = 1_000_000  # normalised gains are summed in millionths
CANCEL_REASONS = ("busy", "budget", "illness", "other")
UNKNOWN = "unknown"  # a dimension of a session whose SessionScheduled has not arrived (yet)


def _month(value: dt.date | dt.datetime) -> str:
    return f"{value.year:04d}-{value.month:02d}"


class Figures:
    """Sums and counts over events; `apply` one event, `merge` another Figures."""

    def __init__(self) -> None:
        self.events: dict[str, int] = defaultdict(int)  # city -> events applied
        self.last_event: dict[str, float] = {}  # city -> newest event time (epoch seconds)
        # (city, session_id) -> {"dims": {...}, "n": {counter: number}}
        self.sessions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        # (city, year) -> person_id -> JP credited that year (0 = seen but not credited)
        self.jp: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
        self.staff: dict[str, dict[str, int]] = defaultdict(dict)  # city -> person -> year registered
        # (city, session, person) -> {"pre": score} or {"post": score} until both are known
        self.unpaired: dict[tuple[str, str, str], dict[str, float]] = {}
        # (city, unit) -> period "YYYY-MM" -> [IKM sum in thousandths, survey count]
        self.ikm: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(dict)
        self.first_completion: dict[tuple[str, str], str] = {}  # (city, unit) -> "YYYY-MM"
        # (city, plan_year, competency_type, competency) -> [staff_count sum, needs count]
        self.needs: dict[tuple[str, int, str, str], list[int]] = {}

    # --- apply ----------------------------------------------------------------------------

    def apply(self, envelope: ev.Envelope, payload: ev.EventData) -> bool:
        """Add one event; False when the event type carries nothing for the national figures."""
        handler = _HANDLERS.get(type(payload))
        if handler is None:
            return False
        city = envelope.city
        self.events[city] += 1
        stamp = envelope.time.timestamp()
        if stamp > self.last_event.get(city, 0.0):
            self.last_event[city] = stamp
        handler(self, city, envelope, payload)
        return True

    def _session(self, city: str, session_id: str, when: dt.datetime) -> dict[str, dict[str, Any]]:
        key = (city, session_id)
        month = _month(when)
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = {"dims": {"seen": month}, "n": defaultdict(int)}
        elif month < session["dims"]["seen"]:
            # "seen" dates a session whose schedule is unknown; the earliest event wins, in any order
            session["dims"]["seen"] = month
        return session

    def _count(self, city: str, session_id: str, when: dt.datetime, **amounts: int) -> None:
        counters = self._session(city, session_id, when)["n"]
        for name, amount in amounts.items():
            counters[name] += amount

    def _seen(self, city: str, year: int, person_id: str, jp: int = 0) -> None:
        ledger = self.jp[(city, year)]
        ledger[person_id] = ledger.get(person_id, 0) + jp

    def _staff_registered(self, city, env, p: ev.StaffRegistered) -> None:
        year = env.time.year
        self.staff[city][p.person_id] = min(year, self.staff[city].get(p.person_id, year))
        self._seen(city, year, p.person_id)

    def _enrolled(self, city, env, p: ev.EnrollmentCreated) -> None:
        self._count(city, p.session_id, env.time, enrolled=1)
        self._seen(city, env.time.year, p.person_id)

    def _waitlisted(self, city, env, p: ev.EnrollmentWaitlisted) -> None:
        self._count(city, p.session_id, env.time, waitlisted=1)
        self._seen(city, env.time.year, p.person_id)

    def _promoted(self, city, env, p: ev.EnrollmentPromoted) -> None:
        self._count(city, p.session_id, env.time, promoted=1)
        self._seen(city, env.time.year, p.person_id)

    def _cancelled(self, city, env, p: ev.EnrollmentCancelled) -> None:
        self._count(city, p.session_id, env.time, **{f"cancelled_{p.reason}": 1})
        if p.was_waitlisted:
            self._count(city, p.session_id, env.time, cancelled_from_waitlist=1)
        self._seen(city, env.time.year, p.person_id)

    def _need(self, city, env, p: ev.TrainingNeedSubmitted) -> None:
        key = (city, p.plan_year, p.competency_type, p.competency)
        total = self.needs.setdefault(key, [0, 0])
        total[0] += p.staff_count
        total[1] += 1

    def _scheduled(self, city, env, p: ev.SessionScheduled) -> None:
        session = self._session(city, p.session_id, env.time)
        session["dims"].update(
            competency_type=p.competency_type, competency=p.competency, method=p.method,
            provider=p.provider, month=_month(p.start_date), jp=p.jp, capacity=p.capacity,
        )
        session["n"]["scheduled"] += 1
        session["n"]["planned_cost"] += p.planned_cost

    def _session_cancelled(self, city, env, p: ev.SessionCancelled) -> None:
        self._count(city, p.session_id, env.time, session_cancelled=1)

    def _attendance(self, city, env, p: ev.AttendanceRecorded) -> None:
        self._count(city, p.session_id, env.time, attendance=1, present=int(p.present))
        self._seen(city, env.time.year, p.person_id)

    def _assessment(self, city, env, p: ev.AssessmentRecorded) -> None:
        self._count(city, p.session_id, env.time,
                    **{f"{p.kind}_n": 1, f"{p.kind}_sum": round(p.score * SCORE_SCALE)})
        self._seen(city, env.time.year, p.person_id)
        key = (city, p.session_id, p.person_id)
        self._pair(key, {**self.unpaired.pop(key, {}), p.kind: p.score})

    def _pair(self, key: tuple[str, str, str], scores: dict[str, float]) -> None:
        """Learning gain needs a person's pre AND post score; keep one until the other arrives."""
        if "pre" not in scores or "post" not in scores:
            self.unpaired[key] = scores
            return
        pre, post = scores["pre"], scores["post"]
        amounts = {"pairs": 1,
                   "gain_sum": round(post * SCORE_SCALE) - round(pre * SCORE_SCALE)}
        if pre < 100:  # normalised gain (post - pre) / (100 - pre) is undefined at a full pre-test
            amounts.update(ngain_n=1, ngain_sum=round((post - pre) / (100 - pre) * GAIN_SCALE))
        counters = self.sessions[key[:2]]["n"]
        for name, amount in amounts.items():
            counters[name] += amount

    def _participant_completed(self, city, env, p: ev.ParticipantCompleted) -> None:
        self._count(city, p.session_id, env.time, completions=1, jp_credited=p.jp)
        self._seen(city, p.completed_on.year, p.person_id, p.jp)
        month = _month(p.completed_on)
        key = (city, p.unit)
        if month < self.first_completion.get(key, "9999-12"):
            self.first_completion[key] = month

    def _session_completed(self, city, env, p: ev.SessionCompleted) -> None:
        self._count(
            city, p.session_id, env.time, session_completed=1, participants=p.participants,
            completed=p.completed, actual_cost=p.actual_cost,
        )

    def _feedback(self, city, env, p: ev.FeedbackSubmitted) -> None:
        self._count(
            city, p.session_id, env.time, feedback=1, fb_content=p.content,
            fb_speaker=p.speaker, fb_method=p.method, fb_relevance=p.relevance,
        )

    def _follow_up(self, city, env, p: ev.FollowUpRecorded) -> None:
        self._count(
            city, p.session_id, env.time, followups=1, applies_skills=int(p.applies_skills),
            fu_rating=p.rating,
        )
        self._seen(city, env.time.year, p.person_id)

    def _surveyed(self, city, env, p: ev.PublicSatisfactionSurveyed) -> None:
        cell = self.ikm[(city, p.unit)].setdefault(p.period, [0, 0])
        cell[0] += round(p.ikm * SCORE_SCALE)
        cell[1] += 1

    # --- merge ----------------------------------------------------------------------------

    def merge(self, other: Figures) -> Figures:
        """Add `other` into self (and return self). Exact: sums add, set-once facts combine."""
        for city, count in other.events.items():
            self.events[city] += count
        for city, stamp in other.last_event.items():
            self.last_event[city] = max(stamp, self.last_event.get(city, 0.0))
        for key, theirs in other.sessions.items():
            mine = self.sessions.get(key)
            if mine is None:
                mine = self.sessions[key] = {"dims": {}, "n": defaultdict(int)}
            seen = min(theirs["dims"].get("seen", "9999-12"), mine["dims"].get("seen", "9999-12"))
            mine["dims"].update(theirs["dims"], seen=seen)
            for name, amount in theirs["n"].items():
                mine["n"][name] += amount
        for key, ledger in other.jp.items():
            mine_ledger = self.jp[key]
            for person, jp in ledger.items():
                mine_ledger[person] = mine_ledger.get(person, 0) + jp
        for city, people in other.staff.items():
            registered = self.staff[city]
            for person, year in people.items():
                registered[person] = min(year, registered.get(person, year))
        for key, scores in other.unpaired.items():
            self._pair(key, {**self.unpaired.pop(key, {}), **scores})
        for key, periods in other.ikm.items():
            mine_periods = self.ikm[key]
            for period, (total, count) in periods.items():
                cell = mine_periods.setdefault(period, [0, 0])
                cell[0] += total
                cell[1] += count
        for key, month in other.first_completion.items():
            self.first_completion[key] = min(month, self.first_completion.get(key, month))
        for key, (staff, count) in other.needs.items():
            total = self.needs.setdefault(key, [0, 0])
            total[0] += staff
            total[1] += count
        return self

    # --- Mongo form -----------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        """A Mongo/FerretDB-safe document: free-text names (units, competencies, session ids)
        are values, never keys, so no key holds a dot or a `$`; no array holds an array."""
        return {
            "events": [{"city": c, "n": n} for c, n in self.events.items()],
            "last_event": [{"city": c, "t": t} for c, t in self.last_event.items()],
            "sessions": [
                {"city": c, "session": s, "dims": v["dims"], "n": dict(v["n"])}
                for (c, s), v in self.sessions.items()
            ],
            "jp": [{"city": c, "year": y, "people": people} for (c, y), people in self.jp.items()],
            "staff": [{"city": c, "people": people} for c, people in self.staff.items()],
            "unpaired": [
                {"city": c, "session": s, "person": p, **scores}
                for (c, s, p), scores in self.unpaired.items()
            ],
            "ikm": [
                {"city": c, "unit": u, "period": period, "sum": total, "n": count}
                for (c, u), periods in self.ikm.items() for period, (total, count) in periods.items()
            ],
            "first_completion": [
                {"city": c, "unit": u, "month": m} for (c, u), m in self.first_completion.items()
            ],
            "needs": [
                {"city": c, "year": y, "type": t, "competency": k, "staff": s, "n": n}
                for (c, y, t, k), (s, n) in self.needs.items()
            ],
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Figures:
        fig = cls()
        for row in doc.get("events", ()):
            fig.events[row["city"]] += row["n"]
        for row in doc.get("last_event", ()):
            fig.last_event[row["city"]] = row["t"]
        for row in doc.get("sessions", ()):
            fig.sessions[(row["city"], row["session"])] = {
                "dims": dict(row["dims"]), "n": defaultdict(int, row["n"]),
            }
        for row in doc.get("jp", ()):
            fig.jp[(row["city"], row["year"])] = dict(row["people"])
        for row in doc.get("staff", ()):
            fig.staff[row["city"]] = dict(row["people"])
        for row in doc.get("unpaired", ()):
            fig.unpaired[(row["city"], row["session"], row["person"])] = {
                kind: row[kind] for kind in ("pre", "post") if kind in row
            }
        for row in doc.get("ikm", ()):
            fig.ikm[(row["city"], row["unit"])][row["period"]] = [row["sum"], row["n"]]
        for row in doc.get("first_completion", ()):
            fig.first_completion[(row["city"], row["unit"])] = row["month"]
        for row in doc.get("needs", ()):
            fig.needs[(row["city"], row["year"], row["type"], row["competency"])] = [
                row["staff"], row["n"],
            ]
        return fig

    @property
    def cities(self) -> list[str]:
        return sorted(self.events)


_HANDLERS = {
    ev.StaffRegistered: Figures._staff_registered,
    ev.EnrollmentCreated: Figures._enrolled,
    ev.EnrollmentWaitlisted: Figures._waitlisted,
    ev.EnrollmentPromoted: Figures._promoted,
    ev.EnrollmentCancelled: Figures._cancelled,
    ev.TrainingNeedSubmitted: Figures._need,
    ev.SessionScheduled: Figures._scheduled,
    ev.SessionCancelled: Figures._session_cancelled,
    ev.AttendanceRecorded: Figures._attendance,
    ev.AssessmentRecorded: Figures._assessment,
    ev.ParticipantCompleted: Figures._participant_completed,
    ev.SessionCompleted: Figures._session_completed,
    ev.FeedbackSubmitted: Figures._feedback,
    ev.FollowUpRecorded: Figures._follow_up,
    ev.PublicSatisfactionSurveyed: Figures._surveyed,
}  # InsightPublished flows nation -> city; on a city topic it is ignored


def apply_all(pairs: Iterable[tuple[ev.Envelope, ev.EventData]]) -> Figures:
    fig = Figures()
    for envelope, payload in pairs:
        fig.apply(envelope, payload)
    return fig
