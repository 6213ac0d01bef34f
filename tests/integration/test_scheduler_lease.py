"""Two schedulers on one deployment: only the lease holder sweeps; the standby takes over; no duplicates."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
from tests.integration.alert_fixtures import START, add_package, add_shift

from carewatch.alerts.bus import AlertBus, Channels
from carewatch.alerts.lease import Lease
from carewatch.alerts.scheduler import AlertScheduler, Intervals
from carewatch.alerts.sweeps import SweepConfig
from carewatch.clock import FixedClock
from carewatch.store.db import make_pool

pytestmark = pytest.mark.services
FAST = Intervals(fast_seconds=0.1, slow_seconds=30, lease_seconds=0.1)


async def until(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


async def test_one_active_scheduler_a_standby_takes_over_and_no_alert_is_duplicated(
    fresh_database_url: str, redis_url: str
) -> None:
    with psycopg.connect(fresh_database_url, autocommit=True) as db:
        add_package(db)
        add_shift(db, "SH-1")
    channels = Channels(f"carewatch-test:{uuid.uuid4().hex}")
    client = aioredis.Redis.from_url(redis_url)
    listener = client.pubsub(ignore_subscribe_messages=True)
    await listener.subscribe(channels.alerts)
    clock = FixedClock(START + timedelta(minutes=16))
    pools = [make_pool(fresh_database_url, max_size=2) for _ in range(2)]
    for pool in pools:
        await pool.open(wait=True)
    first, second = (
        AlertScheduler(pool, AlertBus(client, channels), Lease(client, channels.scheduler_lease, ttl_ms=600),
                       clock, SweepConfig(), FAST)
        for pool in pools
    )
    try:
        await first.start()
        await second.start()
        assert first.lease.held and not second.lease.held
        assert await until(lambda: first.sweeps_run >= 3)
        assert second.sweeps_run == 0  # the standby never sweeps

        # The active scheduler dies without releasing its lease; the standby takes over on expiry.
        await first.stop(release=False)
        assert await until(lambda: second.lease.held, seconds=3)
        ran_before = second.sweeps_run
        clock.advance(45 * 60)  # now past the missed-visit deadline too
        assert await until(lambda: second.sweeps_run > ran_before + 2)

        with psycopg.connect(fresh_database_url) as db:
            rows = db.execute("SELECT kind, subject_id, status FROM alerts ORDER BY id").fetchall()
        assert rows == [("LATE_START", "SH-1", "open"), ("MISSED_VISIT", "SH-1", "open")]

        published: list[dict[str, Any]] = []
        for _ in range(20):  # the first reads return the subscription confirmation as None
            message = await listener.get_message(timeout=0.05)
            if message is not None:
                published.append(json.loads(message["data"]))
        assert [(m["kind"], m["status"]) for m in published] == [
            ("LATE_START", "open"), ("MISSED_VISIT", "open")]
    finally:
        await first.stop()
        await second.stop()
        for pool in pools:
            await pool.close()
        await listener.aclose()
        await client.aclose()


async def test_released_lease_is_taken_at_once(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    key = f"carewatch-test:{uuid.uuid4().hex}:scheduler-lease"
    a, b = Lease(client, key, ttl_ms=3000), Lease(client, key, ttl_ms=3000)
    try:
        assert await a.tick() and not await b.tick()
        assert await a.tick()  # renewal keeps it
        await a.release()
        assert await b.tick() and not await a.tick()
    finally:
        await b.release()
        await client.aclose()


async def test_a_failing_sweep_is_counted_by_job(fresh_database_url: str, redis_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from carewatch import metrics
    from carewatch.alerts import scheduler as scheduler_module

    async def broken(conn: Any, now: Any, config: Any) -> list[Any]:
        raise psycopg.errors.UndefinedTable('relation "shifts" does not exist')

    monkeypatch.setattr(scheduler_module, "sweep_absences", broken)
    channels = Channels(f"carewatch-test:{uuid.uuid4().hex}")
    client = aioredis.Redis.from_url(redis_url)
    pool = make_pool(fresh_database_url, max_size=1)
    await pool.open(wait=True)
    sweeps = AlertScheduler(pool, AlertBus(client, channels), Lease(client, channels.scheduler_lease, ttl_ms=600),
                            FixedClock(START), SweepConfig(), FAST)
    before = metrics.SWEEP_FAILURES.labels(job="absence")._value.get()
    try:
        await sweeps.lease.tick()
        assert await sweeps.sweep_fast() == []
        assert await sweeps.sweep_fast() == []
    finally:
        await pool.close()
        await client.aclose()
    assert metrics.SWEEP_FAILURES.labels(job="absence")._value.get() == before + 2
