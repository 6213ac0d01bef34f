"""Per-token rate limit of POST /events: a fixed one-minute window counted in Redis.

Redis holds the count so that every API replica shares it. A fixed window lets a token
send up to twice the rate across a window boundary; for protecting the ingest path from a
runaway roster system that is enough, and it costs one round trip.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    retry_after_seconds: int  # 0 when allowed


def decide(count: int, limit: int, now: float, window_start: float) -> RateDecision:
    """Pure: whether the `count`-th request in the window that began at `window_start` may pass."""
    if count <= limit:
        return RateDecision(True, count, 0)
    retry = max(1, math.ceil(window_start + WINDOW_SECONDS - now))
    return RateDecision(False, count, retry)


class IngestRateLimiter:
    """Counts POST /events requests per token; `limit` per minute, 0 or less switches it off."""

    def __init__(self, limit_per_minute: int, namespace: str = "carewatch",
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.limit = limit_per_minute
        self.namespace = namespace
        self._wall_clock = wall_clock

    async def hit(self, redis: Any, token_key: str) -> RateDecision:
        if self.limit <= 0:
            return RateDecision(True, 0, 0)
        now = self._wall_clock()
        window = int(now // WINDOW_SECONDS)
        key = f"{self.namespace}:ingest-rate:{token_key}:{window}"
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_SECONDS * 2)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            # Care events matter more than the limit: with Redis down, let them in and say so.
            log.warning("ingest rate limit skipped, Redis unavailable: %s", exc)
            return RateDecision(True, 0, 0)
        return decide(int(count), self.limit, now, window * WINDOW_SECONDS)
