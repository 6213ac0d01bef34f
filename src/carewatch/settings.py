"""Settings from the environment, each with a local default (contracts/README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from carewatch.domain.model import DEFAULT_TIMEZONE


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Everything a Carewatch process is configured with."""

    kafka_url: str = field(default_factory=lambda: _env("CAREWATCH_KAFKA_URL", "kafka://127.0.0.1:9092"))
    """Kafka brokers, `kafka://host:port`, several separated by `;`."""

    database_url: str = field(
        default_factory=lambda: _env("CAREWATCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/carewatch")
    )
    """PostgreSQL (TimescaleDB in production) connection URL."""

    redis_url: str = field(default_factory=lambda: _env("CAREWATCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    """Redis for pub/sub fan-out and the scheduler lease."""

    timezone: str = field(default_factory=lambda: _env("CAREWATCH_TIMEZONE", DEFAULT_TIMEZONE))
    """Default IANA time zone for local rules (bands, weeks) when a commissioner names none."""

    events_topic: str = field(default_factory=lambda: _env("CAREWATCH_EVENTS_TOPIC", "care-events"))
    """Input topic of care events."""

    dead_letter_topic: str = field(
        default_factory=lambda: _env("CAREWATCH_DEAD_LETTER_TOPIC", "care-events.dead-letter")
    )
    """Where rejected input goes, with its reason."""

    topic_partitions: int = field(default_factory=lambda: _env_int("CAREWATCH_TOPIC_PARTITIONS", 4))
    """Partitions of the care-events topic when Carewatch creates it."""

    consumer_group: str = field(default_factory=lambda: _env("CAREWATCH_CONSUMER_GROUP", "carewatch-worker"))
    """Kafka consumer group (the faust app id) of the stream workers."""

    batch_size: int = field(default_factory=lambda: _env_int("CAREWATCH_BATCH_SIZE", 2000))
    """Most events the worker takes from the stream at once."""

    batch_within_seconds: float = field(default_factory=lambda: _env_float("CAREWATCH_BATCH_WITHIN", 0.2))
    """Longest the worker waits to fill a batch."""

    fetch_max_wait_ms: int = field(default_factory=lambda: _env_int("CAREWATCH_FETCH_MAX_WAIT_MS", 100))
    """Longest a Kafka fetch waits for data (faust fixes 1,500 ms, which delays events under light load)."""

    subscriber_queue: int = field(default_factory=lambda: _env_int("CAREWATCH_SUBSCRIBER_QUEUE", 1000))
    """Updates a subscription may fall behind before the API closes its websocket (code 4413)."""

    hold_limit_seconds: int = field(default_factory=lambda: _env_int("CAREWATCH_HOLD_LIMIT_SECONDS", 3600))
    """How long (processing time) an event naming something unknown is held before it is rejected."""

    clock: str = field(default_factory=lambda: _env("CAREWATCH_CLOCK", "system"))
    """Processing clock: `system`, or `accelerated:<sim start>@<real start>x<speed>` (see clock.py)."""

    environment: str = field(default_factory=lambda: _env("CAREWATCH_ENV", "development"))
    """`development` serves GraphiQL and detailed errors; `production` hides both."""

    worker_web_port: int = field(default_factory=lambda: _env_int("CAREWATCH_WORKER_WEB_PORT", 0))
    """Port of the faust worker's own web server; 0 picks a free one."""

    worker_metrics_port: int = field(default_factory=lambda: _env_int("CAREWATCH_WORKER_METRICS_PORT", 0))
    """Port the worker serves Prometheus metrics on; 0 serves none."""

    worker_session_timeout_seconds: float = field(
        default_factory=lambda: _env_float("CAREWATCH_WORKER_SESSION_TIMEOUT", 10.0)
    )
    """Kafka consumer session timeout: a dead worker's partitions move after this long."""

    metrics_token_required: bool = field(
        default_factory=lambda: _env("CAREWATCH_METRICS_TOKEN_REQUIRED", "false").lower() in ("1", "true", "yes"))
    """Whether /metrics asks for a bearer token (any role but ingest); off so Prometheus can scrape."""

    ingest_rate_per_minute: int = field(default_factory=lambda: _env_int("CAREWATCH_INGEST_RATE_PER_MINUTE", 600))
    """POST /events requests each token may make per minute (0: no limit); more get 429."""

    token_cache_seconds: float = field(default_factory=lambda: _env_float("CAREWATCH_TOKEN_CACHE_SECONDS", 5.0))
    """How long a confirmed token is trusted without the database: the most a revocation waits."""

    @property
    def kafka_bootstrap(self) -> str:
        """The brokers as aiokafka wants them: `host:port,host:port`."""
        hosts = []
        for part in self.kafka_url.split(";"):
            part = part.strip()
            if not part:
                continue
            if "://" in part:
                part = part.split("://", 1)[1]
            hosts.append(part.rstrip("/"))
        return ",".join(hosts)

    @property
    def production(self) -> bool:
        return self.environment == "production"


def load() -> Settings:
    """Read the settings from the environment now."""
    return Settings()
