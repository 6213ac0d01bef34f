"""A Redis lease: one active scheduler, the others standbys that take over when it stops renewing."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import redis.asyncio as aioredis

from carewatch.alerts.bus import redis_where
from carewatch.logs import Outage

log = logging.getLogger(__name__)

# Renew or release only while the lease is still ours: compare the token and act in one step.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lease:
    """SET NX PX with a random token; `held` is what this process last saw."""

    def __init__(
        self, client: aioredis.Redis, key: str, ttl_ms: int = 3000, token: str | None = None
    ) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = token or secrets.token_hex(16)
        self.held = False
        self.outage = Outage(log, f"{redis_where(client)} (scheduler lease)", retrying="standing by")

    async def tick(self) -> bool:
        """Renew the lease if held, else try to take it; never raises on a Redis error (then not held)."""
        try:
            if self.held:
                renewed: Any = await self.client.eval(_RENEW, 1, self.key, self.token, str(self.ttl_ms))
                if not int(renewed):
                    log.warning("scheduler lease %s lost; now a standby", self.key)
                    self.held = False
            if not self.held and await self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
                log.info("scheduler lease %s taken: this scheduler is active", self.key)
                self.held = True
        except aioredis.RedisError as exc:
            self.outage.failed(exc)
            self.held = False
            return False
        self.outage.ok()
        return self.held

    async def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            await self.client.eval(_RELEASE, 1, self.key, self.token)
        except aioredis.RedisError:
            log.warning("could not release the scheduler lease %s; it expires by itself", self.key)
