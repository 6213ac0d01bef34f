"""Redis pub/sub for alerts and shift updates: published after the database commit, never before.

Channel and key names carry a per-deployment prefix (`CAREWATCH_REDIS_PREFIX`, else
`carewatch:<database name>`), so two deployments sharing one Redis never hear each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import redis.asyncio as aioredis

from carewatch import metrics
from carewatch.alerts.record import AlertChange, AlertRecord
from carewatch.domain.alert_rules import AlertKind
from carewatch.logs import Outage
from carewatch.settings import Settings

log = logging.getLogger(__name__)

CLOSE_SECONDS = 2.0  # the longest closing a subscription may take

# Shift ids per shift-update message: a batch's updates go out in a few messages, not one per shift.
SHIFT_IDS_PER_MESSAGE = 500


def redis_where(client: Any) -> str:
    """`Redis at host:port` for log lines, from a client (or just `Redis` for a stand-in)."""
    try:
        kwargs = client.get_connection_kwargs()
        return f"Redis at {kwargs['host']}:{kwargs['port']}"
    except Exception:
        return "Redis"


@dataclass(frozen=True)
class Channels:
    prefix: str

    @property
    def alerts(self) -> str:
        return f"{self.prefix}:alerts"

    @property
    def shift_updates(self) -> str:
        return f"{self.prefix}:shift-updates"

    @property
    def scheduler_lease(self) -> str:
        return f"{self.prefix}:scheduler-lease"

    @staticmethod
    def for_settings(settings: Settings) -> Channels:
        return Channels(settings.channel_prefix)


def to_wire(alert: AlertRecord) -> dict[str, Any]:
    """The wire form of an alert on the alerts channel (JSON once dumped; instants in RFC 3339)."""
    return {
        "id": alert.id, "kind": alert.kind, "severity": alert.severity, "status": alert.status,
        "subject_type": alert.subject_type, "subject_id": alert.subject_id,
        "raised_at": alert.raised_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "updated_at": alert.updated_at.isoformat(), "message": alert.message,
        "package_id": alert.package_id, "shift_id": alert.shift_id, "carer_id": alert.carer_id,
        "provider_id": alert.provider_id, "commissioner_id": alert.commissioner_id,
        "caused_by_late_data": alert.caused_by_late_data, "details": alert.details,
        "commissioner_ids": list(alert.commissioner_ids), "provider_ids": list(alert.provider_ids),
        "history": [{"status": h.status, "changed_at": h.changed_at.isoformat(), "changed_by": h.changed_by,
                     "note": h.note, "severity": h.severity} for h in alert.history],
    }


def from_wire(data: Mapping[str, Any]) -> AlertRecord:
    """The alert a message on the alerts channel carries (the inverse of `to_wire`)."""
    def instant(v: Any) -> datetime | None:
        return datetime.fromisoformat(v) if v else None

    fields = {k: data[k] for k in AlertRecord.__dataclass_fields__ if k in data and k != "history"}
    for k in ("raised_at", "resolved_at", "updated_at"):
        fields[k] = instant(data.get(k))
    for k in ("commissioner_ids", "provider_ids"):
        fields[k] = tuple(data.get(k) or ())
    history = tuple(AlertChange(h["status"], datetime.fromisoformat(h["changed_at"]), h["changed_by"], h.get("note"),
                                h.get("severity"))
                    for h in data.get("history", []))
    return AlertRecord(**fields, history=history)


class AlertBus:
    """Publishes what changed; a failure to publish is logged, never lost: clients catch up by `since`."""

    def __init__(self, client: aioredis.Redis, channels: Channels, source: str = "event") -> None:
        self.client = client
        self.channels = channels
        self.source = source  # what raises the alerts it publishes (the raised-alerts metric's label)
        for kind in AlertKind:  # every series exists from the start, at zero
            metrics.ALERTS_RAISED.labels(kind.value, source)
        self.outage = Outage(log, f"{redis_where(client)} (publishing alerts)",
                             retrying="alerts stay in the database and subscribers catch up with since")

    async def _publish(self, channel: str, messages: Iterable[Mapping[str, Any]]) -> int:
        sent = 0
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.publish(channel, json.dumps(message, default=str))
                    sent += 1
                if sent:
                    await pipe.execute()
        except aioredis.RedisError as exc:
            # The database already holds the change; subscribers catch up with alerts(since:).
            self.outage.failed(exc)
            return 0
        if sent:
            self.outage.ok()
        return sent

    async def publish_alerts(self, alerts: Iterable[AlertRecord]) -> int:
        alerts = list(alerts)
        for alert in alerts:
            if alert.status == "open":  # the one status an alert has only when it was just raised
                metrics.ALERTS_RAISED.labels(alert.kind, self.source).inc()
        return await self._publish(self.channels.alerts, (to_wire(a) for a in alerts))

    async def publish_shift_updates(self, shift_ids: Iterable[str]) -> int:
        """Publish `{"shift_ids": [...]}` messages, SHIFT_IDS_PER_MESSAGE ids at most in each."""
        ids = sorted(set(shift_ids))
        chunks = (ids[i:i + SHIFT_IDS_PER_MESSAGE] for i in range(0, len(ids), SHIFT_IDS_PER_MESSAGE))
        return await self._publish(self.channels.shift_updates, ({"shift_ids": chunk} for chunk in chunks))


def shift_ids_in(message: Mapping[str, Any]) -> list[str]:
    """The shift ids a shift-update message names: `shift_ids`, or a single `shift_id` (the older form)."""
    many = message.get("shift_ids")
    if isinstance(many, list):
        return [str(s) for s in many if isinstance(s, str) and s]
    one = message.get("shift_id")
    return [one] if isinstance(one, str) and one else []


async def subscribe(client: aioredis.Redis, *channels: str, on_subscribed: Callable[[], None] | None = None
                    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Yield (channel, message) from the channels until cancelled; undecodable messages are skipped.

    `on_subscribed` is called once Redis has taken the subscription (an outage is then over)."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(*channels)
    if on_subscribed is not None:
        on_subscribed()
    try:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else str(channel)
            try:
                yield channel, json.loads(message["data"])
            except (ValueError, TypeError):
                log.warning("skipped an undecodable message on %s", channel)
    finally:
        # Closing the connection ends the subscription on the server: no UNSUBSCRIBE round trip, which
        # a read cancelled half-way could leave waiting for ever (a CI run hung there on shutdown).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_SECONDS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


class HasAlerts(Protocol):
    @property
    def affected_shift_ids(self) -> tuple[str, ...]: ...

    @property
    def alerts(self) -> tuple[AlertRecord, ...]: ...


async def publish_outcome(bus: AlertBus, outcome: HasAlerts) -> None:
    """A committed batch's alerts and shift updates on Redis; each alert in the log at DEBUG, a count
    by status and kind at INFO (the alerts themselves are in the database and on the board)."""
    await bus.publish_alerts(outcome.alerts)
    await bus.publish_shift_updates(outcome.affected_shift_ids)
    if outcome.alerts:
        if log.isEnabledFor(logging.DEBUG):
            for alert in outcome.alerts:
                log.debug("event %s %s %s: %s", alert.status, alert.kind, alert.subject_id, alert.message)
        counts = Counter(f"{alert.status} {alert.kind}" for alert in outcome.alerts)
        log.info("alerts published: %s", ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))


class PublishQueue:
    """A batch listener that publishes in a task of its own, in commit order, so that the next batch
    never waits for Redis (issue 12). Outcomes are only ever queued after their commit, so nothing is
    published before the database holds it. At most `limit` outcomes wait; beyond that the batch
    loop waits too, so a slow Redis slows the worker instead of growing its memory. Publishing stays
    best effort as before: a failure is logged and subscribers catch up with `alerts(since:)`."""

    def __init__(self, bus: AlertBus, limit: int = 32) -> None:
        self.bus = bus
        self.limit = limit
        self._queue: asyncio.Queue[HasAlerts] | None = None
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, outcome: HasAlerts) -> None:
        if not outcome.alerts and not outcome.affected_shift_ids:
            return
        if self._queue is None or self._task is None or self._task.done():
            self._queue = self._queue or asyncio.Queue(self.limit)
            self._task = asyncio.get_running_loop().create_task(self._run(self._queue), name="publish-alerts")
        await self._queue.put(outcome)

    async def _run(self, queue: asyncio.Queue[HasAlerts]) -> None:
        while True:
            outcome = await queue.get()
            try:
                await publish_outcome(self.bus, outcome)
            except Exception:
                log.exception("publishing a batch's alerts failed; subscribers catch up with since")
            finally:
                queue.task_done()

    @property
    def waiting(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued is published (True), or `timeout` seconds (False)."""
        if self._queue is None or self._task is None or self._task.done():
            return self.waiting == 0
        try:
            async with asyncio.timeout(timeout):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Publish what is queued (for `timeout` seconds at most), then stop."""
        if not await self.drain(timeout):
            log.warning("stopping with %d batches' alerts unpublished; subscribers catch up with since",
                        self.waiting)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
