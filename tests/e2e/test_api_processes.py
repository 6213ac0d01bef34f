"""Several API processes are interchangeable: a subscriber on one hears what a mutation on another did.

Two real `carewatch api` processes on one database and Redis; the safeguarding lead's subscription is
on process B, the acknowledgement goes to process A; A publishes on Redis after its commit and B's
hub fans it out to its own subscriber (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta

import httpx
import psycopg
import pytest
from tests.integration.alert_fixtures import START, add_package, add_shift
from tests.procs import api_server, create_token, graphql
from websockets.asyncio.client import connect

from carewatch.alerts.sweeps import SweepConfig, sweep_absences
from carewatch.services import Broker

pytestmark = pytest.mark.services


async def _raise_late_start(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await sweep_absences(conn, START + timedelta(minutes=20), SweepConfig())


def _subscribers(base: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("carewatch_subscribers{") and 'channel="alerts"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _acknowledged_elsewhere(a: str, b: str, token: str, alert_id: str) -> dict[str, str]:
    async with connect(b.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": "subscription { alerts { id kind status } }"}}))
        deadline = time.monotonic() + 10
        while _subscribers(b) < 1:  # B's hub holds the subscription before A acts
            assert time.monotonic() < deadline, "the subscription never reached process B's hub"
            await asyncio.sleep(0.05)
        assert _subscribers(a) == 0  # and it is B's, not A's
        await asyncio.to_thread(graphql, a, token, 'mutation($id: ID!) { acknowledgeAlert(id: $id, note: "on it")'
                                " { status } }", id=alert_id)
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert message["type"] == "next", message
        return dict(message["payload"]["data"]["alerts"])


def test_a_subscriber_on_one_process_hears_a_mutation_on_another(
        broker: Broker, fresh_database_url: str, redis_url: str) -> None:
    url = fresh_database_url
    with psycopg.connect(url, autocommit=True) as db:
        add_package(db)
        add_shift(db, "SH-1")
    asyncio.run(_raise_late_start(url))
    lead = create_token(url, "safeguarding", "LA-1")
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    with api_server(broker, url, redis_url, topic) as a, api_server(broker, url, redis_url, topic) as b:
        assert a != b
        (edge,) = graphql(a, lead, "{ alerts { edges { node { id kind status } } } }")["alerts"]["edges"]
        alert = edge["node"]
        assert (alert["kind"], alert["status"]) == ("LATE_START", "open")
        heard = asyncio.run(_acknowledged_elsewhere(a, b, lead, alert["id"]))
    assert heard == {"id": alert["id"], "kind": "LATE_START", "status": "acknowledged"}
