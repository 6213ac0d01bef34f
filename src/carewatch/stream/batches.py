"""One batch of care-event messages: validate, apply in one transaction, dead-letter the rejects.

Kept apart from faust so it can be driven by the agent, by tests, or by a benchmark alike.
Bad input never raises out of here; database trouble is retried with backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from carewatch import metrics
from carewatch.clock import Clock
from carewatch.logs import Outage
from carewatch.schema.events import CareEvent, Rejection, message_key, validate_event
from carewatch.store.ingest import BatchOutcome, apply_batch, expire_held, release_held

log = logging.getLogger(__name__)
DATABASE = Outage(log, "PostgreSQL (applying batches)", retrying="retrying the batch with backoff up to 30 s")

Message = tuple[bytes | None, bytes | None]  # (key, value) as taken from the topic


class DeadLetterSink(Protocol):
    async def __call__(self, key: bytes | None, value: bytes) -> None: ...


OutcomeListener = Callable[[BatchOutcome], Awaitable[None]]

# Errors that the data of one event causes (a number too large for its column, say): the
# batch is retried event by event and the culprit rejected. Anything else is the database's
# trouble and is retried whole, with backoff, until it goes away.
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError)


def dead_letter_record(rejection: Rejection, source: str, at: datetime) -> bytes:
    return json.dumps({
        "reason": rejection.reason, "stage": rejection.stage, "event_id": rejection.event_id,
        "source": source, "raw": rejection.raw, "rejected_at": at.isoformat().replace("+00:00", "Z"),
    }).encode()


def rejection_key(rejection: Rejection) -> bytes | None:
    """The contract's key for a rejected event when its raw text still names one."""
    try:
        data = json.loads(rejection.raw)
    except ValueError:
        return None
    key = message_key(data) if isinstance(data, dict) else ""
    return key.encode() if key else None


@dataclass
class BatchProcessor:
    pool: AsyncConnectionPool
    dead_letters: DeadLetterSink
    clock: Clock
    hold_limit_seconds: int = 3600
    source: str = "kafka"
    listeners: list[OutcomeListener] = field(default_factory=list)
    max_backoff_seconds: float = 30.0
    _opened: bool = field(default=False, repr=False)

    async def open(self) -> None:
        """Open the pool on first use, inside the running loop (faust owns the loop)."""
        if not self._opened:
            await self.pool.open(wait=True, timeout=30)  # a no-op when the owner opened it already
            self._opened = True

    async def close(self) -> None:
        await self.pool.close()

    async def handle(self, messages: Sequence[Message]) -> BatchOutcome:
        """Validate and apply one batch; returns once it is committed and its rejects dead-lettered."""
        started = time.perf_counter()
        await self.open()
        events: list[CareEvent] = []
        rejected: list[tuple[bytes | None, Rejection]] = []
        for key, value in messages:
            result = validate_event(value if value is not None else b"")
            if isinstance(result, CareEvent):
                events.append(result)
            else:
                rejected.append((key, result))
        outcome, late = await self._apply(events, [r for _, r in rejected])
        rejected.extend((rejection_key(r), r) for r in late)
        await self._dead_letter(rejected)
        self._count(outcome, [r for _, r in rejected], len(messages))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        await self._notify(outcome)
        return outcome

    async def sweep_held(self) -> tuple[BatchOutcome, list[Rejection]]:
        """Apply held events whose reference has arrived; reject those held past the limit."""
        await self.open()
        now = self.clock.now()
        async with self.pool.connection() as conn:
            released = await release_held(conn, now)
            expired = await expire_held(conn, now, self.hold_limit_seconds, self.source)
        await self._dead_letter([(rejection_key(r), r) for r in expired])
        self._count(released, expired, 0)
        if released.applied:
            await self._notify(released)
        return released, expired

    async def _apply(self, events: list[CareEvent],
                     rejections: list[Rejection]) -> tuple[BatchOutcome, list[Rejection]]:
        """Apply with retries; returns the outcome and any events rejected because they cannot be stored."""
        delay = 0.5
        while True:
            try:
                async with self.pool.connection() as conn:
                    outcome = await apply_batch(conn, events, rejections, self.source, self.clock.now())
                DATABASE.ok()
                return outcome, []
            except _DATA_ERRORS as exc:
                if not events:
                    # Only rejections were being recorded: they still reach the dead-letter topic.
                    log.error("could not record %d rejections: %s", len(rejections), exc)
                    return BatchOutcome(rejected=len(rejections)), []
                if len(events) > 1:
                    log.warning("a batch of %d failed on its data (%s); applying event by event",
                                len(events), exc)
                    return await self._apply_one_by_one(events, rejections)
                event = events[0]
                reason = f"cannot be stored: {str(exc).strip().splitlines()[0]}"
                unstorable = [Rejection(reason, "semantic", event.event_id, event.type, event.raw)]
                outcome, _ = await self._apply([], [*rejections, *unstorable])
                return outcome, unstorable
            except (psycopg.Error, OSError) as exc:
                DATABASE.failed(exc)  # logged when the outage starts and when it ends, not every retry
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)

    async def _apply_one_by_one(self, events: list[CareEvent],
                                rejections: list[Rejection]) -> tuple[BatchOutcome, list[Rejection]]:
        total, unstorable = await self._apply([], rejections)
        for event in events:
            outcome, bad = await self._apply([event], [])
            total = _merge(total, outcome)
            unstorable.extend(bad)
        return total, unstorable

    async def _dead_letter(self, rejected: Sequence[tuple[bytes | None, Rejection]]) -> None:
        now = self.clock.now()
        for key, rejection in rejected:
            await self.dead_letters(key, dead_letter_record(rejection, self.source, now))

    def _count(self, outcome: BatchOutcome, rejections: Sequence[Rejection], size: int) -> None:
        for kind, n in outcome.applied_by_type().items():
            metrics.EVENTS_ACCEPTED.labels(type=kind).inc(n)
        for r in rejections:
            metrics.EVENTS_REJECTED.labels(stage=r.stage, source=self.source).inc()
        metrics.EVENTS_DUPLICATE.inc(outcome.duplicates)
        metrics.EVENTS_HELD.inc(outcome.held)
        metrics.EVENTS_RELEASED.inc(outcome.released)
        if size:
            metrics.BATCH_SIZE.observe(size)

    async def _notify(self, outcome: BatchOutcome) -> None:
        for listener in self.listeners:
            try:
                await listener(outcome)
            except Exception:
                log.exception("a batch listener failed; the batch itself is committed")


def _merge(a: BatchOutcome, b: BatchOutcome) -> BatchOutcome:
    return BatchOutcome(a.applied + b.applied, a.duplicates + b.duplicates, a.held + b.held,
                        a.released + b.released, a.rejected + b.rejected,
                        tuple(sorted(set(a.affected_shift_ids) | set(b.affected_shift_ids))),
                        a.applied_events + b.applied_events, a.alerts + b.alerts)
