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
from typing import Any

import httpx
import redis.asyncio as aioredis
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

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


class _Client(asyncio.Protocol):
    """One graphql-transport-ws subscriber on websockets' sans-I/O protocol.

    Frames are handled as their bytes arrive, with no task or future per socket: 10,000 clients in one
    Python process on the API's own machine cost that process far less than websockets' asyncio client
    (about a tenth of a millisecond per message), which delayed the deliveries it was timing."""

    def __init__(self, url: str, token: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol("graphql-transport-ws")])
        self.token = token
        self.transport: asyncio.Transport | None = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.expect: str | None = None  # the alert id awaited
        self.arrived: list[float] | None = None
        self._text: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif not self.transport.is_closing():  # the protocol asks for the end of the stream
                self.transport.write_eof() if self.transport.can_write_eof() else self.transport.close()

    def _send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    self._fail(self.protocol.handshake_exc)
                    return
                self._send({"type": "connection_init", "payload": {"authorization": f"Bearer {self.token}"}})
            elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.CONT):
                self._text.append(bytes(event.data))
                if event.fin:
                    self._message(json.loads(b"".join(self._text)))
                    self._text.clear()
        self._flush()  # pongs, the close handshake

    def _message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "connection_ack":
            self._send({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
            if not self.subscribed.done():
                self.subscribed.set_result(None)
        elif (kind == "next" and self.expect is not None and self.arrived is not None
              and message["payload"]["data"]["alerts"]["id"] == self.expect):
            self.arrived.append(time.perf_counter())
            self.expect = None
        elif kind not in ("next", "pong", "ping"):
            self._fail(RuntimeError(f"unexpected message: {message}"))

    def _fail(self, exc: BaseException) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc or ConnectionError("closed before subscribing"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self) -> None:
        """The websocket closing handshake, then the end of the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.protocol.send_close(1000)
            self._flush()
        try:
            async with asyncio.timeout(10):
                await self.closed
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()


async def _open(ws_url: str, token: str) -> _Client:
    uri = parse_uri(ws_url)
    _, client = await asyncio.get_running_loop().create_connection(lambda: _Client(ws_url, token), uri.host, uri.port)
    async with asyncio.timeout(60):
        await client.subscribed
    return client


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
    sockets: list[_Client] = []
    for i in range(0, n, OPEN_AT_ONCE):
        sockets += await asyncio.gather(*(_open(ws_url, token) for _ in range(min(OPEN_AT_ONCE, n - i))))
    await _until_subscribers(api_url, n)
    subscribed = rss_mib(pid)
    arrived: list[float] = []
    for ws in sockets:
        ws.expect, ws.arrived = str(alert_id), arrived
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
    deadline = time.monotonic() + 30
    while len(arrived) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
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
