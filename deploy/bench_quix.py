"""Contender (d) of `bangkom bench`: the core national figures computed with Quix Streams.

Quix Streams is a Kafka-native Python stream processor (librdkafka underneath) with RocksDB
state stores backed by changelog topics: what a team would pick instead of writing its own
ingest. It reads the same records as (a) and (c), from the one-topic mirror (see `run`), and
computes, in the idiomatic way (re-key with
`group_by`, which goes through a repartition topic, then a stateful `apply`):

  - events per city and month, and completions per city   (state keyed by city:month)
  - JP per person per year, hence the count at >= 20 JP    (state keyed by city:year:person)

The answer is read back from the stores' changelog topics (the last value of each key is the
store's final content: it is what Quix itself restores a store from), then compared with
`core_figures` applied straight to the generator's events. Runs in its own process, so its
peak RSS (librdkafka's buffers and RocksDB included) is its own.

    python -m deploy.bench_quix '{"bootstrap": ..., "topic": "bench.ceiling", "cities": 10,
                                  "staff": 800, "seed": 1}'
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable

from services.evaluation.figures import JP_TARGET

COMPLETED = "bangkom.participant.completed.v1"
IDLE_SECONDS = 10.0  # Quix stops this long after the last record (its `run(timeout=...)`)


def core_figures(events: Iterable[dict]) -> dict:
    """The three core figures from event envelopes (dicts as on the wire)."""
    monthly: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    completions: dict[str, int] = defaultdict(int)
    jp: dict[tuple[str, str, str], int] = defaultdict(int)
    for event in events:
        city = event["city"]
        monthly[city][event["time"][:7]] += 1
        if event["type"] == COMPLETED:
            completions[city] += 1
            data = event["data"]
            jp[(city, data["completed_on"][:4], data["person_id"])] += data["jp"]
    return _shape(monthly, completions, jp)


def _shape(monthly, completions, jp) -> dict:
    per_year: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for (city, year, _person), hours in jp.items():
        cell = per_year[city].setdefault(year, {"people": 0, "at_least_target": 0, "jp_total": 0})
        cell["people"] += 1
        cell["at_least_target"] += hours >= JP_TARGET
        cell["jp_total"] += hours
    return {"events": {c: dict(m) for c, m in monthly.items()},
            "completions": dict(completions), "jp": dict(per_year)}


def run(p: dict) -> dict:
    from quixstreams import Application

    group = f"bench-quix-{time.time_ns()}"
    state_dir = tempfile.mkdtemp(prefix="bangkom-quix-")
    app = Application(
        broker_address=p["bootstrap"], consumer_group=group, auto_offset_reset="earliest",
        state_dir=state_dir, processing_guarantee=p.get("guarantee", "at-least-once"),
        loglevel="WARNING",
    )
    # The one-topic mirror of the city topics (the same records, keys and partitioning that
    # (a) reads): Quix names a concatenation's repartition and changelog topics after all of
    # its input topics, past Kafka's 255-character limit from 4 cities on, and a dataframe per
    # city topic would add four internal topics per city (4,112 at 514 cities).
    sdf = app.dataframe(app.topic(p["topic"], key_deserializer="bytes",
                                  value_deserializer="json"))
    clock = {"first": 0.0, "last": 0.0, "events": 0}

    def seen(event: dict) -> None:
        now = time.perf_counter()
        clock["first"] = clock["first"] or now
        clock["last"] = now
        clock["events"] += 1

    def count_month(event: dict, state) -> None:
        state.set("n", state.get("n", 0) + 1)
        if event["type"] == COMPLETED:
            state.set("completions", state.get("completions", 0) + 1)
        clock["last"] = time.perf_counter()

    def add_jp(event: dict, state) -> None:
        state.set("jp", state.get("jp", 0) + event["data"]["jp"])
        clock["last"] = time.perf_counter()

    sdf = sdf.update(seen)
    by_month = sdf.group_by(lambda e: f"{e['city']}:{e['time'][:7]}", name="city-month")
    by_month.update(count_month, stateful=True)
    done = sdf.filter(lambda e: e["type"] == COMPLETED)
    by_person = done.group_by(
        lambda e: f"{e['city']}:{e['data']['completed_on'][:4]}:{e['data']['person_id']}",
        name="person-year")
    by_person.update(add_jp, stateful=True)

    began = time.perf_counter()
    app.run(timeout=IDLE_SECONDS)
    elapsed = clock["last"] - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    got = _read_changelogs(p["bootstrap"], group)
    return {"events": clock["events"], "seconds": round(elapsed, 2),
            "events_per_s": clock["events"] / elapsed, "peak_rss_mib": round(peak, 1),
            # start-up (group join, repartition and changelog topics made) left out
            "seconds_from_first_record": round(clock["last"] - clock["first"], 2),
            "processing_guarantee": p.get("guarantee", "at-least-once"),
            "input_topic": p["topic"], "figures": got}


def _read_changelogs(bootstrap: str, group: str) -> dict:
    """The final content of every state store of `group`: the last value per changelog key.

    A changelog key is the store key: the message key (JSON) + b"|" + the state key (JSON)."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient

    names = [n for n in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
             if n.startswith("changelog__") and group in n]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{group}-reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    latest: dict[bytes, bytes] = {}
    try:
        partitions = []
        for name in names:
            for number in consumer.list_topics(name, timeout=30).topics[name].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, number), timeout=30)
                if high > low:
                    partitions.append((TopicPartition(name, number, low), high))
        consumer.assign([tp for tp, _ in partitions])
        left = {(tp.topic, tp.partition): high for tp, high in partitions}
        while left:
            for message in consumer.consume(10_000, timeout=1.0):
                if message.error():
                    continue
                headers = dict(message.headers() or ())
                if headers.get("__column_family__", b"default") == b"default":
                    latest[message.key()] = message.value()
                where = (message.topic(), message.partition())
                if where in left and message.offset() + 1 >= left[where]:
                    del left[where]
    finally:
        consumer.close()
    monthly: dict[str, dict[str, int]] = defaultdict(dict)
    completions: dict[str, int] = defaultdict(int)
    jp: dict[tuple[str, str, str], int] = {}
    for key, value in latest.items():
        if value is None:
            continue
        message_key, state_key = key.split(b"|", 1)
        parts, field, amount = json.loads(message_key).split(":"), json.loads(state_key), json.loads(value)
        if field == "n":
            monthly[parts[0]][parts[1]] = amount
        elif field == "completions":
            completions[parts[0]] += amount
        elif field == "jp":
            jp[(parts[0], parts[1], parts[2])] = amount
    return _shape(monthly, completions, jp)


def measure(p: dict) -> dict:
    """Run (d), then check it against the recomputation from the generator."""
    from deploy.datagen import generate

    import orjson

    result = run(p)
    expected = core_figures(orjson.loads(r.value) for r in generate(
        p["cities"], seed=p["seed"], staff=p["staff"], **p.get("datagen", {})))
    got = result.pop("figures")
    result["verified_equal"] = got == expected
    result["cities"] = len(got["events"])
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(measure(json.loads(sys.argv[1]))))
