"""Prometheus metric objects shared by every Carewatch process (import them from here, never redefine)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("carewatch_events_accepted_total", "Care events applied, by event type.", ["type"])
EVENTS_REJECTED = Counter(
    "carewatch_events_rejected_total", "Input rejected to the dead-letter topic and rejected_events.",
    ["stage", "source"],
)
EVENTS_DUPLICATE = Counter(
    "carewatch_events_duplicate_total", "Care events seen before (same event_id): ignored."
)
EVENTS_HELD = Counter("carewatch_events_held_total", "Valid events held until what they name arrives.")
EVENTS_RELEASED = Counter(
    "carewatch_events_released_total", "Held events applied once their reference arrived."
)
BATCH_SECONDS = Histogram(
    "carewatch_batch_seconds", "Time to validate and apply one batch of care events.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SIZE = Histogram(
    "carewatch_batch_size", "Messages in one batch taken from the care-events topic.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
SUBSCRIBERS_DROPPED = Counter(
    "carewatch_subscribers_dropped_total",
    "GraphQL subscriptions closed (websocket code 4413) because their client fell too far behind.",
)
BATCHES_FAILED = Counter(
    "carewatch_batches_failed_total",
    "Attempts to apply a batch that failed: `database` (retried whole, partition paused), `split` (an "
    "event's trouble: the batch was bisected), `internal` (a culprit event rejected), `unexpected`.",
    ["reason"],
)
for _reason in ("database", "split", "internal", "unexpected"):  # every series exists from the start, at zero
    BATCHES_FAILED.labels(_reason)
LEDGER_REBUILD_FAILURES = Counter(
    "carewatch_ledger_rebuild_failures_total",
    "Shift ledgers that could not be computed from their facts (the batch is split to find the cause).",
)
SWEEP_FAILURES = Counter("carewatch_sweep_failures_total", "Scheduler or worker sweeps that failed.", ["job"])
PARTITION_STUCK = Gauge(
    "carewatch_partition_stuck",
    "1 while the worker is retrying a batch from this partition because the database is failing "
    "(nothing from it is acknowledged meanwhile), else 0.",
    ["topic", "partition"],
)
STUCK_SECONDS = Gauge(
    "carewatch_worker_stuck_seconds", "How long the current batch has been retried for (0 when none is).")
CONSUMER_LAG = Gauge(
    "carewatch_consumer_lag",
    "Messages on the input topic not yet processed by this worker, by partition (after its latest batch).",
    ["topic", "partition"],
)
ALERTS_RAISED = Counter(
    "carewatch_alerts_raised_total", "Alerts raised (opened), by kind and by what raised them (event or sweep).",
    ["kind", "source"],
)
EVENT_TO_ALERT_SECONDS = Histogram(
    "carewatch_event_to_alert_seconds",
    "From a care event's Kafka record timestamp to the alert it raised being published on Redis "
    "(the batch's oldest record is taken: an upper bound).",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
SWEEP_RUNS = Counter("carewatch_sweep_runs_total", "Scheduler sweeps run to completion, by job.", ["job"])
SWEEP_SECONDS = Histogram(
    "carewatch_sweep_seconds", "Time one scheduler sweep took, by job.", ["job"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SUBSCRIBERS = Gauge(
    "carewatch_subscribers", "GraphQL subscriptions open on this API process, by Redis channel.", ["channel"]
)
API_REQUESTS = Counter(
    "carewatch_api_requests_total", "HTTP requests the API answered, by route, method and status code.",
    ["route", "method", "status"],
)
API_REQUEST_SECONDS = Histogram(
    "carewatch_api_request_seconds", "Time to answer one HTTP request, by route and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def serve_metrics(port: int, host: str) -> None:
    """Serve this process's metrics over HTTP on host:port (the worker's and the scheduler's)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host)
