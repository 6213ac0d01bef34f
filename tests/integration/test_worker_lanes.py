"""Lanes (stream/lanes.py, stream/agents.handle_lanes): a batch split by partition and applied in two
transactions at once gives the figures of the same batch applied in one."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from carewatch.bench import BENCH_START, bench_feed, run_figures
from carewatch.clock import FixedClock
from carewatch.pipeline.processor import BatchProcessor
from carewatch.store.db import make_pool
from carewatch.store.entities import write_entities
from carewatch.stream.agents import handle_lanes
from carewatch.stream.lanes import registers_references, split_by_partition
from support import care_event, make_database

pytestmark = pytest.mark.services

NOW = BENCH_START + timedelta(days=1, hours=2)


@dataclass
class _TP:
    topic: str
    partition: int


@dataclass
class _Message:
    tp: _TP


@dataclass
class _Event:
    """What handle_lanes reads of a faust event: its key, value and partition."""

    key: bytes | None
    value: bytes
    message: _Message


def _events(feed: list[tuple[bytes, bytes]]) -> list[_Event]:
    return [_Event(k, v, _Message(_TP("care-events", zlib.crc32(k or b"") % 4))) for k, v in feed]


async def _apply(url: str, events: list[_Event], lanes: int, batch: int) -> None:
    async def no_dead_letters(key: bytes | None, value: bytes) -> None:
        raise AssertionError(f"nothing in the bench feed is rejected: {value[:200]!r}")

    processor = BatchProcessor(make_pool(url, max_size=3), no_dead_letters, FixedClock(NOW))
    processors = [processor, *(processor.sibling() for _ in range(lanes - 1))]
    try:
        for start in range(0, len(events), batch):
            outcome = await handle_lanes(processors, events[start:start + batch], min_events=50)
            assert outcome.rejected == 0
        # A reference written by the other lane releases its held events in the held-events sweep.
        await processor.sweep_held()
    finally:
        await processor.close()


async def test_two_lanes_give_the_figures_of_one() -> None:
    events = _events(bench_feed(3000))
    assert len({e.message.tp.partition for e in events}) == 4
    # The first batch registers the commissioners and providers (kept whole); the others are split.
    assert any(registers_references(e.value) for e in events[:1000])
    later = [events[start:start + 1000] for start in (1000, 2000)]
    assert all(not any(registers_references(e.value) for e in part) for part in later)
    assert all(len(split_by_partition(part, 2, lambda e: e.message.tp.partition, 50)) == 2 for part in later)
    one, two = make_database(), make_database()
    await _apply(one, events, lanes=1, batch=1000)
    await _apply(two, events, lanes=2, batch=1000)
    kept_one, _ = run_figures(one)
    kept_two, _ = run_figures(two)
    assert kept_two == kept_one
    assert kept_one.endswith("; 0 rejected, 0 held")
    with psycopg.connect(one) as a, psycopg.connect(two) as b:
        for query in ("SELECT count(*) FROM events", "SELECT count(*), sum(rate_seconds) FROM package_day_ledger",
                      "SELECT count(*), sum(direct_seconds), sum(non_direct_minutes) FROM carer_week_time"):
            assert a.execute(query).fetchone() == b.execute(query).fetchone(), query


async def test_held_events_are_released_in_slices_oldest_first() -> None:
    """Many events held for one reference: the sweep applies them a slice per transaction."""
    url = make_database()
    feed = [care_event("c", "commissioner.registered", "2026-04-01T08:00:00Z", commissioner_id="LA", name="LA"),
            care_event("p", "provider.registered", "2026-04-01T08:00:00Z", provider_id="PRV", name="PRV")]
    shifts = [care_event(f"s{n}", "shift.scheduled", f"2026-04-10T08:0{n}:00Z", shift_id=f"SH-{n}", package_id="PKG",
                         provider_id="PRV", starts_at="2026-04-14T08:00:00Z", ends_at="2026-04-14T09:00:00Z",
                         service_type="personal_care") for n in range(5)]
    package = care_event("pkg", "package.approved", "2026-04-01T08:00:00Z", package_id="PKG", commissioner_id="LA",
                         provider_id="PRV", person={"person_id": "P", "nhs_number": "9434765919"},
                         period_start="2026-04-01", period_end="2026-06-30", budget_pence=10_000_000,
                         plan=[{"service_type": "personal_care", "minutes_per_week": 420, "carers": 1}],
                         rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": 1800}])

    async def no_dead_letters(key: bytes | None, value: bytes) -> None:
        raise AssertionError(value)

    processor = BatchProcessor(make_pool(url, max_size=2), no_dead_letters, FixedClock(NOW), release_slice=2)
    slices: list[int] = []
    release = processor._release

    async def counted(event_ids: list[str]) -> Any:
        slices.append(len(event_ids))
        return await release(event_ids)

    processor._release = counted  # type: ignore[method-assign]
    try:
        held = await processor.handle([(None, e.raw.encode()) for e in [*feed, *shifts]])
        assert held.held == 5
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await write_entities(conn, [package])  # the package stored, its waiting shifts not taken
            await conn.commit()
        released, expired = await processor.sweep_held()
    finally:
        await processor.close()
    assert slices == [2, 2, 1] and released.applied == 5 and not expired
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM shifts").fetchone() == (5,)
        assert conn.execute("SELECT count(*) FROM held_events").fetchone() == (0,)


async def test_messages_validated_ahead_are_taken_as_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import carewatch.pipeline.processor as processor_module
    from carewatch.stream.agents import validate_queued

    url = make_database()
    events = _events(bench_feed(300))

    async def no_dead_letters(key: bytes | None, value: bytes) -> None:
        raise AssertionError(f"nothing in the bench feed is rejected: {value[:200]!r}")

    processor = BatchProcessor(make_pool(url, max_size=2), no_dead_letters, FixedClock(NOW))
    queue: asyncio.Queue[_Event] = asyncio.Queue()
    for event in events[150:]:
        queue.put_nowait(event)
    await validate_queued(queue, processor, limit=100, chunk=16)
    assert queue.qsize() == 150  # read, not taken
    calls: list[bytes] = []
    real = processor_module.validate_event

    def counted(raw: bytes | str) -> Any:
        calls.append(raw if isinstance(raw, bytes) else raw.encode())
        return real(raw)

    monkeypatch.setattr(processor_module, "validate_event", counted)
    try:
        await handle_lanes([processor], events[:150], min_events=50)
        assert len(calls) == 150  # nothing of this batch was validated ahead
        calls.clear()
        outcome = await handle_lanes([processor.sibling()], events[150:], min_events=50)
        assert calls == [e.value for e in events[250:]]  # only those beyond the 100 validated ahead
        assert outcome.rejected == 0 and outcome.applied + outcome.held == 150
    finally:
        await processor.close()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        stored = await (await conn.execute("SELECT count(*) FROM events")).fetchone()
        held = await (await conn.execute("SELECT count(*) FROM held_events")).fetchone()
    assert stored is not None and held is not None and stored[0] + held[0] == 300
