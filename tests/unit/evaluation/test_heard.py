"""Which cities the nation hears from (services.evaluation.heard), and what the API says."""

import datetime as dt
import json
import time
from types import SimpleNamespace

import httpx
from prometheus_client import REGISTRY

from evaluation_builders import CITY, registered
from services.evaluation.app import build_api
from services.evaluation.figures import apply_all
from services.evaluation.heard import Heard, _take
from services.evaluation.ingest import NationalIngest
from services.evaluation.triage import RejectedError, admit
from shared.events import Envelope, NodeHeartbeat
from shared.settings import Settings
from shared.topics import topic, topic_configs

SETTINGS = Settings(node="national", service="evaluation")


def beat(city: str, at: dt.datetime, service: str = "sessions") -> bytes:
    return Envelope.wrap(NodeHeartbeat(service=service), city=city, service=service,
                         time=at).to_bytes()


def record(city: str, value: bytes, offset: int = 0):
    return SimpleNamespace(topic=topic(city, "heartbeat"), partition=0, offset=offset,
                           key=b"service/sessions", value=value)


class Producer:
    def __init__(self):
        self.sent = []

    async def send_and_wait(self, name, value, *, key, headers):
        self.sent.append((name, value, dict(headers)))


def test_the_link_lag_is_the_age_of_the_newest_beat_when_scraped():
    heard = Heard(behind_seconds=120)
    heard.beat("sawahlunto", time.time() - 42)
    lag = REGISTRY.get_sample_value("bangkom_link_lag_seconds",
                                    {"source": "sawahlunto", "target": "national"})
    assert 42 <= lag < 50


async def test_the_records_waiting_on_a_link_are_the_beats_ends_less_what_mirrormaker_copied():
    heard, producer = Heard(behind_seconds=120), Producer()
    name = topic("pematangsiantar", "enrollment")
    heard.beat("pematangsiantar", 1000.0, {name: [10, 5, 0],
                                           topic("palu", "enrollment"): [99]})  # not its own
    heard.beat("pematangsiantar", 900.0, {name: [1, 1, 1]})  # older, copied late: ignored

    def offsets(partition: int, value: bytes | None, connector="MirrorSourceConnector"):
        key = json.dumps([connector, {"cluster": "pematangsiantar", "topic": name,
                                      "partition": partition}]).encode()
        return SimpleNamespace(topic="mm2-offsets.pematangsiantar.internal", partition=0,
                               offset=0, key=key, value=value)

    await _take(offsets(0, b'{"offset": 7}'), heard, producer, SETTINGS)  # copied 0..7 of 10
    await _take(offsets(1, b'{"offset": 4}'), heard, producer, SETTINGS)  # all 5
    await _take(offsets(1, b'{"offset": 9}', connector="MirrorCheckpointConnector"), heard,
                producer, SETTINGS)  # another connector's record says nothing of the copies
    labels = {"source": "pematangsiantar", "target": "national"}
    assert REGISTRY.get_sample_value("bangkom_link_lag_records", labels) == 2
    await _take(offsets(1, None), heard, producer, SETTINGS)  # tombstone: partition 1 uncopied
    assert heard.waiting("pematangsiantar") == 2 + 5
    assert producer.sent == [], "MirrorMaker's records are read, never dead-lettered"


def test_a_city_is_behind_when_nothing_came_for_behind_seconds_and_an_old_beat_changes_nothing():
    heard = Heard(behind_seconds=120)
    assert heard.report("palu", None, now=1000.0)["behind"], "never heard of: behind"
    heard.beat("palu", 1000.0)
    heard.beat("palu", 900.0)  # an older beat, copied late, does not move it back
    assert heard.report("palu", 950.0, now=1120.0) == {
        "last_event_time": 950.0, "last_heard": 1000.0, "behind": False}
    assert heard.report("palu", 950.0, now=1120.5)["behind"]


async def test_a_heartbeat_counts_for_its_topics_city_only_and_the_rest_is_dead_lettered():
    heard, producer = Heard(behind_seconds=60), Producer()
    at = dt.datetime(2026, 12, 7, 5, 0, tzinfo=dt.UTC)
    await _take(record("palu", beat("palu", at)), heard, producer, SETTINGS)
    assert heard.last == {"palu": at.timestamp()} and producer.sent == []

    await _take(record("palu", beat("salatiga", at + dt.timedelta(hours=1)), 1), heard, producer,
                SETTINGS)
    await _take(record("palu", b"{not json", 2), heard, producer, SETTINGS)
    assert heard.last == {"palu": at.timestamp()}, "a city may not speak for another"
    assert [name for name, _, _ in producer.sent] == ["bangkom.national.deadletter"] * 2
    reasons = [headers["x-bangkom-reason"].decode() for _, _, headers in producer.sent]
    assert "'salatiga' on topic of 'palu'" in reasons[0]
    assert reasons[1].startswith("contract:")
    assert producer.sent[0][2]["x-bangkom-source-offset"] == b"1"


def test_a_heartbeat_on_an_event_topic_is_refused_and_never_counted():
    value = beat(CITY, dt.datetime.now(dt.UTC))
    try:
        admit(topic(CITY, "sessions"), value)
    except RejectedError as rejection:
        assert rejection.reason == "wrong-stream" and "heartbeat" in rejection.detail
    else:
        raise AssertionError("a heartbeat was admitted to the figures")


def test_the_heartbeat_topic_is_compacted_and_the_event_topics_keep_everything():
    assert topic_configs(topic(CITY, "heartbeat"))["cleanup.policy"] == "compact"
    assert "cleanup.policy" not in topic_configs(topic(CITY, "sessions"))
    assert topic_configs(topic(CITY, "sessions"))["retention.ms"] == "-1"


async def test_figures_and_cities_say_when_each_city_was_last_heard_and_which_is_behind():
    ingest = NationalIngest(SETTINGS, store=None)
    ingest.figures = apply_all([registered("ani")])
    ingest.ready.set()
    heard = Heard(behind_seconds=120)
    now = dt.datetime.now(dt.UTC).timestamp()
    heard.beat(CITY, now - 5)
    heard.beat("palu", now - 600)  # heard of, no events yet, silent for ten minutes
    app = build_api(SETTINGS, ingest, heard)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        figures = (await http.get("/figures")).json()
        cities = {row["city"]: row for row in (await http.get("/cities")).json()}
        detail = (await http.get(f"/cities/{CITY}")).json()
    own = figures["reporting"][CITY]
    assert own["behind"] is False and own["last_heard"] == now - 5
    assert own["last_event_time"] == ingest.figures.last_event[CITY]
    assert figures["reporting"]["palu"] == {"last_event_time": None, "last_heard": now - 600,
                                            "behind": True}
    assert cities["palu"]["behind"] and cities["palu"]["events"] == 0
    assert not cities[CITY]["behind"] and cities[CITY]["events"] == 1
    assert detail["behind"] is False and detail["last_heard"] == now - 5
    assert figures["cities"].keys() == {CITY}, "a city with no events yet has no figures"
