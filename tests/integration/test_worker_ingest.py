"""apply_batch, release_held and expire_held against a real PostgreSQL (no Kafka)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from carewatch.pipeline.batch import apply_batch, release_held
from carewatch.schema.events import CareEvent, Rejection, validate_event
from carewatch.store.held import expire_held
from carewatch.store.rejects import record_rejections
from support import contract_lines

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 6, 12, 0, tzinfo=UTC)
BANK_HOLIDAY_RATE = 4800  # 2026-04-06 is Easter Monday


def _events(lines: list[str] | None = None) -> list[CareEvent]:
    out = []
    for line in lines if lines is not None else contract_lines("valid.jsonl"):
        result = validate_event(line)
        assert isinstance(result, CareEvent)
        out.append(result)
    return out


def _rejections() -> list[Rejection]:
    out = []
    for line in contract_lines("invalid.jsonl"):
        result = validate_event(line)
        assert isinstance(result, Rejection)
        out.append(result)
    return out


async def _apply(url: str, events: list[CareEvent], rejections: list[Rejection] = (),  # type: ignore[assignment]
                 now: datetime = NOW) -> Any:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        outcome = await apply_batch(conn, events, now)
        async with conn.transaction():
            await record_rejections(conn, rejections, "kafka", now)
        return outcome


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    tables = {
        "events": "SELECT event_id, type FROM events ORDER BY 1",
        "shifts": "SELECT shift_id, starts_at, ends_at, cancelled_by, scheduled_at FROM shifts ORDER BY 1",
        "clock_events": "SELECT event_id, at FROM clock_events ORDER BY 1",
        "shift_ledger": "SELECT shift_id, planned_seconds, scheduled_seconds, actual_seconds,"
                        " payable_seconds, overrun_seconds, unverified_seconds, bank_holiday_seconds,"
                        " rate_seconds, spend_pence, first_clock_in_at, distinct_carers, attendance"
                        " FROM shift_ledger ORDER BY 1",
        "packages": "SELECT package_id, planned_minutes_per_week FROM packages ORDER BY 1",
        "held_events": "SELECT event_id FROM held_events ORDER BY 1",
        "rejected_events": "SELECT event_id, stage, reason FROM rejected_events ORDER BY 1, 2",
        "invoices": "SELECT invoice_id, total_pence FROM invoices",
        "activities": "SELECT event_id, minutes FROM activities",
    }
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in tables.items()}


async def test_contract_stream_gives_the_expected_ledger(fresh_database_url: str) -> None:
    outcome = await _apply(fresh_database_url, _events(), _rejections())
    assert outcome.applied == 14 and outcome.held == 0 and outcome.rejected == 0  # none refused for scope
    assert set(outcome.affected_shift_ids) == {"SH-1", "SH-2"}
    with psycopg.connect(fresh_database_url) as conn:
        row = conn.execute(
            "SELECT planned_seconds, scheduled_seconds, actual_seconds, payable_seconds, rate_seconds,"
            " spend_pence, bank_holiday_seconds, distinct_carers, attendance FROM shift_ledger"
            " WHERE shift_id = 'SH-1'").fetchone()
        assert row is not None
        planned, scheduled, actual, payable, rate_seconds, spend, bank_holiday, carers, attendance = row
        assert (planned, scheduled, actual, payable) == (3600, 3600, 3395, 3395)
        assert rate_seconds == 3395 * BANK_HOLIDAY_RATE
        assert spend == Decimal("4526.666667")
        assert bank_holiday == 3395 and carers == 2
        assert {a["carerId"] for a in attendance} == {"CR-001", "CR-002"}
        first = next(a for a in attendance if a["carerId"] == "CR-001")
        assert first == {"carerId": "CR-001", "clockInAt": "2026-04-06T07:02:10Z",
                         "clockOutAt": "2026-04-06T07:31:40Z", "method": "nfc", "verified": True}
        sh2 = conn.execute("SELECT s.cancelled_by, l.scheduled_seconds, l.actual_seconds FROM shifts s"
                           " JOIN shift_ledger l USING (shift_id) WHERE shift_id = 'SH-2'").fetchone()
        assert sh2 == ("person", 0, 0)
        minutes = conn.execute("SELECT planned_minutes_per_week FROM packages").fetchone()
        assert minutes is not None and minutes[0] == 840 + 210 * 2
        rows = conn.execute("SELECT coalesce(event_id, '<none>'), stage FROM rejected_events").fetchall()
        stages = dict(rows)
        assert len(stages) == 8 and stages["bad-4"] == "semantic" and stages["<none>"] == "decode"


async def test_replaying_everything_changes_nothing(fresh_database_url: str) -> None:
    await _apply(fresh_database_url, _events(), _rejections())
    before = _snapshot(fresh_database_url)
    outcome = await _apply(fresh_database_url, _events() + _events(), _rejections(), NOW + timedelta(hours=1))
    assert outcome.applied == 0 and outcome.duplicates == 28 and outcome.affected_shift_ids == ()
    assert _snapshot(fresh_database_url) == before


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_order_and_batching_do_not_change_the_result(database_url: str, fresh_database_url: str,
                                                          seed: int) -> None:
    await _apply(fresh_database_url, _events())
    expected = _snapshot(fresh_database_url)

    other = _fresh(database_url, seed)
    rng = random.Random(seed)
    events = _events()
    rng.shuffle(events)
    events += rng.sample(events, 4)  # some duplicates, too
    while events:
        size = rng.randint(1, 5)
        await _apply(other, events[:size])
        events = events[size:]
    got = _snapshot(other)
    assert got["held_events"] == []
    for name in ("shifts", "clock_events", "shift_ledger", "packages", "invoices", "activities"):
        assert got[name] == expected[name], name


def _fresh(database_url: str, seed: int) -> str:
    from support import make_database

    return make_database()


async def test_clock_outs_first_and_shift_last(fresh_database_url: str) -> None:
    events = _events()
    by_id = {e.event_id: e for e in events}
    setup = [by_id[i] for i in ("ex-1", "ex-2", "ex-3", "ex-4")]
    await _apply(fresh_database_url, setup)
    held = await _apply(fresh_database_url, [by_id["ex-9"], by_id["ex-10"], by_id["ex-7"], by_id["ex-8"]])
    assert held.held == 4 and held.applied == 0
    shift = await _apply(fresh_database_url, [by_id["ex-6"]])
    assert shift.held == 1 and shift.applied == 0  # the shift waits for its package
    package = await _apply(fresh_database_url, [by_id["ex-5"]])
    assert package.applied == 6 and package.released == 5 and "SH-1" in package.affected_shift_ids
    with psycopg.connect(fresh_database_url) as conn:
        row = conn.execute("SELECT actual_seconds, payable_seconds FROM shift_ledger WHERE shift_id = 'SH-1'")
        assert row.fetchone() == (3395, 3395)
        assert conn.execute("SELECT count(*) FROM held_events").fetchone() == (0,)


async def test_held_event_is_released_later_by_release_held(fresh_database_url: str) -> None:
    by_id = {e.event_id: e for e in _events()}
    await _apply(fresh_database_url, [by_id["ex-7"]])
    # The shift arrives through another writer (as if from another partition) without releasing;
    # it names the clock-in's package and provider, as ownership requires.
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute("INSERT INTO shifts (shift_id, package_id, provider_id, starts_at, ends_at,"
                     " service_type, carers_required, scheduled_at) VALUES ('SH-1', 'PKG-100', 'PRV-ACORN',"
                     " '2026-04-06T07:00:00Z', '2026-04-06T07:30:00Z', 'personal_care', 2, now())")
    async with await psycopg.AsyncConnection.connect(fresh_database_url) as conn:
        outcome = await release_held(conn, NOW)
    assert outcome.released == 1 and outcome.applied == 1 and outcome.affected_shift_ids == ("SH-1",)
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM clock_events").fetchone() == (1,)
        assert conn.execute("SELECT open_attendances FROM shift_ledger").fetchone() == (1,)


async def test_held_event_expires_into_rejected_events(fresh_database_url: str) -> None:
    orphan = json.loads(contract_lines("valid.jsonl")[6]) | {"event_id": "orphan-1", "shift_id": "SH-9"}
    event = validate_event(json.dumps(orphan))
    assert isinstance(event, CareEvent)
    assert (await _apply(fresh_database_url, [event])).held == 1
    async with await psycopg.AsyncConnection.connect(fresh_database_url) as conn:
        assert await expire_held(conn, NOW + timedelta(seconds=3599), 3600) == []
        expired = await expire_held(conn, NOW + timedelta(seconds=3601), 3600)
    assert [(r.event_id, r.stage, r.reason) for r in expired] == [
        ("orphan-1", "unresolved", "shift SH-9 was never seen within 3600 s")]
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM held_events").fetchone() == (0,)
        row = conn.execute("SELECT stage, reason, event_type FROM rejected_events"
                           " WHERE event_id = 'orphan-1'")
        assert row.fetchone() == ("unresolved", "shift SH-9 was never seen within 3600 s", "visit.clock_in")


async def test_rate_change_recomputes_the_package_shifts(fresh_database_url: str) -> None:
    events = _events()
    await _apply(fresh_database_url, events)
    package = json.loads(contract_lines("valid.jsonl")[4])
    package |= {"event_id": "ex-5b", "occurred_at": "2026-03-03T10:00:00Z",
                "rates": [{"service_type": "personal_care", "band": "day", "pence_per_hour": 3600}]}
    new = validate_event(json.dumps(package))
    assert isinstance(new, CareEvent)
    outcome = await _apply(fresh_database_url, [new])
    assert set(outcome.affected_shift_ids) == {"SH-1", "SH-2"}
    with psycopg.connect(fresh_database_url) as conn:
        # No bank-holiday rate any more: falls back to the day rate.
        row = conn.execute("SELECT rate_seconds FROM shift_ledger WHERE shift_id = 'SH-1'").fetchone()
        assert row == (3395 * 3600,)
    # An older version of the package arriving late does not win.
    stale = validate_event(json.dumps(package | {"event_id": "ex-5a", "occurred_at": "2026-03-01T10:00:00Z",
                                                 "budget_pence": 1}))
    assert isinstance(stale, CareEvent)
    await _apply(fresh_database_url, [stale])
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT budget_pence FROM packages").fetchone() == (3500000,)
