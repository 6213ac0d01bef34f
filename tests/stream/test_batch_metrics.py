"""What a taken batch tells the operators: each partition's lag after it, and how long its alerts took
from the record's arrival on Kafka to publication."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY

from carewatch.stream.batch_metrics import observe_batch


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Message:
    tp: TP
    offset: int
    timestamp: float | None


@dataclass(frozen=True)
class Event:
    message: Message


@dataclass(frozen=True)
class Raised:
    status: str


@dataclass
class Outcome:
    alerts: tuple[Any, ...] = ()
    affected_shift_ids: tuple[str, ...] = ()


@dataclass
class Consumer:
    highwaters: dict[TP, int | None] = field(default_factory=dict)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters[tp]


def _latency_count() -> float:
    return REGISTRY.get_sample_value("carewatch_event_to_alert_seconds_count") or 0.0


def test_lag_per_partition_and_latency_per_raised_alert() -> None:
    a, b, c = TP("metrics-test", 0), TP("metrics-test", 1), TP("metrics-test", 2)
    batch = [Event(Message(a, 10, 1000.0)), Event(Message(a, 11, 1000.5)), Event(Message(b, 3, 999.0)),
             Event(Message(c, 7, None))]
    consumer = Consumer({a: 20, b: 4, c: None})
    before = _latency_count()
    before_sum = REGISTRY.get_sample_value("carewatch_event_to_alert_seconds_sum") or 0.0
    observe_batch(consumer, batch, Outcome((Raised("open"), Raised("auto_resolved"), Raised("open"))), now=1001.5)
    lag = {p: REGISTRY.get_sample_value("carewatch_consumer_lag", {"topic": "metrics-test", "partition": p})
           for p in ("0", "1", "2")}
    assert lag == {"0": 8.0, "1": 0.0, "2": None}  # 20 - 11 - 1; caught up; high-water mark not known yet
    assert _latency_count() == before + 2  # the two raised, not the resolved one
    # From the batch's oldest record (999.0) to now: 2.5 s each.
    assert (REGISTRY.get_sample_value("carewatch_event_to_alert_seconds_sum") or 0.0) == before_sum + 5.0


def test_a_batch_that_raised_nothing_times_nothing() -> None:
    tp = TP("metrics-test-2", 0)
    before = _latency_count()
    observe_batch(Consumer({tp: 1}), [Event(Message(tp, 0, 5.0))], Outcome((Raised("acknowledged"),)), now=6.0)
    assert _latency_count() == before
