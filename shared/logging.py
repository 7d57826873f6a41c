"""One JSON object per log line, so an operator can follow one event across services.

    {"time": "2026-11-23T04:05:06.789Z", "level": "INFO", "logger": "shared.outbox",
     "message": "published", "node": "palu", "service": "enrollment",
     "event_id": "7f0c...", "city": "palu", "type": "bangkom.enrollment.created.v1"}

Context comes from `extra=`: `log.info("applied", extra={"event_id": ..., "city": ..., "type": ...})`.
Only the names in CONTEXT_FIELDS are written. An allow-list rather than "every extra": a careless
`extra={"staff": row}` must not put a NIP or a name into logs that leave the city.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from shared import outage
from shared.kafka_auth import REFUSALS, principal as kafka_principal
from shared.settings import Settings

CONTEXT_FIELDS = (
    "event_id", "city", "type", "subject", "topic", "partition", "offset", "group", "outcome",
    "reason", "session_id", "status", "method", "route", "duration_ms",
)
# uvicorn installs its own plain-text handlers on these; they must go through ours instead.
_HANDED_OVER = ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream")
# Prometheus scrapes and container healthchecks hit these every few seconds; the request
# metrics count them, so their access lines would only bury the requests people made.
_UNLOGGED_PATHS = ("/metrics", "/health")
_REPEATING = ("aiokafka", "kafka", "pymongo", "faststream", "asyncio")
# Chatty client libraries: their INFO lines (connection bookkeeping) drown the events.
_QUIETER = {"aiokafka": logging.WARNING, "pymongo": logging.WARNING, "httpx": logging.WARNING}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON carrying the process's node and service."""

    def __init__(self, node: str, service: str) -> None:
        super().__init__()
        self.node = node
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node": self.node,
            "service": self.service,
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _DropProbes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "uvicorn.access" or not isinstance(record.args, tuple):
            return True
        # uvicorn's access record: (client, method, path with query, http version, status)
        path = str(record.args[2]) if len(record.args) > 2 else ""
        return path.split("?", 1)[0] not in _UNLOGGED_PATHS


class _NamePrincipal(logging.Filter):
    """aiokafka's refusals ("Topic t is not authorized for this client", a failed SASL
    handshake) do not say who was refused: the operator needs the principal to fix the ACL."""

    def __init__(self, who: str) -> None:
        super().__init__()
        self.who = who

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.levelno >= logging.WARNING and record.name.startswith("aiokafka")
                and any(word in str(record.msg).lower() for word in ("authoriz", "authenticat"))):
            record.msg = f"{record.msg} (Kafka principal {self.who})"
            REFUSALS.note(record.getMessage())  # /health says so (shared.http)
        return True


def configure(settings: Settings, service: str, *, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record of this process, as JSON, to stdout (or `stream`).

    Idempotent: calling it again (tests, a reloaded app) replaces the handler instead of
    printing each line twice. Returns the handler, for tests.
    """
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(settings.node, service))
    handler.addFilter(_DropProbes())
    outage.SUMMARY_SECONDS = settings.outage_summary_seconds
    # client libraries log every failed reconnect; ours count them in shared.outage instead
    # before the repeat filter: every refusal keeps /health's reason current
    handler.addFilter(_NamePrincipal(kafka_principal(settings)))
    handler.addFilter(outage.RepeatFilter(_REPEATING))
    handler._bangkom = True  # type: ignore[attr-defined]  # marks the one to replace

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_bangkom", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())

    for name in _HANDED_OVER:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name, level in _QUIETER.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)  # a library's DeprecationWarning is a JSON line too
    return handler
