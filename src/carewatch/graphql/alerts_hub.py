"""One Redis subscription per API process, fanned out to its listeners' bounded queues.

A listener is one group of websocket subscribers that share an execution (graphql/fanout.py: same
document, variables and viewer, so the same payload), or one subscription of its own (over HTTP). A
subscriber that falls more than its queue's size behind (CAREWATCH_SUBSCRIBER_QUEUE, 1,000 by default)
is dropped: its websocket is closed with code 4413, so one slow client never makes the process hold
unbounded memory; it reconnects and catches up with `alerts(filter: {since: ...})`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import redis.asyncio as aioredis
from graphql import GraphQLError

from carewatch import metrics
from carewatch.alerts.bus import AlertBus, Channels, redis_where, subscribe
from carewatch.logs import Outage
from carewatch.settings import Settings

if TYPE_CHECKING:
    from carewatch.graphql.fanout import Group, GroupKey

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000
STOP_SECONDS = 3.0  # the longest stop() waits for the Redis subscription to close


WS_SLOW_SUBSCRIBER = 4413  # websocket close code: this client fell too far behind
SLOW_SUBSCRIBER_REASON = "too slow: fell too far behind; reconnect and catch up with alerts(filter: {since})"


# How long after the last of a wave of departures memory is handed back: the websockets themselves
# finish closing (their close handshake) a few seconds after their subscriptions end.
RELEASE_AFTER_SECONDS = 10.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, which hands freed heap pages back to the system; None elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except OSError:
        return None
    return trim if callable(trim) else None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Return what departed subscribers held to the system: their cycles collected, freed pages trimmed.

    Without this the process keeps its peak: CPython and glibc keep freed memory for reuse, so RSS
    after 10,000 subscribers left stayed at the 10,000-subscriber level.
    """
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


class SlowSubscriber(GraphQLError):
    """Raised into a subscription whose client could not keep up."""


class Audience(Protocol):
    """The subscribers one listener delivers to, when they are a group (graphql/fanout.py): the hub counts
    them in the subscribers gauge while the listener listens, and the group drops each of them itself."""

    def listening(self, hub: AlertHub, channel: str) -> None:
        """The listener has started listening on `channel`: from now on the group counts its members."""

    def not_listening(self) -> None:
        """The listener has stopped listening: its members are no longer counted."""


@dataclass(eq=False)
class _Subscriber:
    channel: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False
    on_drop: Callable[[], None] | None = None  # told at once: its reader may be stuck sending to the client
    audience: Audience | None = None  # a group of subscribers; None: one subscriber


class AlertHub:
    def __init__(self, redis_url: str, channels: Channels, queue_size: int = QUEUE_SIZE) -> None:
        self.redis_url, self.channels, self.queue_size = redis_url, channels, queue_size
        self.subscribers: set[_Subscriber] = set()  # listeners: one per group of subscribers, or one each
        self.listening = 0  # subscribers (not listeners) listening now, over both channels
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.TimerHandle | None = None
        self.peak = 0  # subscribers at most since memory was last released
        self.groups: dict[GroupKey, Group] = {}  # graphql/fanout.py's groups, by what their members share
        for name in (channels.alerts, channels.shift_updates):  # both series exist from the start, at zero
            metrics.SUBSCRIBERS.labels(name.rsplit(":", 1)[-1])

    def client(self) -> aioredis.Redis:
        # A new event loop (a test's second app, say) gets its own client and pump.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client, self._loop, self._task = aioredis.Redis.from_url(self.redis_url), loop, None
        return self._client

    def bus(self) -> AlertBus:
        return AlertBus(self.client(), self.channels)

    def _ensure_running(self) -> None:
        client = self.client()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._pump(client), name="carewatch-alert-hub"
            )

    async def start(self) -> None:
        """Subscribe on Redis now (the API's lifespan calls this), so the first client misses nothing."""
        self._ensure_running()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Unsubscribe and close the Redis client; open subscriptions end with the process."""
        task, client = self._task, self._client
        self._task, self._client, self._loop = None, None, None
        if task is not None:
            task.cancel()
            # Bounded: a shutdown must not hang on Redis (the pump's cleanup has its own limit too).
            done, _ = await asyncio.wait({task}, timeout=STOP_SECONDS)
            if not done:
                log.warning("the alert hub's Redis subscription did not close in %.0f s; leaving it", STOP_SECONDS)
            elif not task.cancelled() and task.exception() is not None:
                log.warning("the alert hub stopped with %r", task.exception())
        if client is not None:
            with contextlib.suppress(Exception):  # shutting down either way
                async with asyncio.timeout(STOP_SECONDS):
                    await client.aclose()

    async def _pump(self, client: aioredis.Redis) -> None:
        outage = Outage(log, f"{redis_where(client)} (live alerts and shift updates)",
                        retrying="resubscribing every second")
        while True:
            try:
                async for channel, message in subscribe(
                    client, self.channels.alerts, self.channels.shift_updates, on_subscribed=outage.ok
                ):
                    self._fan_out(channel, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outage.failed(exc)
                await asyncio.sleep(1)

    def _fan_out(self, channel: str, message: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            if sub.channel != channel or sub.dropped:
                continue
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                sub.dropped = True
                self.subscribers.discard(sub)
                if sub.audience is None:  # a group counts each of its members as it drops them
                    metrics.SUBSCRIBERS_DROPPED.inc()
                log.warning("dropped a %s on %s: %d messages behind",
                            "subscriber" if sub.audience is None else "group of subscribers",
                            channel, sub.queue.qsize())
                if sub.on_drop is not None:
                    sub.on_drop()

    def count(self, channel: str, delta: int) -> None:
        """`delta` subscribers started (or, negative, stopped) listening on `channel`: the gauge, the peak,
        and once a wave of them has gone, memory handed back."""
        if delta == 0:
            return
        metrics.SUBSCRIBERS.labels(channel.rsplit(":", 1)[-1]).inc(delta)
        self.listening += delta
        if delta > 0:
            self.peak = max(self.peak, self.listening)
        else:
            self._release_later()

    async def listen(self, channel: str, on_drop: Callable[[], None] | None = None,
                     audience: Audience | None = None) -> AsyncIterator[dict[str, Any]]:
        """Messages on `channel` from now on; raises SlowSubscriber once the reader has fallen more than
        the queue's size behind (and calls `on_drop` at that moment, from the hub's own task).

        With an `audience` the reader delivers to a group of subscribers, which it counts itself."""
        self._ensure_running()
        sub = _Subscriber(channel, asyncio.Queue(self.queue_size), on_drop=on_drop, audience=audience)
        self.subscribers.add(sub)
        if audience is None:
            self.count(channel, 1)
        else:
            audience.listening(self, channel)
        try:
            while True:
                if sub.dropped:
                    raise SlowSubscriber(
                        f"subscription dropped: this client fell more than {self.queue_size} updates behind; "
                        "resubscribe and catch up with alerts(filter: {since: ...})"
                    )
                yield await sub.queue.get()
        finally:
            self.subscribers.discard(sub)
            if audience is None:
                self.count(channel, -1)
            else:
                audience.not_listening()

    def _release_later(self) -> None:
        """Once a wave of departures has settled (none for RELEASE_AFTER_SECONDS) and at least half the peak
        has gone, hand the memory back: one collection per wave, not one per subscriber."""
        if self.peak < 100 or self.listening > self.peak // 2:
            return
        if self._release is not None:
            self._release.cancel()
        self._release = asyncio.get_running_loop().call_later(RELEASE_AFTER_SECONDS, self._released)

    def _released(self) -> None:
        self._release = None
        self.peak = self.listening
        release_memory()


def hub_of(settings: Settings) -> AlertHub:
    """A hub for this deployment's channels; the API's lifespan makes one, starts it and stops it."""
    return AlertHub(settings.redis_url, Channels.for_settings(settings), max(1, settings.subscriber_queue))
