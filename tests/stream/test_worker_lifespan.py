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
