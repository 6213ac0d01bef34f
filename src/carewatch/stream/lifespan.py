"""What the worker process owns: its database pool and Redis client, opened on start, closed on stop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from carewatch.alerts.bus import PublishQueue
from carewatch.alerts.data_version import BatchAnnouncer
from carewatch.settings import Settings
from carewatch.store.db import make_pool

log = logging.getLogger(__name__)


@dataclass
class WorkerResources:
    pool: AsyncConnectionPool
    redis: aioredis.Redis
    publisher: PublishQueue | None = None  # published from before the pool and Redis close
    announcer: BatchAnnouncer | None = None  # its last announcement sent before Redis closes
    opened: bool = False
    closed: bool = False

    @staticmethod
    def for_settings(settings: Settings) -> WorkerResources:
        # A connection per lane (stream/lanes.py), one for the held-events sweep, one to spare.
        return WorkerResources(make_pool(settings.database_url, min_size=1,
                                         max_size=max(4, settings.worker_lanes + 2)),
                               aioredis.Redis.from_url(settings.redis_url))

    async def open(self) -> None:
        """Open the pool (idempotent: the first batch may come before the start-up task runs)."""
        if not self.opened:
            self.opened = True
            await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.publisher is not None:
            await self.publisher.close()
        if self.announcer is not None:
            await self.announcer.drain(timeout=5.0)
        await self.pool.close()
        await self.redis.aclose()

    def attach(self, app: faust.App) -> None:
        """Open with the app's start and close after its consumer has stopped (no batch in flight)."""

        @app.task  # type: ignore[untyped-decorator]
        async def open_resources() -> None:
            await self.open()

        @app.on_before_shutdown.connect  # type: ignore[arg-type,untyped-decorator]
        async def close_resources(sender: Any, **_: Any) -> None:
            try:
                await self.close()
            except Exception:
                log.exception("closing the worker's pool and Redis client failed")
