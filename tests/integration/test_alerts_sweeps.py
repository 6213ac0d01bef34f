"""The deadline sweeps on real PostgreSQL, with a fixed processing clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from tests.integration.alert_fixtures import START, add_package, add_shift, alerts, clock

from carewatch.alerts import repository as store
from carewatch.alerts.sweeps import SweepConfig, sweep_absences, sweep_slow
from carewatch.clock import FixedClock

pytestmark = pytest.mark.services
CONFIG = SweepConfig()
SEC = 1


@pytest.fixture()
def db(fresh_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        add_package(conn)
        yield conn


@pytest.fixture()
async def aconn(fresh_database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(fresh_database_url, autocommit=True) as conn:
        yield conn


async def sweep(conn: psycopg.AsyncConnection[Any], clk: FixedClock) -> list[store.AlertRecord]:
    return await sweep_absences(conn, clk.now(), CONFIG)


async def test_late_start_at_exactly_15_minutes_and_missed_at_60_then_a_late_clock_in_resolves_both(
    db: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    add_shift(db, "SH-1")
    clk = FixedClock(START + timedelta(minutes=15) - timedelta(seconds=1))
    assert await sweep(aconn, clk) == []
    clk.advance(SEC)
    raised = await sweep(aconn, clk)
    assert [(a.kind, a.subject_id, a.status, a.raised_at) for a in raised] == [
        ("LATE_START", "SH-1", "open", START + timedelta(minutes=15))
    ]
    assert raised[0].package_id == "PKG-1" and raised[0].commissioner_id == "LA-1"
    assert await sweep(aconn, clk) == []  # raising again changes nothing
    clk.current = START + timedelta(minutes=60) - timedelta(seconds=1)
    assert await sweep(aconn, clk) == []
    clk.advance(SEC)
    assert [a.kind for a in await sweep(aconn, clk)] == ["MISSED_VISIT"]
    assert alerts(db) == [("LATE_START", "SH-1", "open", False), ("MISSED_VISIT", "SH-1", "open", False)]

    # The carer was there at 07:10; the phone's clock-in only arrives at 09:00.
    clock(db, "e1", "SH-1", "CR-1", "in", START + timedelta(minutes=10))
    clock(db, "e2", "SH-1", "CR-1", "out", START + timedelta(minutes=40))
    clk.current = START + timedelta(hours=2)
    resolved = await sweep(aconn, clk)
    assert {(a.kind, a.status, a.caused_by_late_data) for a in resolved} == {
        ("LATE_START", "auto_resolved", True),
        ("MISSED_VISIT", "auto_resolved", True),
    }
    late = next(a for a in resolved if a.kind == "LATE_START")
    assert [h.status for h in late.history] == ["open", "auto_resolved"]
    assert "late data" in (late.history[-1].note or "")
    assert late.resolved_at == clk.now()
    assert await sweep(aconn, clk) == []  # a resolved absence is not raised again


async def test_clock_in_after_the_late_deadline_is_not_late_data_for_late_start(
    db: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    add_shift(db, "SH-1")
    clk = FixedClock(START + timedelta(minutes=61))
    assert {a.kind for a in await sweep(aconn, clk)} == {"LATE_START", "MISSED_VISIT"}
    clock(db, "e1", "SH-1", "CR-1", "in", START + timedelta(minutes=30))
    clock(db, "e2", "SH-1", "CR-1", "out", START + timedelta(minutes=55))
    clk.advance(60)
    await sweep(aconn, clk)
    assert alerts(db) == [
        ("LATE_START", "SH-1", "auto_resolved", False),
        ("MISSED_VISIT", "SH-1", "auto_resolved", True),
    ]


async def test_package_and_commissioner_overrides_move_the_deadlines(
    db: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    add_package(db, "PKG-5", thresholds={"late_start_minutes": 5})
    add_package(db, "PKG-C", commissioner_id="LA-2")
    db.execute(
        "INSERT INTO commissioner_thresholds (commissioner_id, thresholds) VALUES ('LA-2', %s)",
        (Jsonb({"late_start_minutes": 10, "missed_visit_minutes": 20}),),
    )
    add_shift(db, "SH-DEFAULT")
    add_shift(db, "SH-5", package_id="PKG-5")
    add_shift(db, "SH-C", package_id="PKG-C")
    clk = FixedClock(START + timedelta(minutes=5))
    assert [(a.kind, a.subject_id) for a in await sweep(aconn, clk)] == [("LATE_START", "SH-5")]
    clk.current = START + timedelta(minutes=10)
    assert [(a.kind, a.subject_id) for a in await sweep(aconn, clk)] == [("LATE_START", "SH-C")]
    clk.current = START + timedelta(minutes=20)
    assert {(a.kind, a.subject_id) for a in await sweep(aconn, clk)} == {
        ("LATE_START", "SH-DEFAULT"),
        ("MISSED_VISIT", "SH-C"),
    }


async def test_acknowledge_and_resolve_keep_history_and_a_resolved_miss_is_not_raised_again(
    db: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    add_shift(db, "SH-1")
    clk = FixedClock(START + timedelta(minutes=60))
    missed = next(a for a in await sweep(aconn, clk) if a.kind == "MISSED_VISIT")
    clk.advance(60)
    acked = await store.acknowledge(aconn, missed.id, "sg:LA-1", "calling the provider", clk.now())
    assert acked.status == "acknowledged" and acked.resolved_at is None
    clk.advance(60)
    done = await store.resolve(aconn, missed.id, "sg:LA-1", "person was in hospital", clk.now())
    assert done.status == "resolved" and done.resolved_at == clk.now()
    assert [(h.status, h.changed_by, h.note) for h in done.history][1:] == [
        ("acknowledged", "sg:LA-1", "calling the provider"),
        ("resolved", "sg:LA-1", "person was in hospital"),
    ]
    with pytest.raises(store.AlertTransitionError):
        await store.resolve(aconn, missed.id, "sg:LA-1", "again", clk.now())
    with pytest.raises(store.AlertNotFound):
        await store.acknowledge(aconn, 999_999, "sg:LA-1", None, clk.now())
    clk.advance(3600)
    assert [a.kind for a in await sweep(aconn, clk)] == []
    assert [r[:3] for r in alerts(db)] == [
        ("LATE_START", "SH-1", "open"),
        ("MISSED_VISIT", "SH-1", "resolved"),
    ]


async def test_partial_attendance_and_lone_worker(
    db: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    add_shift(db, "SH-2", carers_required=2)
    clock(db, "e1", "SH-2", "CR-1", "in", START)
    clk = FixedClock(START + timedelta(minutes=15))
    assert [(a.kind, a.severity) for a in await sweep(aconn, clk)] == [("PARTIAL_ATTENDANCE", "critical")]
    clock(db, "e2", "SH-2", "CR-2", "in", START + timedelta(minutes=16))
    clk.advance(60)
    assert [(a.kind, a.status, a.caused_by_late_data) for a in await sweep(aconn, clk)] == [
        ("PARTIAL_ATTENDANCE", "auto_resolved", False)
    ]
    clock(db, "e3", "SH-2", "CR-2", "out", START + timedelta(minutes=30))
    clk.current = START + timedelta(minutes=60)  # ends 07:30, +30 min
    lone = await sweep(aconn, clk)
    assert [(a.kind, a.subject_id, a.carer_id) for a in lone] == [
        ("LONE_WORKER_OVERDUE", "CR-1@SH-2", "CR-1")
    ]
    clock(db, "e4", "SH-2", "CR-1", "out", START + timedelta(minutes=70))
    clk.advance(600)
    assert [(a.kind, a.status, a.caused_by_late_data) for a in await sweep(aconn, clk)] == [
        ("LONE_WORKER_OVERDUE", "auto_resolved", False)
    ]


async def test_cancelled_shift_resolves_late_start_and_is_never_missed(
    db: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    add_shift(db, "SH-1")
    clk = FixedClock(START + timedelta(minutes=20))
    assert [a.kind for a in await sweep(aconn, clk)] == ["LATE_START"]
    db.execute(
        "UPDATE shifts SET cancelled_by = 'person', cancelled_at = %s WHERE shift_id = 'SH-1'",
        (START + timedelta(minutes=18),),
    )
    clk.current = START + timedelta(hours=3)
    assert [(a.kind, a.status) for a in await sweep(aconn, clk)] == [("LATE_START", "auto_resolved")]
    assert [r[0] for r in alerts(db)] == ["LATE_START"]


async def test_slow_sweep_pay_pattern_and_delivery(
    db: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    db.execute("""INSERT INTO carers (carer_id, provider_id, date_of_birth, pay_pence_per_hour, registered_at)
                  VALUES ('CR-LOW', 'PRV-1', NULL, 1250, now()), ('CR-OK', 'PRV-1', NULL, 1300, now()),
                         ('CR-YOUNG', 'PRV-1', '2008-01-01', 1000, now())""")
    # 20 due shifts over the week, 2 never attended (10%), all with a clock-in otherwise.
    for i in range(20):
        add_shift(db, f"SH-{i}", starts_at=START - timedelta(hours=6 * i + 2))
        if i >= 2:
            clock(db, f"in-{i}", f"SH-{i}", "CR-OK", "in", START - timedelta(hours=6 * i + 2))
    now = START  # Monday 2026-04-06: NLW 1271p
    changed = await sweep_slow(aconn, now, CONFIG)
    kinds = {(a.kind, a.subject_id) for a in changed}
    assert ("PAY_BELOW_MINIMUM", "CR-LOW") in kinds and ("PROVIDER_PATTERN", "PRV-1") in kinds
    assert ("PAY_BELOW_MINIMUM", "CR-YOUNG") not in kinds and ("PAY_BELOW_MINIMUM", "CR-OK") not in kinds
    # No ledger rows in the last week: nothing delivered against 1050 planned carer-minutes.
    assert ("UNDER_DELIVERY", "PKG-1") in kinds
    assert await sweep_slow(aconn, now, CONFIG) == []
    db.execute("UPDATE carers SET pay_pence_per_hour = 1271 WHERE carer_id = 'CR-LOW'")
    assert [(a.kind, a.status) for a in await sweep_slow(aconn, now, CONFIG)] == [
        ("PAY_BELOW_MINIMUM", "auto_resolved")
    ]
