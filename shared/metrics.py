"""Every Prometheus metric the services export, defined once.

Conventions: `bangkom_` prefix, `_total` counters, `_seconds` durations. No label carries a
person; label values are bounded (cities, services, event types, routes, fixed outcomes).
Dashboards and alert rules under `deploy/` use only these names; a test checks that.
"""

from prometheus_client import Counter, Gauge, Histogram, Info

BUILD_INFO = Info("bangkom_build", "Version and role of this process")

HTTP_REQUESTS = Counter(
    "bangkom_http_requests_total", "HTTP requests answered",
    ["service", "node", "method", "route", "status"],
)
# Buckets sit around the goals: 100 ms for a form save, 1 s for a dashboard page.
HTTP_LATENCY = Histogram(
    "bangkom_http_request_duration_seconds", "HTTP request latency",
    ["service", "node", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

EVENTS_PUBLISHED = Counter(
    "bangkom_events_published_total", "Events the outbox relay published to Kafka",
    ["node", "service", "type"],
)
EVENTS_CONSUMED = Counter(
    "bangkom_events_consumed_total", "Events a consumer finished with, by outcome",
    ["node", "group", "outcome"],  # outcome: applied | duplicate | ignored | deadletter
)
DEADLETTERS = Counter(
    "bangkom_deadletter_messages_total", "Messages sent to a dead-letter topic",
    ["node", "group", "reason"],  # reason: contract | city-mismatch | processing
)
OUTBOX_BACKLOG = Gauge(
    "bangkom_outbox_backlog", "Events written but not yet published", ["node", "service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "bangkom_outbox_oldest_age_seconds", "Age of the oldest unpublished event", ["node", "service"],
)
# The two gauges above count every pending event of the service in the database (shared.outbox,
# every outbox_gauge_seconds), so they go on rising while the broker is unreachable; this
# counter tells a relay that cannot publish at all from one that is merely behind.
OUTBOX_RELAY_ERRORS = Counter(
    "bangkom_outbox_relay_errors_total", "Outbox relay rounds that failed (broker or database)",
    ["node", "service"],
)
FRESHNESS = Histogram(
    "bangkom_projection_freshness_seconds", "From an event's time to its effect being stored",
    ["node", "group"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
CONSUMER_LAG = Gauge(
    "bangkom_consumer_lag_messages", "Log end offset minus committed offset",
    ["group", "topic", "partition"],
)

ENROLLMENTS = Counter(
    "bangkom_enrollments_total", "Enrollment state changes", ["city", "outcome"],
)  # outcome: enrolled | waitlisted | promoted | cancelled
COMPLETIONS = Counter("bangkom_completions_total", "Participants who completed a session", ["city"])
JP_CREDITED = Counter("bangkom_jp_credited_total", "Lesson hours (JP) credited", ["city"])
CITY_LAST_EVENT = Gauge(
    "bangkom_city_last_event_timestamp_seconds",
    "Time of the newest event the nation has counted from a city", ["city"],
)
# A city that is up beats every heartbeat_seconds (shared.heartbeat), so the age of the newest
# beat at the nation is how far behind the link from that city is, quiet or busy (to within a
# beat). Computed when scraped (services.evaluation.heard).
LINK_LAG = Gauge(
    "bangkom_link_lag_seconds", "Age of the newest heartbeat that came over a link",
    ["source", "target"],
)
# Records the source had written when it last beat, less those MirrorMaker records as copied.
LINK_LAG_RECORDS = Gauge(
    "bangkom_link_lag_records", "Records of a city's streams not yet copied over its link",
    ["source", "target"],
)
