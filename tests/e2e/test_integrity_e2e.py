"""Issue "Nothing lost, nothing wrong" end to end: real worker and API processes on tansu, PostgreSQL
and Redis. Hostile-but-valid events go in through Kafka and through POST /events; every good event
around them is applied, each bad one is rejected with its reason, and providers write only their own care."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from carewatch.services import Broker
from integrity_feed import clock, event, lines, setup, shift
from procs import api_server, create_token, dead_letters, graphql, produce, scalar, wait_for, worker

pytestmark = pytest.mark.services

SPEND = """query { package(id: "PKG-100") { budget { spentPence } }
                  shift(id: "SH-A") { providerId packageId payableMinutes } }"""


async def test_hostile_events_on_kafka_cost_no_other_event(broker: Broker, fresh_database_url: str) -> None:
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    good = [shift("a-s", "SH-A", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
            clock("a-in", "in", "SH-A", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T09:00:00Z"),
            clock("a-out", "out", "SH-A", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T10:00:00Z")]
    bad = [shift("far", "SH-FAR", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z",
                 at="9999-12-31T23:59:00-01:00"),
           clock("b-in", "in", "SH-A", "PKG-100", "PRV-BIRCH", "CR-001", "2026-04-06T09:00:00Z"),
           clock("b-out", "out", "SH-A", "PKG-100", "PRV-BIRCH", "CR-001", "2026-04-06T16:40:00Z")]
    # The bad ones in the middle of the good, in one produce: one batch for the worker.
    await produce(broker, topic, lines([*setup(), good[0], bad[0], good[1], bad[1], bad[2], good[2]]))
    with worker(broker, fresh_database_url, topic) as process:
        wait_for(fresh_database_url, lambda c: scalar(c, "SELECT count(*) FROM rejected_events") == 3
                 and scalar(c, "SELECT count(*) FROM events") == len(setup()) + 3, process)
        dead = await dead_letters(broker, f"{topic}.dead-letter", want=3)
    assert sorted((d["event_id"], d["stage"]) for d in dead) == [
        ("b-in", "scope"), ("b-out", "scope"), ("far", "semantic")]
    with psycopg.connect(fresh_database_url) as conn:
        # Only Acorn's own hour is paid: 3600 s at the day rate of PKG-100 (2026-04-06 is a bank holiday).
        assert conn.execute("SELECT payable_seconds, spend_pence FROM shift_ledger").fetchall() == [(3600, 4800)]


async def test_post_events_answers_bad_instants_and_other_providers_care_item_by_item(
        broker: Broker, fresh_database_url: str, redis_url: str) -> None:
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    own = shift("a-s", "SH-A", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z")
    await produce(broker, topic, lines([*setup(), own]))
    with worker(broker, fresh_database_url, topic) as process, \
            api_server(broker, fresh_database_url, redis_url, topic) as base:
        wait_for(fresh_database_url, lambda c: scalar(c, "SELECT count(*) FROM shifts") == 1, process)
        birch = create_token(fresh_database_url, "ingest", "PRV-BIRCH")
        admin = create_token(fresh_database_url, "admin")
        items: list[dict[str, Any]] = [
            event("far", "activity.logged", "9999-12-31T23:59:00-01:00", carer_id="CR-9", provider_id="PRV-BIRCH",
                  kind="travel", minutes=5),
            shift("b-s", "SH-B", "PKG-100", "PRV-BIRCH", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
            clock("b-in", "in", "SH-A", "PKG-100", "PRV-BIRCH", "CR-001", "2026-04-06T09:00:00Z"),
            shift("b-move", "SH-A", "PKG-200", "PRV-BIRCH", "2026-04-06T11:00:00Z", "2026-04-06T12:00:00Z",
                  at="2026-04-06T06:00:00Z", kind="shift.updated"),
            shift("b-own", "SH-B2", "PKG-200", "PRV-BIRCH", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
        ]
        response = httpx.post(f"{base}/events", json=items, headers={"Authorization": f"Bearer {birch}"}, timeout=20)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [(r["event_id"], r["status"], r.get("stage")) for r in results] == [
            ("far", "rejected", "semantic"), ("b-s", "rejected", "scope"), ("b-in", "rejected", "scope"),
            ("b-move", "rejected", "scope"), ("b-own", "accepted", None)]
        assert "is outside 2000-01-01" in results[0]["reason"]
        wait_for(fresh_database_url, lambda c: scalar(c, "SELECT count(*) FROM shifts") == 2, process)
        data = graphql(base, admin, SPEND)
    assert data["shift"] == {"providerId": "PRV-ACORN", "packageId": "PKG-100", "payableMinutes": 0.0}
    assert data["package"]["budget"]["spentPence"] == 0
    with psycopg.connect(fresh_database_url) as conn:
        rejected = conn.execute("SELECT event_id, stage, source FROM rejected_events ORDER BY 1").fetchall()
    assert rejected == [("b-in", "scope", "http"), ("b-move", "scope", "http"), ("b-s", "scope", "http"),
                        ("far", "semantic", "http")]
