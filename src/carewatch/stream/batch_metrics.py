"""What a taken batch tells the operators: consumer lag per partition, event-to-alert latency."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from carewatch import metrics
from carewatch.alerts.bus import HasAlerts


def observe_batch(consumer: Any, batch: Sequence[Any], outcome: HasAlerts, now: float | None = None) -> None:
    """Set the lag of each partition the batch came from and time the alerts it raised.

    `batch` holds faust events (`.message.tp`, `.offset`, `.timestamp` in seconds); the lag is the
    partition's high-water mark less the next offset to read. The latency runs from the batch's
    oldest record timestamp to now, once the batch is committed and its alerts queued for publishing.
    """
    last: dict[Any, int] = {}
    oldest: float | None = None
    for event in batch:
        message = event.message
        last[message.tp] = max(last.get(message.tp, -1), int(message.offset))
        if message.timestamp is not None:
            oldest = message.timestamp if oldest is None else min(oldest, message.timestamp)
    for tp, offset in last.items():
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # not known yet (no fetch answered): nothing to say
            continue
        if highwater is not None:
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, int(highwater) - offset - 1))
    raised = [a for a in outcome.alerts if a.status == "open"]
    if raised and oldest is not None:
        seconds = max(0.0, (time.time() if now is None else now) - oldest)
        for _ in raised:
            metrics.EVENT_TO_ALERT_SECONDS.observe(seconds)
