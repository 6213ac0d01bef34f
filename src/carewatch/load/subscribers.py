"""`carewatch api-load --subscribers N`: N live `alerts` subscribers on one API process, one alert fanned out.

Per cycle: the API's resident memory before, with N subscribed and after they all left; each
subscriber's delivery time from the Redis publish; how many got it. Several cycles tell memory that
is held for reuse (flat from the second cycle) from memory that leaks (growing every cycle).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from carewatch.alerts.bus import Channels

SUBSCRIPTION = "subscription { alerts { id kind status shiftId } }"
OPEN_AT_ONCE = 200
SETTLE_SECONDS = 20.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _subscriber_count(api_url: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{api_url}/metrics", timeout=10)).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("carewatch_subscribers{") and 'channel="alerts"' in line)


async def _until_subscribers(api_url: str, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while await _subscriber_count(api_url) != n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API never reported {n} subscribers")
        await asyncio.sleep(0.2)


async def _open(ws_url: str, token: str) -> ClientConnection:
    ws = await connect(ws_url, subprotocols=["graphql-transport-ws"], open_timeout=60, ping_interval=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    ack = json.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no connection_ack: {ack}")
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
    return ws


async def _receive(ws: ClientConnection, alert_id: int, arrived: list[float]) -> None:
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") == "next" and message["payload"]["data"]["alerts"]["id"] == str(alert_id):
            arrived.append(time.perf_counter())
            return


@dataclass(frozen=True)
class Cycle:
    subscribers: int
    delivered: int
    p50_ms: float
    p99_ms: float
    rss_before: float
    rss_subscribed: float
    rss_soon: float  # 3 s after the last subscriber left
    rss_after: float  # SETTLE_SECONDS later


async def one_cycle(api_url: str, pid: int, token: str, channels: Channels, redis_url: str, n: int,
                    alert_id: int) -> Cycle:
    ws_url = api_url.replace("http://", "ws://") + "/graphql"
    before = rss_mib(pid)
    sockets: list[ClientConnection] = []
    for i in range(0, n, OPEN_AT_ONCE):
        sockets += await asyncio.gather(*(_open(ws_url, token) for _ in range(min(OPEN_AT_ONCE, n - i))))
    await _until_subscribers(api_url, n)
    subscribed = rss_mib(pid)
    arrived: list[float] = []
    readers = [asyncio.create_task(_receive(ws, alert_id, arrived)) for ws in sockets]
    now = datetime.now(UTC).isoformat()
    wire = {"id": alert_id, "kind": "SHORT_VISIT", "severity": "warning", "status": "open",
            "subject_type": "shift", "subject_id": "SH-LOAD", "raised_at": now, "resolved_at": None,
            "updated_at": now, "message": "load test", "package_id": None, "shift_id": "SH-LOAD",
            "carer_id": None, "provider_id": None, "commissioner_id": None, "caused_by_late_data": False,
            "details": {}, "history": []}
    publisher = aioredis.Redis.from_url(redis_url)
    published = time.perf_counter()
    await publisher.publish(channels.alerts, json.dumps(wire))
    await publisher.aclose()
    await asyncio.wait(readers, timeout=30)
    for r in readers:
        r.cancel()
    latencies = sorted((t - published) * 1000 for t in arrived)
    for i in range(0, len(sockets), OPEN_AT_ONCE):
        await asyncio.gather(*(ws.close() for ws in sockets[i:i + OPEN_AT_ONCE]), return_exceptions=True)
    await _until_subscribers(api_url, 0)
    await asyncio.sleep(3)
    soon = rss_mib(pid)
    await asyncio.sleep(SETTLE_SECONDS)  # connections finish closing; the hub hands memory back
    return Cycle(n, len(latencies), statistics.median(latencies) if latencies else float("nan"),
                 latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
                 before, subscribed, soon, rss_mib(pid))


def run_cycles(api_url: str, pid: int, token: str, prefix: str, redis_url: str, counts: list[int]) -> None:
    channels = Channels(prefix)
    for k, n in enumerate(counts, start=1):
        c = asyncio.run(one_cycle(api_url, pid, token, channels, redis_url, n, 900_000_000 + k))
        per = (c.rss_subscribed - c.rss_before) * 1024 / max(n, 1)
        print(f"subscribers {n:6d}: delivered {c.delivered:6d}, p50 {c.p50_ms:7.1f} ms, p99 {c.p99_ms:7.1f} ms;"
              f" API RSS {c.rss_before:6.0f} -> {c.rss_subscribed:6.0f} MiB subscribed ({per:5.1f} KiB each)"
              f" -> {c.rss_soon:6.0f} MiB 3 s after they left"
              f" -> {c.rss_after:6.0f} MiB {SETTLE_SECONDS + 3:.0f} s after",
              flush=True)
