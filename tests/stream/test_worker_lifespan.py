"""The worker owns its pool and Redis client: opened by a start-up task, closed when the app shuts down."""

from __future__ import annotations

from dataclasses import replace

import pytest

from carewatch.settings import Settings
from carewatch.stream.worker import build_worker_app

pytestmark = pytest.mark.services


async def test_the_worker_opens_and_closes_what_it_owns(fresh_database_url: str, redis_url: str) -> None:
    app, processor, resources = build_worker_app(replace(Settings(), database_url=fresh_database_url,
                                                         redis_url=redis_url))
    assert processor.pool is resources.pool
    [open_resources] = [t for t in app._app_tasks if t.__name__ == "open_resources"]  # a start-up task
    await open_resources()
    async with resources.pool.connection() as conn:
        assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    assert await resources.redis.ping()
    await app.on_before_shutdown.send()
    assert resources.closed and resources.pool.closed


async def test_the_last_data_version_announcement_goes_out_before_redis_closes(
        fresh_database_url: str, redis_url: str) -> None:
    """A batch committed just before the worker stops still tells the API processes to empty their
    response caches: the worker drains its announcer before it closes the Redis client."""
    import asyncio

    import redis.asyncio as aioredis

    from carewatch.alerts.data_version import data_version_channel
    from carewatch.pipeline.outcome import BatchOutcome

    settings = replace(Settings(), database_url=fresh_database_url, redis_url=redis_url)
    app, _, resources = build_worker_app(settings)
    assert resources.announcer is not None
    listener = aioredis.Redis.from_url(redis_url)
    pubsub = listener.pubsub()
    await pubsub.subscribe(data_version_channel(settings))
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    version = resources.announcer.version
    send = version.changed

    async def slow_send() -> None:  # Redis slow to take it: still under way when the worker stops
        await asyncio.sleep(0.3)
        await send()

    version.changed = slow_send  # type: ignore[method-assign]
    await resources.announcer(BatchOutcome(applied=1))  # sent from a task of its own
    await app.on_before_shutdown.send()
    assert resources.closed
    # Already on Redis when the shutdown returned (without the drain it would go out 0.3 s later, from
    # a task the stopping process no longer runs).
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
    await pubsub.aclose()
    await listener.aclose()
    assert message is not None and b"worker" in message["data"]
