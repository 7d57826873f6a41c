"""The Kafka protocol binding of CloudEvents, structured content mode, checked with the SDK of
the CloudEvents project itself (the integration test in tests/integration/test_demo.py reads
every message the services wrote the same way)."""

import pytest
from aiokafka.structs import ConsumerRecord
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat

from shared.events import KAFKA_HEADERS, Envelope, StaffRegistered
from shared.outbox import _event_id
from shared.pseudonym import person_id


def event() -> Envelope:
    return Envelope.wrap(StaffRegistered(person_id=person_id("199001012015031001", "k"),
                                         unit="Bappeda", position_type="general",
                                         rank_group="III", sex="F"),
                         city="palu", service="enrollment")


def record(value: bytes, headers) -> ConsumerRecord:
    return ConsumerRecord("bangkom.palu.enrollment", 0, 0, 0, 0, b"k", value, None, 0, 0, headers)


def test_our_headers_and_value_are_structured_mode_for_the_sdk():
    sent = event()
    message = ce_kafka.KafkaMessage(headers=dict(KAFKA_HEADERS), key=b"k", value=sent.to_bytes())
    for read in (ce_kafka.from_kafka, ce_kafka.from_structured):
        got = read(message, JSONFormat())
        assert got.get_id() == str(sent.id) and got.get_type() == sent.type
        assert got.get_extension("city") == "palu" and got.get_data() == sent.data
    assert not any(name.startswith("ce_") for name, _ in KAFKA_HEADERS)


def test_the_old_partial_ce_headers_are_what_the_sdk_could_not_read():
    # why no `ce_` header may stand beside a structured value: the SDK takes it for binary mode
    old = ce_kafka.KafkaMessage(headers={"ce_id": b"1", "ce_type": b"t"}, key=None,
                                value=event().to_bytes())
    with pytest.raises(CloudEventValidationError, match="source"):
        ce_kafka.from_kafka(old, JSONFormat())


def test_the_relay_finds_event_ids_in_new_records_and_in_old_ones():
    sent = event()
    assert _event_id(record(sent.to_bytes(), KAFKA_HEADERS)) == str(sent.id)
    assert _event_id(record(b"{}", [("ce_id", b"old-id"), ("ce_type", b"x")])) == "old-id"
    assert _event_id(record(b"{not json", [])) is None
