"""POST /events: item by item, valid events on the topic, rejections stored and counted."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer
from starlette.testclient import TestClient

from carewatch.clock import FixedClock
from carewatch.settings import Settings
from carewatch.web import create_app

pytestmark = pytest.mark.services

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "contracts"


def example(name: str, index: int) -> dict[str, Any]:
    lines = [ln for ln in (EXAMPLES / name).read_text(encoding="utf-8").splitlines() if ln.strip()]
    parsed: dict[str, Any] = json.loads(lines[index])
    return parsed


async def consume(settings: Settings, count: int, timeout: float = 30.0) -> list[tuple[str, dict[str, Any]]]:
    consumer = AIOKafkaConsumer(settings.events_topic, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[str, dict[str, Any]]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [(r.key.decode(), json.loads(r.value)) for r in records]
    finally:
        await consumer.stop()
    return found


def test_mixed_batch_is_answered_item_by_item(client: TestClient, api_settings: Settings) -> None:
    valid = [example("valid.jsonl", i) for i in range(4)]  # commissioner, provider, two carers
    bad_instant = example("invalid.jsonl", 0)  # occurred_at without an offset
    bad_type = example("invalid.jsonl", 1)  # visit.teleport
    body = [valid[0], bad_instant, valid[1], bad_type, valid[2], 42, valid[3]]

    response = client.post("/events", json=body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (4, 3)
    assert [(r["index"], r["status"]) for r in answer["results"]] == [
        (0, "accepted"), (1, "rejected"), (2, "accepted"), (3, "rejected"), (4, "accepted"),
        (5, "rejected"), (6, "accepted")]
    assert answer["results"][0]["event_id"] == "ex-1" and answer["results"][0]["reason"] is None
    assert answer["results"][1]["event_id"] == "bad-1" and "occurred_at" in answer["results"][1]["reason"]
    assert answer["results"][3]["reason"]

    # The valid ones are on the topic, keyed as the contract says.
    produced = asyncio.run(consume(api_settings, 4))
    assert sorted((key, event["event_id"]) for key, event in produced) == [
        ("CR-001", "ex-3"), ("CR-002", "ex-4"), ("LA-WIRRAL", "ex-1"), ("PRV-ACORN", "ex-2")]

    # The rejected ones are kept with their reason, and counted.
    with psycopg.connect(api_settings.database_url) as conn:
        rows = conn.execute("SELECT event_id, stage, source FROM rejected_events ORDER BY id").fetchall()
    assert [(r[0], r[2]) for r in rows] == [("bad-1", "http"), ("bad-2", "http"), (None, "http")]
    metrics = client.get("/metrics").text
    assert 'carewatch_events_rejected_total{source="http",stage="schema"}' in metrics
    assert 'carewatch_rejected_events_stored{source="http",stage="schema"} 2.0' in metrics
    assert 'carewatch_rejected_events_stored{source="http",stage="decode"} 1.0' in metrics  # the 42
    assert "carewatch_http_events_produced_total" in metrics


def test_one_event_alone_is_accepted(client: TestClient) -> None:
    response = client.post("/events", json=example("valid.jsonl", 1))
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"index": 0, "event_id": "ex-2", "status": "accepted", "reason": None}]


def test_body_that_is_not_json_is_400_with_the_reason(client: TestClient) -> None:
    response = client.post("/events", content=b'{"event_id": "x", oops',
                           headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("body is not JSON")


def test_too_many_items_is_413(client: TestClient) -> None:
    response = client.post("/events", json=[{}] * 5001)
    assert response.status_code == 413
    assert "at most 5000" in response.json()["error"]


def test_kafka_unreachable_is_503_and_says_so(api_settings: Settings, now: datetime, bearer: Any) -> None:
    away = Settings(database_url=api_settings.database_url, redis_url=api_settings.redis_url,
                    kafka_url="kafka://127.0.0.1:1", events_topic=api_settings.events_topic)
    admin = bearer(api_settings.database_url, "admin", None)
    with TestClient(create_app(away, clock=FixedClock(now)), headers=admin) as c:
        response = c.post("/events", json=[example("valid.jsonl", 0)])
        assert response.status_code == 503
        assert "Kafka did not accept" in response.json()["error"]
        assert c.post("/graphql", json={"query": '{ shift(id: "SH-1") { id } }'}).json() == {
            "data": {"shift": {"id": "SH-1"}}}  # reads go on without Kafka
