"""Logging an outage as three kinds of line: its first failure, a summary now and then, its end.

A service waiting out a database or broker outage retries every few hundred milliseconds; one
line per retry buried everything else (2,300-4,300 ERROR lines per city service in a 15-minute
outage). `Outage` keeps the count instead:
- the first failure is logged at once (WARNING), with the error;
- while it lasts, one summary every SUMMARY_SECONDS: how long, how many failures, the last error;
- the first success after it is logged once (INFO), with the duration and the count.
Client libraries log their own connection errors (aiokafka at ERROR on every reconnect);
`RepeatFilter` lets the first of each kind through and then at most one per SUMMARY_SECONDS,
saying how many like it were left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

SUMMARY_SECONDS = 60.0


class Outage:
    """One dependency of one component (`"database"` of `"outbox relay"`)."""

    def __init__(self, what: str, logger: logging.Logger, *, summary_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.what = what
        self.log = logger
        self._summary_seconds = summary_seconds
        self.clock = clock
        self.since: float | None = None
        self.failures = 0
        self._summarised = 0.0

    @property
    def summary_seconds(self) -> float:
        # read when used: shared.logging.configure sets the module's value from the settings
        return self._summary_seconds if self._summary_seconds is not None else SUMMARY_SECONDS

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException | str) -> None:
        now = self.clock()
        self.failures += 1
        if self.since is None:
            self.since = self._summarised = now
            self.log.warning("%s failing: %s; retrying quietly, a summary every %.0f s",
                             self.what, exc, self.summary_seconds, extra={"outcome": "outage"})
        elif now - self._summarised >= self.summary_seconds:
            self._summarised = now
            self.log.warning("%s still failing after %.0f s (%d failures); last: %s", self.what,
                             now - self.since, self.failures, exc, extra={"outcome": "outage"})

    def succeeded(self) -> None:
        if self.since is None:
            return
        self.log.info("%s recovered after %.1f s (%d failures)", self.what,
                      self.clock() - self.since, self.failures, extra={"outcome": "recovered"})
        self.since, self.failures = None, 0


class RepeatFilter(logging.Filter):
    """Of the WARNING-or-worse lines of `loggers` with the same message template, the first
    passes, then at most one per `every` seconds, carrying the count of those left out."""

    def __init__(self, loggers: tuple[str, ...], *, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.prefixes = loggers
        self.every = every if every is not None else SUMMARY_SECONDS
        self.clock = clock
        self._seen: dict[tuple[str, str], list[float | int]] = {}  # key -> [last passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= self.every:
            dropped = seen[1] if seen else 0
            self._seen[key] = [now, 0]
            if len(self._seen) > 1000:  # templates are few; this only bounds a pathological case
                self._seen.pop(next(iter(self._seen)))
            if dropped:
                record.msg = f"{record.msg} ({dropped} more like this in the last {self.every:.0f} s)"
            return True
        seen[1] += 1
        return False
