"""Migration 007: the ledger's local dates and period flags are set per statement instead of per row, the
activities' dates and the plan's weekly rate without re-planned SQL functions. Every stored value must be
what migration 006's definitions give, on the batch path and for rows written by hand, and the roll-ups
must equal a rebuild from the source tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from carewatch.bench import bench_feed
from carewatch.clock import FixedClock
from carewatch.pipeline.processor import BatchProcessor
from carewatch.store.db import make_pool

pytestmark = pytest.mark.services

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# Migration 006's definitions, written out: the local date in the package's commissioner's zone (the
# default zone for a package or commissioner not stored) and whether it lies in the package's period.
WRONG_DATES = """
SELECT count(*) FROM shift_ledger l LEFT JOIN packages p USING (package_id)
CROSS JOIN LATERAL (SELECT (l.starts_at AT TIME ZONE carewatch_package_zone(l.package_id))::date) z(d)
WHERE l.local_date IS DISTINCT FROM z.d
   OR l.in_period IS DISTINCT FROM coalesce(z.d BETWEEN p.period_start AND p.period_end, false)"""
WRONG_ACTIVITY_DATES = """
SELECT count(*) FROM activities
WHERE local_date IS DISTINCT FROM (occurred_at AT TIME ZONE carewatch_package_zone(package_id))::date"""
# The body of migration 006's carewatch_plan_weekly_rate_minutes, as a query.
PLAN_RATE_006 = """
SELECT coalesce(sum((line->>'minutes_per_week')::numeric * coalesce((line->>'carers')::numeric, 1)
                    * coalesce((SELECT (r->>'pence_per_hour')::numeric FROM jsonb_array_elements(%(rates)s::jsonb) r
                                WHERE r->>'service_type' = line->>'service_type' AND r->>'band' = 'day'
                                LIMIT 1), 0)), 0)::text
FROM jsonb_array_elements(%(plan)s::jsonb) line"""
ROLLUPS = ("package_day_ledger", "package_month_ledger", "package_period_ledger", "activity_day", "activity_month")


def _rollups(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Each roll-up's rows, leaving out those the triggers emptied to zero (a rebuild has none)."""

    def counted(row: tuple[Any, ...]) -> bool:
        return any(isinstance(v, int | Decimal) and v != 0 for v in row)

    return {
        t: [r for r in conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(t))) if counted(r)]
        for t in ROLLUPS
    }


def _assert_rollups_equal_a_rebuild(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    kept = _rollups(conn)
    conn.execute("SELECT carewatch_rebuild_rollups()")
    assert kept == _rollups(conn)
    return kept


async def _apply(url: str, lines: list[bytes], batch: int) -> None:
    processor = BatchProcessor(make_pool(url, max_size=2), _no_dead_letters, FixedClock(NOW))
    try:
        for start in range(0, len(lines), batch):
            await processor.handle([(None, line) for line in lines[start : start + batch]])
    finally:
        await processor.close()


async def _no_dead_letters(key: bytes | None, value: bytes) -> None:
    raise AssertionError(f"the simulated feed has no invalid events: {value!r}")


async def test_batch_path_dates_and_rollups_equal_migration_006s_and_a_rebuild(fresh_database_url: str) -> None:
    url = fresh_database_url
    await _apply(url, [value for _, value in bench_feed(3000)], 700)
    with psycopg.connect(url, autocommit=True) as conn:
        ledgers, in_period = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE in_period) FROM shift_ledger"
        ).fetchone() or (0, 0)
        assert ledgers > 200 and in_period > 0
        assert conn.execute(WRONG_DATES).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM activities").fetchone() != (0,)
        assert conn.execute(WRONG_ACTIVITY_DATES).fetchone() == (0,)
        before = _assert_rollups_equal_a_rebuild(conn)
        assert before["package_period_ledger"] and before["activity_day"]
        commissioner = conn.execute(
            "SELECT commissioner_id FROM packages p JOIN shift_ledger l USING (package_id)"
            " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        assert commissioner is not None

    # The commissioner moves to a zone 12 hours ahead: the batch path rebuilds every ledger of its
    # packages, and the visits of the UTC afternoon move to the next local day.
    moved = json.dumps(
        {
            "event_id": "move-zone",
            "type": "commissioner.registered",
            "occurred_at": "2026-04-06T20:00:00Z",
            "source": "test",
            "schema_version": 1,
            "commissioner_id": commissioner[0],
            "name": "Moved",
            "kind": "local_authority",
            "timezone": "Pacific/Auckland",
        }
    ).encode()
    await _apply(url, [moved], 1)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(WRONG_DATES).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM shift_ledger WHERE local_date <> (starts_at AT TIME ZONE 'Europe/London')::date"
        ).fetchone() != (0,)
        after = _assert_rollups_equal_a_rebuild(conn)
        assert after["package_day_ledger"] != before["package_day_ledger"]


def test_rows_written_without_dates_or_with_wrong_ones_are_corrected(fresh_database_url: str) -> None:
    url = fresh_database_url
    plan = json.dumps([{"service_type": "personal_care", "minutes_per_week": 420}])
    rates = json.dumps([{"service_type": "personal_care", "band": "day", "pence_per_hour": 2400}])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO commissioners VALUES ('LA', 'LA', NULL, 'America/New_York', now())")
        conn.execute(
            "INSERT INTO packages (package_id, commissioner_id, provider_id, mechanism, person_id, nhs_number,"
            " period_start, period_end, budget_pence, contingency_pence, plan, rates, planned_minutes_per_week,"
            " approved_at) VALUES ('PKG-1', 'LA', 'PRV', 'ISF', 'P', '9434765919', '2026-04-01', '2026-04-30',"
            " 100000, 0, %s, %s, 420, now())",
            (plan, rates),
        )
        insert = (
            "INSERT INTO shift_ledger (shift_id, package_id, provider_id, starts_at, planned_seconds,"
            " scheduled_seconds, actual_seconds, payable_seconds, overrun_seconds, unverified_seconds,"
            " provider_cancelled_seconds, day_seconds, night_seconds, weekend_seconds, bank_holiday_seconds,"
            " rate_seconds, spend_pence, local_date, in_period)"
            " VALUES (%s, 'PKG-1', 'PRV', %s, 3600, 3600, 3600, 3600, 0, 0, 0, 3600, 0, 0, 0, 8640000, 2.4,"
            " %s, %s)"
        )
        # 02:00 UTC on 1 May is 22:00 on 30 April in New York: in the period. Written with no dates, with
        # wrong ones, and with the right ones.
        conn.execute(insert, ("SH-1", "2026-05-01T02:00:00Z", None, None))
        conn.execute(insert, ("SH-2", "2026-05-01T02:00:00Z", "2026-06-09", False))
        conn.execute(insert, ("SH-3", "2026-05-01T02:00:00Z", "2026-04-30", True))
        assert conn.execute("SELECT shift_id, local_date::text, in_period FROM shift_ledger ORDER BY 1").fetchall() == [
            ("SH-1", "2026-04-30", True),
            ("SH-2", "2026-04-30", True),
            ("SH-3", "2026-04-30", True),
        ]
        days = _assert_rollups_equal_a_rebuild(conn)
        assert days["package_period_ledger"] == [("PKG-1", Decimal(3 * 8640000))]
        # The period changes and a hand-written update touches the rows but not their dates: corrected.
        conn.execute("UPDATE packages SET period_end = '2026-04-29'")
        conn.execute("UPDATE shift_ledger SET updated_at = now() WHERE shift_id IN ('SH-1', 'SH-2')")
        assert conn.execute("SELECT shift_id, in_period FROM shift_ledger ORDER BY 1").fetchall() == [
            ("SH-1", False),
            ("SH-2", False),
            ("SH-3", True),
        ]
        assert conn.execute(WRONG_DATES).fetchone() == (1,)  # SH-3, not written since the period changed
        assert _assert_rollups_equal_a_rebuild(conn)["package_period_ledger"] == [("PKG-1", Decimal(8640000))]
        # An update that supplies a wrong date is corrected too, and a delete takes the row off.
        conn.execute("UPDATE shift_ledger SET local_date = '2020-01-01', in_period = true WHERE shift_id = 'SH-3'")
        assert conn.execute(WRONG_DATES).fetchone() == (0,)
        conn.execute("DELETE FROM shift_ledger WHERE shift_id = 'SH-1'")
        kept = _assert_rollups_equal_a_rebuild(conn)
        assert kept["package_day_ledger"] == [
            ("PKG-1", datetime(2026, 4, 30).date(), 7200, 7200, 0, Decimal(2 * 8640000))
        ]
        # Activities: in the package's zone, the default zone with no package or an unknown one.
        conn.execute(
            "INSERT INTO activities (event_id, carer_id, provider_id, package_id, kind, minutes, occurred_at)"
            " VALUES ('A-1', 'CR', 'PRV', 'PKG-1', 'travel', 5, '2026-05-01T02:00:00Z'),"
            " ('A-2', 'CR', 'PRV', NULL, 'admin', 5, '2026-05-01T23:30:00Z'),"
            " ('A-3', 'CR', 'PRV', 'PKG-X', 'admin', 5, '2026-05-01T23:30:00Z')"
        )
        assert conn.execute("SELECT event_id, local_date::text FROM activities ORDER BY 1").fetchall() == [
            ("A-1", "2026-04-30"),
            ("A-2", "2026-05-02"),
            ("A-3", "2026-05-02"),
        ]
        assert conn.execute(WRONG_ACTIVITY_DATES).fetchone() == (0,)


@pytest.mark.parametrize(
    ("plan", "rates"),
    [
        (
            [{"service_type": "personal_care", "minutes_per_week": 945, "carers": 1}],
            [
                {"service_type": "personal_care", "band": "day", "pence_per_hour": 2727},
                {"service_type": "personal_care", "band": "night", "pence_per_hour": 2999},
            ],
        ),
        (
            [
                {"service_type": "personal_care", "minutes_per_week": 30.5, "carers": 2},
                {"service_type": "domestic", "minutes_per_week": 60},
                {"service_type": "sitting", "minutes_per_week": 90},
            ],
            [
                {"service_type": "domestic", "band": "day", "pence_per_hour": 1999.5},
                {"service_type": "domestic", "band": "day", "pence_per_hour": 5000},
                {"service_type": "personal_care", "band": "day", "pence_per_hour": 2400},
            ],
        ),
        (
            [{"service_type": "personal_care"}, {"service_type": "personal_care", "minutes_per_week": 10}],
            [{"service_type": "personal_care", "band": "day", "pence_per_hour": 2400}],
        ),
        (
            [{"service_type": "x", "minutes_per_week": 60, "carers": 3}, {"service_type": "y", "minutes_per_week": 7}],
            [
                {"service_type": "x", "band": "day"},
                {"service_type": "x", "band": "day", "pence_per_hour": 100},
                {"service_type": "y", "band": "night", "pence_per_hour": 100},
            ],
        ),
        ([], []),
    ],
)
def test_plan_weekly_rate_is_migration_006s(fresh_database_url: str, plan: list[Any], rates: list[Any]) -> None:
    with psycopg.connect(fresh_database_url) as conn:
        params = {"plan": json.dumps(plan), "rates": json.dumps(rates)}
        expected = conn.execute(PLAN_RATE_006, params).fetchone()
        got = conn.execute(
            "SELECT carewatch_plan_weekly_rate_minutes(%(plan)s::jsonb, %(rates)s::jsonb)::text", params
        ).fetchone()
        assert got == expected and expected is not None
