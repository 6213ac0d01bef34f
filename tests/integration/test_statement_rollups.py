"""The roll-ups statements read (migration 006) follow every write of the ledger and activities, and
match what recomputing them from the source tables gives."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

pytestmark = pytest.mark.services

PLAN = json.dumps([{"service_type": "personal_care", "minutes_per_week": 420}])
RATES = json.dumps([{"service_type": "personal_care", "band": "day", "pence_per_hour": 2400}])
LEDGER = """
INSERT INTO shift_ledger (shift_id, package_id, provider_id, starts_at, planned_seconds, scheduled_seconds,
    actual_seconds, payable_seconds, overrun_seconds, unverified_seconds, provider_cancelled_seconds,
    day_seconds, night_seconds, weekend_seconds, bank_holiday_seconds, rate_seconds, spend_pence)
VALUES (%s, 'PKG-1', 'PRV', %s, 3600, 3600, %s, %s, 0, 0, 0, %s, 0, 0, 0, %s, 0)
ON CONFLICT (shift_id) DO UPDATE SET starts_at = EXCLUDED.starts_at, actual_seconds = EXCLUDED.actual_seconds,
    payable_seconds = EXCLUDED.payable_seconds, rate_seconds = EXCLUDED.rate_seconds"""


def _rollups(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {table: conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(table))).fetchall()
            for table in ("package_day_ledger", "package_month_ledger", "package_period_ledger", "activity_day",
                          "activity_month")}


def test_rollups_follow_rescheduled_shifts_and_equal_a_rebuild(fresh_database_url: str) -> None:
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute("INSERT INTO commissioners VALUES ('LA', 'LA', NULL, 'Europe/London', now())")
        conn.execute(
            "INSERT INTO packages (package_id, commissioner_id, provider_id, mechanism, person_id, nhs_number,"
            " period_start, period_end, budget_pence, contingency_pence, plan, rates, planned_minutes_per_week,"
            " approved_at) VALUES ('PKG-1', 'LA', 'PRV', 'ISF', 'P', '9434765919', '2026-04-01', '2026-04-30',"
            " 100000, 0, %s, %s, 420, now())", (PLAN, RATES))
        # 23:30 UTC on 30 April is 00:30 BST on 1 May: the commissioner's local day, outside the period.
        conn.execute(LEDGER, ("SH-1", "2026-04-30T23:30:00Z", 3600, 3600, 3600, 3600 * 2400))
        conn.execute(LEDGER, ("SH-2", "2026-04-15T09:00:00Z", 1800, 1800, 1800, 1800 * 2400))
        conn.execute("INSERT INTO activities (event_id, carer_id, provider_id, package_id, kind, minutes,"
                     " occurred_at) VALUES ('A-1', 'CR', 'PRV', 'PKG-1', 'travel', 12.5, '2026-04-15T12:00:00Z'),"
                     " ('A-2', 'CR', 'PRV', NULL, 'admin', 5, '2026-04-15T23:30:00Z')")
        days = dict(conn.execute("SELECT day::text, payable_seconds FROM package_day_ledger").fetchall())
        assert days == {"2026-05-01": 3600, "2026-04-15": 1800}
        assert conn.execute("SELECT rate_seconds FROM package_period_ledger").fetchone() == (1800 * 2400,)
        # Rescheduled into the period, and the other visit's attendance corrected: the roll-ups move.
        conn.execute(LEDGER, ("SH-1", "2026-04-29T09:00:00Z", 3000, 3000, 3000, 3000 * 2400))
        conn.execute(LEDGER, ("SH-2", "2026-04-15T09:00:00Z", 3600, 3600, 3600, 3600 * 2400))
        days = dict(conn.execute("SELECT day::text, payable_seconds FROM package_day_ledger"
                                 " WHERE payable_seconds <> 0").fetchall())
        assert days == {"2026-04-29": 3000, "2026-04-15": 3600}
        assert conn.execute("SELECT payable_seconds FROM package_month_ledger WHERE day = '2026-05-01'"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT rate_seconds FROM package_period_ledger").fetchone() == (6600 * 2400,)
        # The admin at 00:30 BST on the 16th counts on that local day, against no package.
        activity = conn.execute("SELECT provider_id, package_id, day::text, minutes FROM activity_day"
                                " ORDER BY package_id").fetchall()
        assert [(p, k, d, float(m)) for p, k, d, m in activity] == [
            ("PRV", "", "2026-04-16", 5.0), ("PRV", "PKG-1", "2026-04-15", 12.5)]
        conn.execute("DELETE FROM shift_ledger WHERE shift_id = 'SH-2'")
        kept = _rollups(conn)
        conn.execute("SELECT carewatch_rebuild_rollups()")
        rebuilt = _rollups(conn)
    # What the triggers kept equals a recomputation (apart from rows they emptied to zero).
    def counted(row: tuple[Any, ...]) -> bool:
        return any(isinstance(v, int | Decimal) and v != 0 for v in row)

    assert {t: [r for r in rows if counted(r)] for t, rows in kept.items()} == rebuilt
    assert rebuilt["package_day_ledger"] == [("PKG-1", date(2026, 4, 29), 3000, 3000, 0, Decimal(3000 * 2400))]
