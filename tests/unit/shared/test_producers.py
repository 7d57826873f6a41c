"""Every publisher of the project has the same guarantees: idempotent, acks from all in-sync
replicas. Dead letters and insights included: one place makes producers, and nothing else may."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.kafka import PRODUCER_GUARANTEES, make_broker, producer
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def _calls(name: str) -> list[str]:
    """Where code under services/ and shared/ calls `name(...)`, as path:line."""
    found = []
    for path in [*(ROOT / "services").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_the_factories_make_producers():
    for name in ("AIOKafkaProducer", "KafkaBroker"):
        assert [c for c in _calls(name) if not c.startswith("shared/kafka.py:")] == [], name
        assert _calls(name), f"no {name}(...) in the factories: this test checks nothing"


def test_the_guarantees_are_idempotence_and_acks_from_all_replicas():
    assert PRODUCER_GUARANTEES == {"acks": "all", "enable_idempotence": True}


def test_the_faststream_broker_of_every_service_publishes_with_them():
    broker = make_broker(Settings(node="palu", service="sessions"))
    options = broker._connection_kwargs  # what FastStream builds its producer from
    assert {key: options.get(key) for key in PRODUCER_GUARANTEES} == PRODUCER_GUARANTEES


async def test_the_aiokafka_producer_of_the_outbox_relay_and_the_nation_has_them():
    made = producer(Settings(), linger_ms=2)
    try:
        assert made._txn_manager is not None, "not idempotent"
        assert made._sender._acks == -1, "not acks=all"
    finally:
        await made.stop()
