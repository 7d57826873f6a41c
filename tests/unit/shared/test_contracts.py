import datetime as dt
import json

import pytest
from pydantic import ValidationError

from shared.events import (
    EVENT_TYPES, ContractError, EnrollmentCreated, Envelope, SessionScheduled, decode,
)
from shared.pseudonym import person_id
from shared.topics import city_of_topic, topic

PID = person_id("199001012015031001", "secret")


def enrollment() -> EnrollmentCreated:
    return EnrollmentCreated(
        session_id="s-1", enrollment_id="e-1", person_id=PID, unit="Dinas Pendidikan",
        position_type="functional", rank_group="III", sex="F", nominated_by="supervisor",
    )


def test_an_envelope_round_trips_through_bytes():
    sent = Envelope.wrap(enrollment(), city="salatiga", service="enrollment")
    received, payload = decode(sent.to_bytes())
    assert isinstance(received, Envelope) and received.model_dump() == sent.model_dump()
    assert payload == enrollment()


def test_the_envelope_uses_cloudevents_attribute_names():
    wire = json.loads(Envelope.wrap(enrollment(), city="palu", service="enrollment").to_bytes())
    assert wire["specversion"] == "1.0"
    assert wire["type"] == "bangkom.enrollment.created.v1"
    assert wire["source"] == "/bangkom/palu/enrollment"
    assert wire["subject"] == "session/s-1"
    assert wire["datacontenttype"] == "application/json"
    assert wire["time"].endswith("Z")
    assert set(wire) == {"specversion", "id", "source", "type", "time", "subject",
                         "datacontenttype", "city", "data"}


def test_every_type_string_carries_its_major_version():
    assert all(t.startswith("bangkom.") and t.rsplit(".", 1)[1] == "v1" for t in EVENT_TYPES)


def test_payloads_are_immutable():
    with pytest.raises(ValidationError, match="frozen"):
        enrollment().unit = "other"  # type: ignore[misc]


def test_no_payload_has_a_field_for_nip_name_or_birth_date():
    fields = {f for model in EVENT_TYPES.values() for f in model.model_fields}
    assert not fields & {"nip", "name", "birth_date", "full_name", "nama"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not a Bangkom CloudEvent"),
        (b'{"specversion": "1.0"}', "not a Bangkom CloudEvent"),
        (Envelope.wrap(enrollment(), city="palu", service="x").model_copy(
            update={"type": "bangkom.unknown.v9"}).to_bytes(), "unknown event type"),
        (Envelope.wrap(enrollment(), city="palu", service="x").model_copy(
            update={"data": {"session_id": "s"}}).to_bytes(), "invalid bangkom.enrollment.created.v1"),
    ],
)
def test_a_message_no_consumer_can_read_raises_a_contract_error_with_the_reason(raw, reason):
    with pytest.raises(ContractError, match=reason):
        decode(raw)


def test_a_time_without_offset_is_rejected():
    wire = json.loads(Envelope.wrap(enrollment(), city="palu", service="x").to_bytes())
    wire["time"] = "2026-01-01T10:00:00"
    with pytest.raises(ContractError, match="UTC"):
        decode(json.dumps(wire).encode())


def test_the_pseudonym_is_stable_keyed_and_not_the_nip():
    assert person_id("199001012015031001", "k1") == person_id("199001012015031001", "k1")
    assert person_id("199001012015031001", "k1") != person_id("199001012015031001", "k2")
    assert "199001012015031001" not in person_id("199001012015031001", "k1")


def test_topics_form_one_family_per_city():
    assert topic("palu", "enrollment") == "bangkom.palu.enrollment"
    assert city_of_topic("bangkom.pematangsiantar.sessions") == "pematangsiantar"
    assert city_of_topic("bangkom.palu.insights") is None
    assert city_of_topic("bangkom.palu.deadletter") is None


def test_session_dates_are_dates_on_the_wire():
    event = SessionScheduled(
        session_id="s", title="Workshop Keuangan Daerah", competency_type="technical",
        competency="regional finance", method="workshop", provider="ministry", jp=24,
        start_date=dt.date(2026, 3, 2), end_date=dt.date(2026, 3, 4), days=3, capacity=30,
        planned_cost=45_000_000,
    )
    assert Envelope.wrap(event, city="salatiga", service="sessions").data["start_date"] == "2026-03-02"
