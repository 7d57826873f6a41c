"""Kafka plumbing: the FastStream broker, topic creation, the event-consumer wrapper, lag.

Every subscriber made by `subscribe_events` has the same contract:
- group: given by the caller (named in shared.topics), offsets start at the earliest record;
- ack policy: commit after processing, in batches: an offset is committed only once its
  handler returned, at most COMMIT_EVERY records or COMMIT_SECONDS after it (a commit per
  record held a city consumer to about 150 records/s); at-least-once delivery, and handlers are
  idempotent, so the few records a crash or a rebalance delivers again change nothing;
- a message no code can read (not JSON, not a CloudEvent, unknown type, bad payload), or one
  whose handler keeps failing, goes to the node's dead-letter topic with the reason in the
  `x-bangkom-reason` header, and the consumer moves on;
- a database outage is not the message's fault: it is retried with backoff until it works.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage, Topic
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from shared import metrics
from shared.errors import DomainError
from shared.events import ContractError, Envelope, EventData, decode
from shared.mongo import UNAVAILABLE
from shared.outage import Outage
from shared.settings import Settings
from shared.kafka_auth import broker_kwargs, client_kwargs
from shared.topics import deadletter_topic

log = logging.getLogger(__name__)

Handler = Callable[[Envelope, EventData], Awaitable[str]]
MAX_ATTEMPTS = 3  # for errors that are neither bad input nor an outage: a bug, most likely
COMMIT_EVERY = 500  # records handled between two commits of a subscriber's offsets
COMMIT_SECONDS = 1.0  # and at most this long after a record was handled


# Every producer of the project, for events, dead letters and insights alike: idempotent (a retry
# never writes a record twice) and acknowledged by every in-sync replica (an acknowledged record
# survives the loss of the leader). tests/unit/shared/test_producers.py holds every publisher to it.
PRODUCER_GUARANTEES = {"acks": "all", "enable_idempotence": True}


def producer(settings: Settings, **options) -> AIOKafkaProducer:
    """An aiokafka producer with the project's guarantees (not started)."""
    return AIOKafkaProducer(**client_kwargs(settings), **PRODUCER_GUARANTEES, **options)


def make_broker(settings: Settings) -> KafkaBroker:
    return KafkaBroker(
        **broker_kwargs(settings),
        **PRODUCER_GUARANTEES,
        client_id=f"bangkom-{settings.node}-{settings.service}",
        middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"bangkom-{settings.service}")],
        logger=logging.getLogger(f"faststream.{settings.service}"),
    )


def subscribe_events(
    broker: KafkaBroker,
    *,
    group: str,
    settings: Settings,
    handler: Handler,
    topics: Sequence[str] = (),
    pattern: str | None = None,
) -> None:
    subscriber = broker.subscriber(
        # The topics are made by ensure_node_topics, with their partitions and configs; left
        # to declare them, FastStream would make a missing one with a single partition, and on
        # a secured broker log one refusal per subscriber at every start.
        *(Topic(name, declare=False) for name in topics),
        pattern=pattern,
        group_id=group,
        ack_policy=AckPolicy.MANUAL,  # committed by `offsets`, see the module docstring
        auto_offset_reset="earliest",
    )
    offsets = Committer(group)

    @subscriber
    async def consume(msg: KafkaMessage) -> None:
        await handle_message(msg, group=group, settings=settings, handler=handler, broker=broker)
        await offsets.handled(msg)


class Committer:
    """The offsets of the records a subscriber has handled, committed in batches: after
    COMMIT_EVERY records, or by a timer COMMIT_SECONDS after the first one not yet committed.
    Only handled records are committed (explicit offsets, never the consumer's position,
    which may be past a record still being handled)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.pending: dict[TopicPartition, int] = {}
        self.count = 0
        self._consumer = None
        self._timer: asyncio.Task | None = None

    async def handled(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        if not isinstance(record, ConsumerRecord):  # FastStream's in-memory test broker
            return
        self._consumer = msg.consumer
        self.pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        self.count += 1
        if self.count >= COMMIT_EVERY:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(COMMIT_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        if not self.pending or self._consumer is None:
            return
        offsets, self.pending, self.count = self.pending, {}, 0
        try:
            await self._consumer.commit(offsets)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a rebalance or a broker away: delivered again
            log.warning("consumer %s: offsets not committed (%s: %s); those records will be "
                        "delivered again, which changes nothing", self.group,
                        type(exc).__name__, exc)


async def handle_message(
    msg: KafkaMessage, *, group: str, settings: Settings, handler: Handler, broker: KafkaBroker
) -> str:
    """Decode, apply with retries, or dead-letter. Never raises for a message's fault."""
    target = msg.headers.get(REDELIVER_TO)
    if target and target != group:  # a dead letter republished for another group's sake
        metrics.EVENTS_CONSUMED.labels(settings.node, group, "ignored").inc()
        return "ignored"
    raw: bytes = msg.body
    try:
        envelope, payload = decode(raw)
    except ContractError as exc:
        return await _deadletter(broker, msg, group, settings, "contract", str(exc))
    attempt = 0
    while True:
        try:
            outcome = await handler(envelope, payload)
            break
        except asyncio.CancelledError:
            raise
        except (ContractError, DomainError) as exc:
            return await _deadletter(broker, msg, group, settings, "processing", str(exc))
        except UNAVAILABLE as exc:  # outage: wait for it to end, never drop the event
            _outage(group).failed(f"database unavailable ({exc})")
            await asyncio.sleep(_delay(attempt))
        except Exception as exc:
            if attempt + 1 >= MAX_ATTEMPTS:
                log.exception("giving up on event %s", envelope.id)
                return await _deadletter(
                    broker, msg, group, settings, "processing", f"{type(exc).__name__}: {exc}"
                )
            await _backoff(attempt, f"{type(exc).__name__}: {exc}", envelope)
        attempt += 1
    _outage(group).succeeded()
    metrics.EVENTS_CONSUMED.labels(settings.node, group, outcome).inc()
    # One line per event and consumer: with the relay's line, an event can be followed by id.
    log.info("event %s", outcome, extra={
        "event_id": str(envelope.id), "city": envelope.city, "type": envelope.type,
        "subject": envelope.subject, "group": group, "outcome": outcome})
    if outcome == "applied":
        age = (dt.datetime.now(dt.UTC) - envelope.time).total_seconds()
        metrics.FRESHNESS.labels(settings.node, group).observe(max(age, 0.0))
    return outcome


_OUTAGES: dict[str, Outage] = {}


def _outage(group: str) -> Outage:
    """The database outage as one consumer group lives it (its retries of one event)."""
    if group not in _OUTAGES:
        _OUTAGES[group] = Outage(f"consumer {group}", log)
    return _OUTAGES[group]


def _delay(attempt: int) -> float:
    return min(0.2 * 2**attempt, 30.0)


async def _backoff(attempt: int, why: str, envelope: Envelope) -> None:
    # a handler's bug, not an outage: at most MAX_ATTEMPTS lines, each naming the event
    delay = _delay(attempt)
    log.warning("retrying event %s in %.1fs: %s", envelope.id, delay, why,
                extra={"event_id": str(envelope.id), "city": envelope.city, "type": envelope.type})
    await asyncio.sleep(delay)


# Set by an operator who republishes a dead letter to its source topic once the cause is fixed
# (docs/OPERATIONS.md): the copy is for the consumer group that gave up on it alone. The other
# readers of the topic processed the original already; the national evaluation counts records,
# not event ids, and would count it twice.
REDELIVER_TO = "x-bangkom-redeliver-to"


def deadletter_headers(*, kind: str, reason: str, group: str, record: object) -> dict[str, str]:
    """What a dead letter says about itself: why, who gave up on it, and where it came from."""
    return {
        "x-bangkom-reason": f"{kind}: {reason}"[:1000],
        "x-bangkom-group": group,
        "x-bangkom-source-topic": str(getattr(record, "topic", "")),
        "x-bangkom-source-partition": str(getattr(record, "partition", "")),
        "x-bangkom-source-offset": str(getattr(record, "offset", "")),
    }


async def _deadletter(
    broker: KafkaBroker, msg: KafkaMessage, group: str, settings: Settings, kind: str, reason: str
) -> str:
    record = msg.raw_message
    headers = deadletter_headers(kind=kind, reason=reason, group=group, record=record)
    log.warning("dead-lettering a message from %s: %s", headers["x-bangkom-source-topic"], reason)
    attempt = 0
    outage = Outage(f"dead-letter publish of {group}", log)
    while True:  # the dead-letter topic is on the same broker: wait for it rather than lose
        try:
            await broker.publish(
                msg.body, topic=deadletter_topic(settings.node), key=getattr(record, "key", None),
                headers=headers,
            )
            outage.succeeded()
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, retried with backoff
            outage.failed(exc)
            await asyncio.sleep(min(0.5 * 2**attempt, 30.0))
            attempt += 1
    metrics.DEADLETTERS.labels(settings.node, group, kind).inc()
    metrics.EVENTS_CONSUMED.labels(settings.node, group, "deadletter").inc()
    return "deadletter"


async def report_lag(settings: Settings, groups: Sequence[str], every_seconds: float = 15.0) -> None:
    """Consumer lag per group and partition: log end offset minus committed offset."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    probe = AIOKafkaConsumer(**client_kwargs(settings), group_id=None)
    outage = Outage("consumer lag report", log)
    started = False
    try:
        while True:
            try:
                if not started:
                    await admin.start()
                    await probe.start()
                    started = True
                for group in groups:
                    committed = await admin.list_consumer_group_offsets(group)
                    if not committed:
                        continue
                    ends = await probe.end_offsets(list(committed))
                    for tp, meta in committed.items():
                        lag = max(ends.get(tp, 0) - max(meta.offset, 0), 0)
                        metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
                outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a gauge must not end the consumer
                outage.failed(f"consumer lag not measured: {exc}")
            await asyncio.sleep(every_seconds)
    finally:  # however it ends (cancelled at shutdown, mostly), close both clients
        await probe.stop()
        await admin.close()
