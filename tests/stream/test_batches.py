"""BatchProcessor without faust: data the database refuses is rejected, not retried forever."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest

from carewatch.clock import FixedClock
from carewatch.pipeline.processor import BatchProcessor
from carewatch.store.db import make_pool
from support import contract_lines

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 6, 12, 0, tzinfo=UTC)


async def test_an_unstorable_event_is_rejected_and_the_rest_applied(fresh_database_url: str) -> None:
    dead: list[tuple[bytes | None, dict[str, object]]] = []

    async def sink(key: bytes | None, value: bytes) -> None:
        dead.append((key, json.loads(value)))

    valid = contract_lines("valid.jsonl")
    carer = json.loads(valid[2]) | {"event_id": "huge-pay", "carer_id": "CR-X", "pay_pence_per_hour": 10**12}
    messages = [(None, line.encode()) for line in valid[:2]]
    messages += [(b"CR-X", json.dumps(carer).encode()), (None, valid[3].encode())]
    processor = BatchProcessor(make_pool(fresh_database_url, max_size=2), sink, FixedClock(NOW))
    try:
        outcome = await processor.handle(messages)
        again = await processor.handle(messages)
    finally:
        await processor.close()
    assert outcome.applied == 3 and outcome.rejected == 1
    assert again.applied == 0 and again.duplicates == 3
    assert [(k, d["event_id"], d["stage"]) for k, d in dead][:1] == [(b"CR-X", "huge-pay", "semantic")]
    assert str(dead[0][1]["reason"]).startswith("cannot be stored:")
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM carers").fetchone() == (1,)
        row = conn.execute("SELECT stage FROM rejected_events WHERE event_id = 'huge-pay'").fetchall()
        assert row == [("semantic",)]
