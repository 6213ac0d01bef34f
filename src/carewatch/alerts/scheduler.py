"""`carewatch scheduler`: the absence sweeps (and the settled UNKNOWN_CARER and PAY_BELOW_MINIMUM
judgements) every second and the slower alert sweeps every ~30 s.

Only the holder of the Redis lease sweeps; other replicas stand by and take over within the
lease's time to live when the active one stops. Sweeps are idempotent (the unique index on open
alerts), so an overlap during a handover cannot duplicate an alert.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import redis.asyncio as aioredis
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from carewatch import metrics
from carewatch.alerts.budgets import sweep_budgets
from carewatch.alerts.bus import AlertBus, Channels
from carewatch.alerts.data_version import DataVersion, data_version_channel
from carewatch.alerts.lease import Lease
from carewatch.alerts.record import AlertRecord
from carewatch.alerts.settled import sweep_settled
from carewatch.alerts.sweeps import SweepConfig, sweep_absences, sweep_slow
from carewatch.clock import Clock, parse_clock
from carewatch.domain.calendar import zone
from carewatch.logs import Outage
from carewatch.settings import Settings
from carewatch.store.db import make_pool

log = logging.getLogger("carewatch.scheduler")

# The sweeps, by the name that is also the `job` label of their metrics.
JOBS = ("absence", "delivery/pattern/pay")
# Failures that mean the database is away (an outage), rather than a fault in a sweep.
CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.errors.AdminShutdown, PoolTimeout, OSError)

Sweep = Callable[[AsyncConnection[Any], datetime, SweepConfig], Awaitable[list[AlertRecord]]]
SHIFT_STATUS_KINDS = frozenset({"LATE_START", "MISSED_VISIT"})


@dataclass(frozen=True)
class Intervals:
    fast_seconds: float = 1.0
    slow_seconds: float = 30.0
    lease_seconds: float = 1.0


async def _absences_and_settled(conn: AsyncConnection[Any], now: datetime, config: SweepConfig) -> list[AlertRecord]:
    """The absence sweeps, then UNKNOWN_CARER and PAY_BELOW_MINIMUM for what has settled."""
    return await sweep_absences(conn, now, config) + await sweep_settled(conn, now, config)


async def _slow_and_budgets(conn: AsyncConnection[Any], now: datetime, config: SweepConfig) -> list[AlertRecord]:
    """The slow sweeps, then BUDGET_AT_RISK for the packages no batch has judged for a day."""
    return await sweep_slow(conn, now, config) + await sweep_budgets(conn, now, zone(config.timezone))


class AlertScheduler:
    """The sweeps on an apscheduler AsyncIOScheduler, gated by the lease."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        bus: AlertBus,
        lease: Lease,
        clock: Clock,
        config: SweepConfig,
        intervals: Intervals = Intervals(),
        data_version: DataVersion | None = None,
    ) -> None:
        self.pool, self.bus, self.lease, self.clock = pool, bus, lease, clock
        self.data_version = data_version
        self.config, self.intervals = config, intervals
        self.sweeps_run = 0
        self._scheduler: AsyncIOScheduler | None = None
        self.database = Outage(log, "PostgreSQL (sweeps)", retrying="sweeping again every tick")
        self.failing = {job: Outage(log, f"the {job} sweep", retrying="retrying every tick") for job in JOBS}
        for job in JOBS:  # every series exists from the start, at zero
            metrics.SWEEP_RUNS.labels(job)
            metrics.SWEEP_FAILURES.labels(job)

    async def _sweep(self, name: str, sweep: Sweep, every: float) -> list[AlertRecord]:
        if not self.lease.held:
            return []
        job = name
        now = self.clock.now()
        started = time.perf_counter()
        try:
            # Wait for a connection less than the interval: with the database away, a sweep fails in time
            # for the next tick rather than blocking it (and apscheduler warning each second it skipped one).
            async with self.pool.connection(timeout=max(0.5, 0.8 * every)) as conn:
                changed = await sweep(conn, now, self.config)
                await conn.commit()
        except Exception as exc:
            # A sweep that fails (database restarting, say) is retried on the next tick; the outage
            # is logged when it starts and when it ends, not every second.
            metrics.SWEEP_FAILURES.labels(job).inc()
            if isinstance(exc, CONNECTION_ERRORS):
                self.database.failed(exc)
            else:
                if not self.failing[job].down:
                    log.exception("%s sweep failed at %s", name, now.isoformat())
                self.failing[job].failed(exc)
            return []
        self.database.ok()
        self.failing[job].ok()
        metrics.SWEEP_RUNS.labels(job).inc()
        metrics.SWEEP_SECONDS.labels(job).observe(time.perf_counter() - started)
        self.sweeps_run += 1
        for alert in changed:
            log.info(
                "%s %s %s %s/%s: %s",
                name,
                alert.status,
                alert.kind,
                alert.subject_type,
                alert.subject_id,
                alert.message,
            )
        await self.bus.publish_alerts(changed)
        if changed and self.data_version is not None:
            await self.data_version.changed()  # API processes empty their response caches
        await self.bus.publish_shift_updates(
            a.shift_id for a in changed if a.shift_id and a.kind in SHIFT_STATUS_KINDS
        )
        return changed

    async def sweep_fast(self) -> list[AlertRecord]:
        return await self._sweep("absence", _absences_and_settled, self.intervals.fast_seconds)

    async def sweep_slow(self) -> list[AlertRecord]:
        return await self._sweep("delivery/pattern/pay", _slow_and_budgets, self.intervals.slow_seconds)

    async def start(self) -> None:
        await self.lease.tick()
        scheduler = AsyncIOScheduler()
        options: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 5}
        scheduler.add_job(self.lease.tick, "interval", seconds=self.intervals.lease_seconds, **options)
        scheduler.add_job(self.sweep_fast, "interval", seconds=self.intervals.fast_seconds, **options)
        scheduler.add_job(self.sweep_slow, "interval", seconds=self.intervals.slow_seconds, **options)
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self, *, release: bool = True) -> None:
        """Stop sweeping; `release=False` leaves the lease to expire, as a crash would."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if release:
            await self.lease.release()
        else:
            self.lease.held = False


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    config: SweepConfig | None = None,
    intervals: Intervals = Intervals(),
    lease_ttl_ms: int = 3000,
) -> None:
    """Run until `stop` is set, owning the pool, the Redis client and the lease."""
    channels = Channels.for_settings(settings)
    client = aioredis.Redis.from_url(settings.redis_url)
    pool = make_pool(settings.database_url, min_size=1, max_size=2)
    await pool.open(wait=True)
    scheduler = AlertScheduler(
        pool,
        AlertBus(client, channels, source="sweep"),
        Lease(client, channels.scheduler_lease, lease_ttl_ms),
        clock or parse_clock(settings.clock),
        config or SweepConfig(timezone=settings.timezone, settle=timedelta(seconds=settings.settle_seconds)),
        intervals,
        DataVersion(client, data_version_channel(settings), "sweep"),
    )
    try:
        await scheduler.start()
        log.info(
            "scheduler started (%s); lease %s %s",
            settings.clock,
            channels.scheduler_lease,
            "held" if scheduler.lease.held else "held elsewhere: standing by",
        )
        await stop.wait()
    finally:
        await scheduler.stop()
        await pool.close()
        await client.aclose()


def run_scheduler(settings: Settings) -> int:
    """The `carewatch scheduler` process (its database checked by the command line): sweep until SIGINT
    or SIGTERM, serving metrics on CAREWATCH_SCHEDULER_METRICS_PORT when it is set."""
    try:
        parse_clock(settings.clock)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    if settings.scheduler_metrics_port:
        metrics.serve_metrics(settings.scheduler_metrics_port, settings.metrics_host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
    return 0
