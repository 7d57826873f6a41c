"""Topic names, partition keys and consumer groups: the one place they are defined.

Every city owns a topic family `bangkom.<city>.<stream>` so that per-city ACLs can later be
written as prefixed rules (`bangkom.palu.`) without renaming anything:

| topic                          | producer                   | consumers (group)                              |
|--------------------------------|----------------------------|------------------------------------------------|
| bangkom.<city>.enrollment      | the city's enrollment relay | bangkom.<city>.sessions.roster, bangkom.national.evaluation |
| bangkom.<city>.sessions        | the city's sessions relay   | bangkom.<city>.enrollment.catalogue, bangkom.national.evaluation |
| bangkom.<city>.insights        | the national evaluation     | bangkom.<city>.sessions.insights               |
| bangkom.<node>.deadletter      | any consumer of that node   | operators (kcat, metrics)                      |
| bangkom.<city>.heartbeat       | each city service (shared.heartbeat) | the national evaluation, no group      |

The partition key is the event's CloudEvents `subject` (e.g. `session/<id>`), so all events of
one aggregate keep their order.

Retention (`topic_configs`, applied by `shared.kafka_admin.ensure_topics`): events and insights
are kept for ever, by time and by size, since `bangkom replay` rebuilds the national figures
from offset 0 and a city's consumers rebuild their projections from it; dead letters are kept a
year, the time an operator has to read, fix and republish one (docs/OPERATIONS.md). Heartbeats
are compacted by key (one per service): the topic holds each service's newest beat, not a year
of them.
"""

import re

CITIES = ("salatiga", "sawahlunto", "palu", "pematangsiantar")
NATIONAL = "national"
CITY_STREAMS = ("enrollment", "sessions")
HEARTBEAT = "heartbeat"
UPLINK_STREAMS = (*CITY_STREAMS, HEARTBEAT)  # what flows from a city up to the nation
PARTITIONS = 3

# The national service subscribes by pattern, so a new city needs no code change.
CITY_EVENTS_PATTERN = r"^bangkom\.([a-z][a-z0-9-]*)\.(enrollment|sessions)$"
_CITY_TOPIC = re.compile(CITY_EVENTS_PATTERN)
HEARTBEAT_PATTERN = r"^bangkom\.([a-z][a-z0-9-]*)\.heartbeat$"


DEADLETTER_RETENTION_MS = 365 * 24 * 3600 * 1000


def topic_configs(name: str, min_insync: int = 1) -> dict[str, str]:
    """The configs every Bangkom topic is created with (and brought back to)."""
    deadletter = name.endswith(".deadletter")
    if name.endswith(f".{HEARTBEAT}"):
        # compaction runs on closed segments only: an hourly segment keeps the topic small
        return {"cleanup.policy": "compact", "segment.ms": str(3600 * 1000),
                "retention.bytes": "-1", "min.insync.replicas": str(min_insync)}
    return {"retention.ms": str(DEADLETTER_RETENTION_MS) if deadletter else "-1",
            "retention.bytes": "-1", "min.insync.replicas": str(min_insync)}


def topic(node: str, stream: str) -> str:
    return f"bangkom.{node}.{stream}"


def deadletter_topic(node: str) -> str:
    return topic(node, "deadletter")


def city_of_topic(name: str) -> str | None:
    """The city a topic belongs to, or None when it is not a city event topic."""
    match = _CITY_TOPIC.match(name)
    return match.group(1) if match else None


def group(node: str, service: str, purpose: str) -> str:
    return f"bangkom.{node}.{service}.{purpose}"


NATIONAL_GROUP = "bangkom.national.evaluation"
