"""The dead-letter decision: what the national consumer refuses, and why."""

import pytest

from evaluation_builders import registered
from services.evaluation.triage import RejectedError, admit


def test_an_event_of_the_topics_city_is_admitted():
    envelope, _ = registered("ani", city="palu")
    admitted, payload = admit("bangkom.palu.enrollment", envelope.to_bytes())
    assert admitted.city == "palu" and payload.person_id == envelope.data["person_id"]


def test_an_event_declaring_another_city_is_a_city_mismatch():
    envelope, _ = registered("ani", city="palu")
    with pytest.raises(RejectedError) as rejected:
        admit("bangkom.salatiga.enrollment", envelope.to_bytes())
    assert rejected.value.reason == "city-mismatch"
    assert "palu" in rejected.value.detail and "salatiga" in rejected.value.detail


@pytest.mark.parametrize("raw", [b"\xff not json", b"{}", None,
                                 b'{"specversion":"1.0","type":"x"}'])
def test_an_undecodable_message_is_a_contract_rejection(raw):
    with pytest.raises(RejectedError) as rejected:
        admit("bangkom.palu.sessions", raw)
    assert rejected.value.reason == "contract"
