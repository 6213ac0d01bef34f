"""Data-version messages: "what a query could read may have changed", published on Redis after a commit.

Every writer announces after its commit: the worker after each batch that applied, released or changed
something (a batch listener, like the alerts' publisher), the scheduler after a sweep that changed an
alert, the API after a mutation, `carewatch thresholds set` after its commit. Each API process listens
(`ChangeWatch`) and empties its response cache (graphql/response_cache.py) on every message, and while
it is not listening serves nothing from that cache. A message lost while Redis is away costs at most
the cache's TTL of staleness: an entry is never served longer than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from carewatch.alerts.bus import redis_where, subscribe
from carewatch.logs import Outage
from carewatch.settings import Settings

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


def data_version_channel(settings: Settings) -> str:
    """The deployment's channel (its prefix as the alerts' channels: deployments never meet)."""
    return f"{settings.channel_prefix}:data-version"


class HasChanges(Protocol):
    @property
    def applied(self) -> int: ...

    @property
    def released(self) -> int: ...

    @property
    def affected_shift_ids(self) -> tuple[str, ...]: ...

    @property
    def alerts(self) -> tuple[Any, ...]: ...


def changes_reads(outcome: HasChanges) -> bool:
    """Whether a committed batch changed anything a query reads. A batch of duplicates, or one whose
    events were all held or refused, wrote only the held and rejected tables, which no query reads."""
    return bool(outcome.applied or outcome.released or outcome.affected_shift_ids or outcome.alerts)


class DataVersion:
    """Announces changes on the data-version channel; a failure is logged (once per outage), never raised."""

    def __init__(self, client: aioredis.Redis, channel: str, source: str) -> None:
        self.client, self.channel, self.source = client, channel, source
        self.outage = Outage(
            log,
            f"{redis_where(client)} (announcing data changes)",
            retrying="API response caches expire by their TTL meanwhile",
        )

    async def changed(self) -> None:
        try:
            await self.client.publish(self.channel, json.dumps({"source": self.source}))
        except (aioredis.RedisError, OSError) as exc:
            self.outage.failed(exc)
            return
        self.outage.ok()


class BatchAnnouncer:
    """A BatchProcessor listener (called after each batch's commit) announcing, when the batch changed
    what queries read, in a task of its own: the batch loop never waits for Redis. Announcements
    coalesce: batches committed while one is being sent are covered by one more, sent after it."""

    def __init__(self, version: DataVersion) -> None:
        self.version = version
        self.due = False
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, outcome: HasChanges) -> None:
        if not changes_reads(outcome):
            return
        self.due = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._send(), name="announce-data-version")

    async def _send(self) -> None:
        while self.due:
            self.due = False
            await self.version.changed()  # never raises: a failure is logged, caches expire by their TTL

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the announcement under way, if any (tests; shutting down: at most `timeout` seconds,
        after which it is given up and API caches catch up within their TTL)."""
        if self._task is None:
            return
        if timeout is None:
            await self._task
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            log.warning("stopping before the last data-version announcement went out; API response caches "
                        "catch up within CAREWATCH_RESPONSE_CACHE_TTL_MS")


def batch_listener(version: DataVersion) -> BatchAnnouncer:
    """The worker's listener: announces after each committed batch that changed what queries read."""
    return BatchAnnouncer(version)


def announce_now(settings: Settings, source: str) -> bool:
    """Announce a change from a synchronous command (after its commit); False, with a warning, if Redis
    did not take it (API caches then catch up within their TTL)."""
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.publish(data_version_channel(settings), json.dumps({"source": source}))
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        log.warning(
            "could not announce the change on Redis (%s): API response caches catch up within "
            "CAREWATCH_RESPONSE_CACHE_TTL_MS",
            exc,
        )
        return False
    return True


class ChangeWatch:
    """The API process's subscription to the data-version channel.

    `on_change` is called for every message and on every (re)subscription (what was missed while away
    is unknown); `on_listening(bool)` says whether messages can be trusted to arrive.
    """

    def __init__(
        self, client: aioredis.Redis, channel: str, on_change: Callable[[], None], on_listening: Callable[[bool], None]
    ) -> None:
        self.client, self.channel = client, channel
        self.on_change, self.on_listening = on_change, on_listening
        self.outage = Outage(
            log, f"{redis_where(client)} (data-version messages)", retrying="GraphQL responses are not cached meanwhile"
        )
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="carewatch-data-version")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.on_listening(False)

    def _subscribed(self) -> None:
        self.outage.ok()
        self.on_change()
        self.on_listening(True)
        self.subscribed.set()

    async def _run(self) -> None:
        while True:
            try:
                async for _ in subscribe(self.client, self.channel, on_subscribed=self._subscribed):
                    self.on_change()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: stop trusting the cache until subscribed again
                self.on_listening(False)
                self.subscribed.clear()
                self.outage.failed(exc)
            await asyncio.sleep(RETRY_SECONDS)
