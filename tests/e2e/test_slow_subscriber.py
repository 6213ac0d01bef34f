"""A safeguarding client that stops reading is closed with code 4413, not buffered without bound.

The real API process (uvicorn), a real websocket client that stops reading mid-stream, and alerts
published on Redis faster than it takes them: once the client's queue in the API is full, the API
closes the socket with 4413 and counts it; the client, reading again, finds the close after what
was already on its way, and its reason says how to catch up.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from carewatch.services import Broker
from procs import api_server, create_token

pytestmark = pytest.mark.services

QUEUE = 20
PAD = "x" * 10_000  # each alert's message: the flood is ~20 MB, more than the sockets buffer
FLOOD = 2_000


def _wire_alert(n: int) -> dict[str, Any]:
    at = "2026-04-07T09:00:00+00:00"
    return {"id": n, "kind": "LATE_START", "severity": "warning", "status": "open", "subject_type": "shift",
            "subject_id": f"SH-{n}", "raised_at": at, "resolved_at": None, "updated_at": at,
            "message": f"late start {n} {PAD}", "package_id": "PKG-1", "shift_id": f"SH-{n}", "carer_id": None,
            "provider_id": "PRV-1", "commissioner_id": "LA-1", "caused_by_late_data": False, "details": {},
            "history": []}


def _dropped(base: str, token: str) -> float:
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5).text
    lines = [line for line in text.splitlines() if line.startswith("carewatch_subscribers_dropped_total ")]
    return float(lines[0].split()[1]) if lines else 0.0


async def test_a_client_that_stops_reading_is_closed_with_4413(
        broker: Broker, fresh_database_url: str, redis_url: str) -> None:
    prefix = f"carewatch-test-{uuid.uuid4().hex[:8]}"
    channel = f"{prefix}:alerts"
    token = create_token(fresh_database_url, "admin")
    with api_server(broker, fresh_database_url, redis_url, f"care-events-{uuid.uuid4().hex[:8]}",
                    CAREWATCH_SUBSCRIBER_QUEUE=str(QUEUE), CAREWATCH_REDIS_PREFIX=prefix) as base:
        publisher = aioredis.Redis.from_url(redis_url)
        url = base.replace("http://", "ws://") + "/graphql"
        try:
            async with connect(url, subprotocols=["graphql-transport-ws"], max_queue=4) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps({"type": "connection_init",
                                          "payload": {"authorization": f"Bearer {token}"}}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                          "payload": {"query": "subscription { alerts { id message } }"}}))
                # The subscription is live once a probe comes through.
                deadline = time.monotonic() + 15
                while True:
                    await publisher.publish(channel, json.dumps(_wire_alert(0)))
                    try:
                        first = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                        break
                    except TimeoutError:
                        assert time.monotonic() < deadline, "the subscription never delivered"
                assert first["type"] == "next" and first["payload"]["data"]["alerts"]["id"] == "0"

                # Stop reading and flood.
                async with publisher.pipeline(transaction=False) as pipe:
                    for n in range(1, FLOOD + 1):
                        pipe.publish(channel, json.dumps(_wire_alert(n)))
                    await pipe.execute()
                deadline = time.monotonic() + 30
                while _dropped(base, token) < 1:
                    assert time.monotonic() < deadline, "the API never dropped the slow subscriber"
                    await asyncio.sleep(0.2)

                # Reading again: what was already sent arrives, then the close.
                received = 0
                with pytest.raises(ConnectionClosed) as closed:
                    async with asyncio.timeout(30):
                        while True:
                            message = json.loads(await ws.recv())
                            assert message["type"] == "next", message
                            received += 1
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4413
            assert "since" in closed.value.rcvd.reason
            assert 0 < received < FLOOD  # it was cut off, not handed the whole flood
        finally:
            await publisher.aclose()
