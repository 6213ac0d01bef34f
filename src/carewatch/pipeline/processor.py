"""One batch of care-event messages: validate, apply (pipeline/batch.py), record and dead-letter the rejects.

Kept apart from faust so it can be driven by the agent, by tests, or by a benchmark alike.
Bad input never raises out of here: one event's trouble costs only that event (the batch is split
until it is found); database trouble is retried with backoff, acknowledging nothing meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from carewatch import metrics
from carewatch.clock import Clock
from carewatch.collector import collect_while_paused
from carewatch.pipeline.batch import apply_batch, release_held
from carewatch.pipeline.outcome import BatchOutcome, merge_outcomes
from carewatch.schema.events import CareEvent, Rejection, message_key, validate_event
from carewatch.store.held import expire_held, resolvable_ids, take_held
from carewatch.store.rejects import record_rejections

log = logging.getLogger(__name__)

Message = tuple[bytes | None, bytes | None]  # (key, value) as taken from the topic


class DeadLetterSink(Protocol):
    async def __call__(self, key: bytes | None, value: bytes) -> None: ...


OutcomeListener = Callable[[BatchOutcome], Awaitable[None]]
T = TypeVar("T")


def is_database_failure(exc: BaseException) -> bool:
    """The database itself is failing (unreachable, shutting down, a deadlock, out of resources):
    retry the batch whole. Anything else is some event's trouble: split the batch to find it."""
    if isinstance(exc, psycopg.errors.ProgramLimitExceeded):  # e.g. an index row too large: data
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError))


def culprit_rejection(event: CareEvent, exc: BaseException) -> Rejection:
    """Why an event that could not be applied on its own was rejected."""
    message = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, (psycopg.DataError, psycopg.IntegrityError)):
        return Rejection(f"cannot be stored: {message}", "semantic", event.event_id, event.type, event.raw)
    return Rejection(f"could not be applied: {type(exc).__name__}: {message}", "internal", event.event_id,
                     event.type, event.raw)


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
    release_slice: int = 2000  # held events released per transaction by sweep_held
    partitions: tuple[tuple[str, int], ...] = ()  # (topic, partition) of the batch in hand
    stuck: bool = False  # retrying because the database is failing
    _opened: bool = field(default=False, repr=False)
    # Shared with siblings (dataclasses.replace passes it on): psycopg's pool must not be opened by two
    # callers at once, and concurrent lanes each open it on their first batch.
    _opening: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    # Messages validated ahead (validate_ahead), by their value: validation is a pure function of the
    # bytes, so a result found here is the one handle() would compute. Shared with siblings; bounded.
    _validated: dict[bytes, CareEvent | Rejection] = field(default_factory=dict, repr=False)
    validated_limit: int = 32_000  # two default batches: what one validate_queued pass can leave unused

    async def open(self) -> None:
        """Open the pool on first use, inside the running loop (faust owns the loop)."""
        if not self._opened:
            async with self._opening:
                await self.pool.open(wait=True, timeout=30)  # a no-op when the owner opened it already
            self._opened = True

    async def close(self) -> None:
        await self.pool.close()

    def sibling(self) -> BatchProcessor:
        """A processor for a concurrent lane (stream/lanes.py): the same pool, dead letters, clock and
        listeners; its own batch in hand and its own stuck state."""
        return replace(self, partitions=(), stuck=False)

    async def handle(self, messages: Sequence[Message], partitions: Sequence[tuple[str, int]] = ()) -> BatchOutcome:
        """Validate and apply one batch; returns once every message in it is applied or rejected
        (recorded and dead-lettered). Database trouble is retried here, for as long as it lasts."""
        started = time.perf_counter()
        self.partitions = tuple(partitions)
        await self.open()
        events: list[CareEvent] = []
        rejected: list[tuple[bytes | None, Rejection]] = []
        for key, value in messages:
            result = self._validated.pop(value, None) if type(value) is bytes else None
            if result is None:
                result = validate_event(value if value is not None else b"")
            if isinstance(result, CareEvent):
                events.append(result)
            else:
                rejected.append((key, result))
        outcome, culprits = await self._isolate(events, self._apply_events)
        later = [*outcome.rejections, *(culprit_rejection(e, exc) for e, exc in culprits)]
        rejected.extend((rejection_key(r), r) for r in later)
        await self._record([r for _, r in rejected])
        await self._dead_letter(rejected)
        self._count(outcome, [r for _, r in rejected], len(messages))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        outcome = replace(outcome, rejected=len(rejected))
        await self._notify(outcome)
        return outcome

    def validate_ahead(self, value: bytes) -> None:
        """Validate a message not yet handed over (one waiting in the stream's queue), so that handle()
        finds the result instead of computing it then (stream/agents.validate_queued)."""
        if value in self._validated:
            return
        if len(self._validated) >= self.validated_limit:  # messages validated but never handed over
            self._validated.clear()
        self._validated[value] = validate_event(value)

    async def sweep_held(self) -> tuple[BatchOutcome, list[Rejection]]:
        """Apply held events whose reference has arrived; reject those held past the limit."""
        await self.open()
        ids: list[str] = await self._retrying(self._resolvable)
        released = BatchOutcome()
        culprits: list[tuple[str, BaseException]] = []
        # In slices, oldest held first: with several workers thousands may be waiting (a package held
        # until another worker's batch registered its commissioner, then its shifts and visits), and
        # one transaction for all of them would hold locks for every carer they name at once.
        for start in range(0, len(ids), self.release_slice):
            part, bad = await self._isolate(ids[start:start + self.release_slice], self._release)
            released, culprits = merge_outcomes(released, part), [*culprits, *bad]
        refused = [*released.rejections, *await self._take_culprits(culprits)]
        async with self.pool.connection() as conn:
            expired = await expire_held(conn, self.clock.now(), self.hold_limit_seconds, self.source)
        await self._record(refused)
        rejections = [*refused, *expired]
        await self._dead_letter([(rejection_key(r), r) for r in rejections])
        self._count(released, rejections, 0)
        if released.applied:
            await self._notify(released)
        return released, rejections

    async def _apply_events(self, events: list[CareEvent]) -> BatchOutcome:
        async with self.pool.connection() as conn:
            return await apply_batch(conn, events, self.clock.now())

    async def _resolvable(self) -> list[str]:
        async with self.pool.connection() as conn:
            return await resolvable_ids(conn)

    async def _release(self, event_ids: list[str]) -> BatchOutcome:
        async with self.pool.connection() as conn:
            return await release_held(conn, self.clock.now(), event_ids)

    async def _take_culprits(self, culprits: Sequence[tuple[str, BaseException]]) -> list[Rejection]:
        """Held events that cannot be applied leave the held table as rejections."""
        if not culprits:
            return []
        why = dict(culprits)

        async def take() -> list[Rejection]:
            async with self.pool.connection() as conn, conn.transaction():
                return [culprit_rejection(h.event, why[h.event.event_id]) for h in await take_held(conn, why)]

        return await self._retrying(take)

    async def _isolate(self, items: list[T], attempt: Callable[[list[T]], Awaitable[BatchOutcome]]
                       ) -> tuple[BatchOutcome, list[tuple[T, BaseException]]]:
        """Apply `items` whole; if that fails on something other than the database, split them in two
        and try each half, down to the single items that fail alone (returned with their error)."""
        if not items:
            return BatchOutcome(), []
        try:
            return await self._retrying(lambda: attempt(items)), []
        except Exception as exc:
            if len(items) == 1:
                metrics.BATCHES_FAILED.labels(reason="internal").inc()
                log.warning("an event could not be applied and is rejected: %r", exc)
                return BatchOutcome(), [(items[0], exc)]
            metrics.BATCHES_FAILED.labels(reason="split").inc()
            log.warning("a batch of %d could not be applied (%s: %s); splitting it to find the cause",
                        len(items), type(exc).__name__, (str(exc).strip().splitlines() or [""])[0])
        middle = len(items) // 2
        first, bad_first = await self._isolate(items[:middle], attempt)
        second, bad_second = await self._isolate(items[middle:], attempt)
        return merge_outcomes(first, second), [*bad_first, *bad_second]

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` until the database lets it finish; meanwhile this batch's partitions are
        reported stuck (nothing of theirs is acknowledged, since the caller has not returned)."""
        delay = 0.5
        since: float | None = None
        try:
            while True:
                try:
                    return await attempt()
                except Exception as exc:
                    if not is_database_failure(exc):
                        raise
                    metrics.BATCHES_FAILED.labels(reason="database").inc()
                    if since is None:
                        since = time.monotonic()
                        self._mark_stuck(1)
                        log.error("the database is failing (%s: %s); retrying the batch until it answers",
                                  type(exc).__name__, (str(exc).strip().splitlines() or [""])[0])
                    metrics.STUCK_SECONDS.set(time.monotonic() - since)
                    collect_while_paused()  # the collector is paused for the batch (collector.py)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff_seconds)
        finally:
            if since is not None:
                self._mark_stuck(0)
                metrics.STUCK_SECONDS.set(0)
                log.warning("the database answers again after %.1f s; the batch goes on", time.monotonic() - since)

    def _mark_stuck(self, value: int) -> None:
        for topic, partition in self.partitions:
            metrics.PARTITION_STUCK.labels(topic=topic, partition=str(partition)).set(value)
        self.stuck = bool(value)

    async def _record(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return

        async def record() -> None:
            async with self.pool.connection() as conn, conn.transaction():
                await record_rejections(conn, rejections, self.source, self.clock.now())

        try:
            await self._retrying(record)
        except Exception:
            # They still reach the dead-letter topic; the table is the second place they are kept.
            metrics.BATCHES_FAILED.labels(reason="unexpected").inc()
            log.exception("could not record %d rejections; they go to the dead-letter topic", len(rejections))

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
