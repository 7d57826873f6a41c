"""What MirrorMaker 2 has copied, as it records it itself.

The source connector of a flow `<source>-><target>` stores, per source partition, the offset of
the last record it copied, in `mm2-offsets.<source>.internal` on the target cluster (Connect's
offset storage, keyed `["MirrorSourceConnector", {"cluster", "topic", "partition"}]`, value
`{"offset": N}`, written in the same transaction as the copies when exactly once). Read both by
the operator's `bangkom status` (deploy.local.links) and by the nation's link-lag gauge
(services.evaluation.heard).
"""

from __future__ import annotations

import json
import re

SOURCE_CONNECTOR = "MirrorSourceConnector"
OFFSETS_PATTERN = r"^mm2-offsets\.([a-z][a-z0-9-]*)\.internal$"


def offsets_topic(source: str) -> str:
    return f"mm2-offsets.{source}.internal"


def source_of(name: str) -> str | None:
    """The source alias of an offsets topic, or None when `name` is not one."""
    match = re.match(OFFSETS_PATTERN, name)
    return match.group(1) if match else None


def copied(key: bytes | None, value: bytes | None, source: str
           ) -> tuple[tuple[str, int], int | None] | None:
    """((topic, partition), last copied offset) of one offsets record of the flow from `source`;
    offset None when the record is a tombstone; None when the record is another connector's or
    not one MirrorMaker wrote."""
    try:
        connector, where = json.loads(key or b"")
        if connector != SOURCE_CONNECTOR or where.get("cluster") != source:
            return None
        where_to = (str(where["topic"]), int(where["partition"]))
        return where_to, None if value is None else int(json.loads(value)["offset"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def waiting(ends: dict[tuple[str, int], int], done: dict[tuple[str, int], int]) -> int:
    """Records at the source not yet copied: each partition's end minus its last copied offset
    plus one (an uncopied partition counts whole)."""
    return sum(max(0, end - (done.get(tp, -1) + 1)) for tp, end in ends.items())
