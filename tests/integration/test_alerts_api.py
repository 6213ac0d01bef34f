"""Alerts through the real API: query, acknowledge/resolve with history, and a websocket subscription."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import redis
from starlette.testclient import TestClient
from tests.integration.alert_fixtures import START, add_package, add_shift

from carewatch.alerts.bus import Channels
from carewatch.alerts.sweeps import SweepConfig, sweep_absences
from carewatch.clock import FixedClock
from carewatch.security.tokens import create_token
from carewatch.settings import Settings
from carewatch.web import create_app

pytestmark = pytest.mark.services
ALERT_FIELDS = "id kind severity status message shiftId commissionerId history { status changedBy note }"


async def _secret(url: str, role: str, scope: str | None) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        created = await create_token(conn, role, scope=scope, name="alert-tests")
        await conn.commit()
        return created.secret


async def _raise_late_start(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await sweep_absences(conn, START + timedelta(minutes=20), SweepConfig())


def test_query_acknowledge_resolve_and_subscribe(fresh_database_url: str, redis_url: str) -> None:
    url = fresh_database_url
    with psycopg.connect(url, autocommit=True) as db:
        add_package(db)
        add_shift(db, "SH-1")
    asyncio.run(_raise_late_start(url))
    settings = Settings(database_url=url, redis_url=redis_url)
    safeguarding = asyncio.run(_secret(url, "safeguarding", "LA-1"))
    provider = asyncio.run(_secret(url, "provider", "PRV-OTHER"))
    clock = FixedClock(START + timedelta(hours=1))
    with TestClient(create_app(settings, clock=clock)) as client:

        def gql(token: str, query: str, **variables: Any) -> Any:
            r = client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
            return r.json()

        listed = gql(
            safeguarding,
            f'{{ alerts(filter: {{kinds: ["LATE_START"]}}) {{ edges {{ node {{ {ALERT_FIELDS} }} }} }} }}',
        )
        (edge,) = listed["data"]["alerts"]["edges"]
        alert = edge["node"]
        assert (alert["kind"], alert["status"], alert["shiftId"]) == ("LATE_START", "open", "SH-1")
        assert gql(provider, "{ alerts { edges { node { id } } } }")["data"]["alerts"]["edges"] == []

        ack = gql(
            safeguarding,
            f'mutation($id: ID!) {{ acknowledgeAlert(id: $id, note: "on it") {{ {ALERT_FIELDS} }} }}',
            id=alert["id"],
        )["data"]["acknowledgeAlert"]
        assert ack["status"] == "acknowledged"
        refused = gql(
            provider, 'mutation($id: ID!) { resolveAlert(id: $id, note: "x") { id } }', id=alert["id"]
        )
        assert refused["data"] is None and refused["errors"]
        done = gql(
            safeguarding,
            f'mutation($id: ID!) {{ resolveAlert(id: $id, note: "carer arrived") {{ {ALERT_FIELDS} }} }}',
            id=alert["id"],
        )["data"]["resolveAlert"]
        assert done["status"] == "resolved"
        assert [(h["status"], h["note"]) for h in done["history"]][1:] == [
            ("acknowledged", "on it"),
            ("resolved", "carer arrived"),
        ]

        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {safeguarding}"}})
            assert ws.receive_json()["type"] == "connection_ack"
            ws.send_json(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": 'subscription { alerts(filter: {kinds: ["MISSED_VISIT"]})'
                        " { kind status shiftId } }"
                    },
                }
            )
            channels = Channels.for_settings(settings)
            publisher = redis.Redis.from_url(redis_url)
            deadline = time.monotonic() + 5
            while publisher.pubsub_numsub(channels.alerts)[0][1] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            wire = {
                "id": 99,
                "kind": "MISSED_VISIT",
                "severity": "critical",
                "status": "open",
                "subject_type": "shift",
                "subject_id": "SH-1",
                "raised_at": START.isoformat(),
                "resolved_at": None,
                "updated_at": START.isoformat(),
                "message": "missed",
                "package_id": "PKG-1",
                "shift_id": "SH-1",
                "carer_id": None,
                "provider_id": "PRV-1",
                "commissioner_id": "LA-1",
                "caused_by_late_data": False,
                "details": {},
                "history": [],
            }
            publisher.publish(channels.alerts, json.dumps({**wire, "kind": "LATE_START"}))  # filtered out
            publisher.publish(channels.alerts, json.dumps(wire))
            message = ws.receive_json()
            assert message["type"] == "next", message
            assert message["payload"]["data"]["alerts"] == {
                "kind": "MISSED_VISIT",
                "status": "open",
                "shiftId": "SH-1",
            }
            publisher.close()
