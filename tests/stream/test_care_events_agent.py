"""The care-events agent under faust's test_context: real PostgreSQL, in-memory channel."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from carewatch.clock import FixedClock
from carewatch.pipeline.processor import BatchProcessor
from carewatch.schema.events import message_key
from carewatch.settings import Settings
from carewatch.store.db import make_pool
from carewatch.stream.agents import register_agents
from carewatch.stream.app import create_app, make_topics
from support import contract_lines

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 6, 12, 0, tzinfo=UTC)


def _key(line: str) -> bytes | None:
    try:
        return message_key(json.loads(line)).encode() or None
    except ValueError:
        return None


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


async def test_agent_applies_valid_events_and_dead_letters_invalid_ones(fresh_database_url: str) -> None:
    settings = Settings(database_url=fresh_database_url, consumer_group=f"test-{uuid.uuid4().hex[:8]}",
                        batch_size=5, batch_within_seconds=0.05)
    app = create_app(settings)
    topics = make_topics(app, settings)
    dead: list[tuple[bytes | None, dict[str, object]]] = []

    async def sink(key: bytes | None, value: bytes) -> None:
        dead.append((key, json.loads(value)))

    processor = BatchProcessor(make_pool(fresh_database_url, max_size=2), sink, FixedClock(NOW))
    agent = register_agents(app, settings, topics, processor)
    valid, invalid = contract_lines("valid.jsonl"), contract_lines("invalid.jsonl")
    # Bad lines in the middle of the stream: the agent must carry on past them.
    lines = valid[:5] + invalid + valid[5:]
    try:
        async with agent.test_context() as agent_:
            for line in lines:
                await agent_.put(line.encode(), key=_key(line))
            await _until(lambda: _count(fresh_database_url, "SELECT count(*) FROM shift_ledger") == 2
                         and len(dead) == len(invalid))
            await _until(lambda: _count(fresh_database_url, "SELECT count(*) FROM events") == len(valid))
    finally:
        await processor.close()

    assert _count(fresh_database_url, "SELECT count(*) FROM rejected_events") == len(invalid)
    assert _count(fresh_database_url,
                  "SELECT actual_seconds FROM shift_ledger WHERE shift_id = 'SH-1'") == 3395
    records = {d["event_id"]: (key, d) for key, d in dead}
    key, bad1 = records["bad-1"]
    assert key == b"PKG-100" and bad1["stage"] == "schema" and bad1["source"] == "kafka"
    assert str(bad1["reason"]).startswith("occurred_at:") and bad1["raw"] == invalid[0]
    assert bad1["rejected_at"] == "2026-04-06T12:00:00Z"
    key, decode = records[None]
    assert key is None and decode["stage"] == "decode"


async def test_offsets_are_released_only_after_the_batch_is_committed(fresh_database_url: str) -> None:
    settings = Settings(database_url=fresh_database_url, consumer_group=f"test-{uuid.uuid4().hex[:8]}",
                        batch_size=3, batch_within_seconds=0.05)
    app = create_app(settings)
    topics = make_topics(app, settings)

    async def sink(key: bytes | None, value: bytes) -> None:
        return None

    processor = BatchProcessor(make_pool(fresh_database_url, max_size=2), sink, FixedClock(NOW))
    gate, entered = asyncio.Event(), asyncio.Event()
    handle = processor.handle

    async def gated(messages: Any, partitions: Any = ()) -> Any:
        entered.set()
        await gate.wait()
        return await handle(messages, partitions)

    processor.handle = gated  # type: ignore[method-assign]
    agent = register_agents(app, settings, topics, processor)
    lines = contract_lines("valid.jsonl")[:3]
    try:
        async with agent.test_context() as agent_:
            channel = agent_.stream().channel
            messages = []
            for n, line in enumerate(lines):
                # As faust's conductor does for a message from Kafka: one reference for the stream.
                message = agent_.to_message(_key(line), line.encode(), offset=n)
                message.incref()
                messages.append(message)
                await channel.put(await channel.decode(message))
            await asyncio.wait_for(entered.wait(), 10)
            await asyncio.sleep(0.2)  # take_events has returned the batch and acked it on its side
            assert not any(m.acked for m in messages)
            assert _count(fresh_database_url, "SELECT count(*) FROM events") == 0
            gate.set()
            await _until(lambda: all(m.acked for m in messages))
            assert _count(fresh_database_url, "SELECT count(*) FROM events") == 3
    finally:
        await processor.close()
