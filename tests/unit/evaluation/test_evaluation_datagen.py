"""The generated training year: deterministic, valid against the contracts, spread over a year."""

import collections

from deploy.datagen import city_names, generate
from shared.events import decode
from shared.topics import city_of_topic


def test_the_same_seed_gives_the_same_events():
    assert list(generate(2, seed=5, staff=50)) == list(generate(2, seed=5, staff=50))


def test_another_seed_gives_other_events():
    assert list(generate(1, seed=5, staff=50)) != list(generate(1, seed=6, staff=50))


def test_every_event_decodes_and_sits_on_its_citys_topic_under_its_subject():
    types = collections.Counter()
    months = set()
    for record in generate(["palu"], seed=1, staff=200):
        envelope, payload = decode(record.value)
        assert city_of_topic(record.topic) == envelope.city == "palu"
        assert record.topic.endswith(payload.STREAM)
        assert record.key.decode() == envelope.subject == payload.subject()
        types[type(payload).__name__] += 1
        months.add(envelope.time.month)
    assert len(months) == 12, "monthly series need events in every month"
    assert set(types) >= {
        "StaffRegistered", "SessionScheduled", "EnrollmentCreated", "EnrollmentWaitlisted",
        "EnrollmentCancelled", "AttendanceRecorded", "AssessmentRecorded", "ParticipantCompleted",
        "SessionCompleted", "FeedbackSubmitted", "FollowUpRecorded",
        "PublicSatisfactionSurveyed", "TrainingNeedSubmitted",
    }


def test_busy_is_the_dominant_cancellation_reason():
    reasons = collections.Counter(
        decode(r.value)[1].reason for r in generate(2, seed=2, staff=300)
        if b"enrollment.cancelled" in r.value
    )
    assert reasons.most_common(1)[0][0] == "busy"


def test_fifty_cities_of_800_staff_make_a_million_events():
    per_city = sum(1 for _ in generate(["palu"], seed=1, staff=800))
    assert per_city * 50 >= 1_000_000 * 0.95  # cities vary a little around the mean
    assert len(set(city_names(50))) == 50 and len(set(city_names(120))) == 120
