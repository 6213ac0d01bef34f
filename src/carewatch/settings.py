"""Settings from the environment, each with a local default (contracts/README.md).

Every setting is declared once with `setting(variable, default, meaning)`; `variables()` lists
them for `carewatch --help`, so the help and the code cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import unquote, urlsplit

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


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in ("1", "true", "yes")


_PARSERS: dict[type, Callable[[str, Any], Any]] = {str: _env, int: _env_int, float: _env_float, bool: _env_bool}


def setting(variable: str, default: str | int | float | bool, meaning: str) -> Any:
    """A Settings field read from `variable` (else `default`) each time Settings() is made."""
    parse = _PARSERS[type(default)]
    return field(default_factory=lambda: parse(variable, default),
                 metadata={"variable": variable, "default": default, "meaning": meaning})


@dataclass(frozen=True)
class Variable:
    """An environment variable Carewatch reads, for the help text and the docs."""

    name: str
    default: str
    meaning: str


@dataclass(frozen=True)
class Settings:
    """Everything a Carewatch process is configured with."""

    kafka_url: str = setting("CAREWATCH_KAFKA_URL", "kafka://127.0.0.1:9092",
                             "Kafka brokers, kafka://host:port, several separated by ';'")
    database_url: str = setting("CAREWATCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/carewatch",
                                "PostgreSQL (TimescaleDB in production) connection URL")
    redis_url: str = setting("CAREWATCH_REDIS_URL", "redis://127.0.0.1:6379/0",
                             "Redis for pub/sub fan-out, the scheduler lease and rate limits")
    redis_prefix: str = setting(
        "CAREWATCH_REDIS_PREFIX", "",
        "prefix of Redis channels and keys (deployments sharing a Redis never meet); empty: carewatch:<database name>")
    timezone: str = setting("CAREWATCH_TIMEZONE", DEFAULT_TIMEZONE,
                            "default IANA time zone for local rules (bands, weeks) when a commissioner names none")
    events_topic: str = setting("CAREWATCH_EVENTS_TOPIC", "care-events", "input topic of care events")
    dead_letter_topic: str = setting("CAREWATCH_DEAD_LETTER_TOPIC", "care-events.dead-letter",
                                     "where rejected input goes, with its reason")
    topic_partitions: int = setting("CAREWATCH_TOPIC_PARTITIONS", 4,
                                    "partitions of the care-events topic when Carewatch creates it")
    consumer_group: str = setting("CAREWATCH_CONSUMER_GROUP", "carewatch-worker",
                                  "Kafka consumer group (the faust app id) of the stream workers")
    batch_size: int = setting("CAREWATCH_BATCH_SIZE", 16000, "most events the worker takes from the stream at once")
    worker_lanes: int = setting("CAREWATCH_WORKER_LANES", 4,
                                "sub-batches of disjoint partitions a worker applies at once, each in its own "
                                "transaction (1: one transaction a batch)")
    lane_min_events: int = setting("CAREWATCH_LANE_MIN_EVENTS", 500,
                                   "a batch is split into lanes only when each would get at least this many events")
    batch_within_seconds: float = setting("CAREWATCH_BATCH_WITHIN", 0.2,
                                          "longest the worker waits to fill a batch, in seconds")
    batch_idle_ms: float = setting("CAREWATCH_BATCH_IDLE_MS", 10.0,
                                   "a batch goes once no message has come for this long (ms), within "
                                   "CAREWATCH_BATCH_WITHIN")
    fetch_max_wait_ms: int = setting(
        "CAREWATCH_FETCH_MAX_WAIT_MS", 100,
        "longest a Kafka fetch waits for data (faust fixes 1,500 ms, which delays events under light load)")
    subscriber_queue: int = setting(
        "CAREWATCH_SUBSCRIBER_QUEUE", 1000,
        "updates a subscription may fall behind before the API closes its websocket (code 4413)")
    hold_limit_seconds: int = setting(
        "CAREWATCH_HOLD_LIMIT_SECONDS", 3600,
        "how long (processing time) an event naming something unknown is held before it is rejected")
    settle_seconds: float = setting(
        "CAREWATCH_SETTLE_SECONDS", 60.0,
        "how long (processing time) UNKNOWN_CARER and PAY_BELOW_MINIMUM wait for facts from other partitions")
    clock: str = setting("CAREWATCH_CLOCK", "system",
                         "processing clock: system, or accelerated:<sim start>@<real start>x<speed> (clock.py)")
    environment: str = setting("CAREWATCH_ENV", "development",
                               "development serves GraphiQL and detailed errors; production hides both")
    worker_web_port: int = setting("CAREWATCH_WORKER_WEB_PORT", 0,
                                   "port of the faust worker's own web server; 0 picks a free one")
    worker_metrics_port: int = setting("CAREWATCH_WORKER_METRICS_PORT", 0,
                                       "port the worker serves Prometheus metrics on; 0 serves none")
    scheduler_metrics_port: int = setting("CAREWATCH_SCHEDULER_METRICS_PORT", 0,
                                          "port the scheduler serves Prometheus metrics on; 0 serves none")
    metrics_host: str = setting(
        "CAREWATCH_METRICS_HOST", "127.0.0.1",
        "address the worker's and the scheduler's metrics bind to (0.0.0.0 in containers, for Prometheus)")
    worker_session_timeout_seconds: float = setting(
        "CAREWATCH_WORKER_SESSION_TIMEOUT", 10.0,
        "Kafka consumer session timeout in seconds: a dead worker's partitions move after this long")
    metrics_token_required: bool = setting(
        "CAREWATCH_METRICS_TOKEN_REQUIRED", False,
        "whether the API's /metrics asks for a bearer token (any role but ingest); off so Prometheus can scrape")
    ingest_rate_per_minute: int = setting(
        "CAREWATCH_INGEST_RATE_PER_MINUTE", 600,
        "POST /events requests each token may make per minute (0: no limit); more get 429")
    max_query_cost: int = setting(
        "CAREWATCH_MAX_QUERY_COST", 25_000,
        "most a GraphQL request may cost (each list field: its `first` x what it selects, summed over aliases "
        "and a batch); over it the request is refused before it runs; 0: no limit")
    websocket_compression: bool = setting(
        "CAREWATCH_WEBSOCKET_COMPRESSION", False,
        "whether the API's websockets may negotiate permessage-deflate; off: compressing every alert once per "
        "subscriber costs more CPU than it saves on messages of a few hundred bytes")
    response_cache_ttl_ms: int = setting(
        "CAREWATCH_RESPONSE_CACHE_TTL_MS", 1000,
        "longest an API process serves a GraphQL query's cached response (per token, document, variables); "
        "emptied at once when a committed write is announced on Redis; 0: no response cache")
    response_cache_mb: int = setting("CAREWATCH_RESPONSE_CACHE_MB", 64,
                                     "most memory (MiB) an API process's GraphQL response cache holds")
    token_cache_seconds: float = setting(
        "CAREWATCH_TOKEN_CACHE_SECONDS", 5.0,
        "how long a confirmed token is trusted without the database: the most a revocation waits")
    log_level: str = setting("CAREWATCH_LOG_LEVEL", "INFO",
                             "DEBUG, INFO, WARNING or ERROR; routine per-second job lines show at DEBUG")
    log_format: str = setting("CAREWATCH_LOG_FORMAT", "text",
                              "text (one plain line per record), or json (one JSON object per line, for production)")

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
    def channel_prefix(self) -> str:
        """CAREWATCH_REDIS_PREFIX, else `carewatch:<database name>` (from a URL or a key=value conninfo)."""
        if self.redis_prefix.strip():
            return self.redis_prefix.strip()
        url = self.database_url
        if "://" in url:
            name = urlsplit(url).path.lstrip("/")
        else:
            pairs = dict(part.split("=", 1) for part in url.split() if "=" in part)
            name = pairs.get("dbname", "")
        return f"carewatch:{unquote(name) or 'carewatch'}"

    @property
    def production(self) -> bool:
        return self.environment == "production"


# Read outside Settings (by the module named), listed here so that the help names them too.
OTHER_VARIABLES: tuple[Variable, ...] = ()


def _shown(default: object) -> str:
    return str(default).lower() if isinstance(default, bool) else str(default)


def variables() -> list[Variable]:
    """Every environment variable Carewatch reads, with its default and meaning."""
    declared = [Variable(f.metadata["variable"], _shown(f.metadata["default"]), f.metadata["meaning"])
                for f in fields(Settings) if "variable" in f.metadata]
    return [*declared, *OTHER_VARIABLES]


def load() -> Settings:
    """Read the settings from the environment now."""
    return Settings()
