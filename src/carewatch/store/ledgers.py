"""Storing shift_ledger rows: the ledgers the pipeline rebuilt from each shift's stored facts.

The ledger is always rebuilt from every fact stored for the shift, never adjusted incrementally,
so arrival order and replays cannot change it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.model import ShiftLedger
from carewatch.domain.money import held_spend_pence
from carewatch.store.staging import stage_rows

_LEDGER_COLUMNS = (
    "shift_id", "package_id", "provider_id", "starts_at", "planned_seconds", "scheduled_seconds",
    "actual_seconds", "payable_seconds", "overrun_seconds", "unverified_seconds", "provider_cancelled_seconds",
    "day_seconds", "night_seconds", "weekend_seconds", "bank_holiday_seconds", "rate_seconds", "spend_pence",
    "first_clock_in_at", "open_attendances", "distinct_carers", "attendance", "updated_at")

# The ledgers are staged by COPY (store/staging.py) and merged in one statement; shift ids are
# unique within it, since each comes from one row of shifts. Each row's local date and period flag
# (the statements' roll-ups) come from carewatch_ledger_dates in the same statement (migration 007);
# the table's trigger corrects any row written without them.
_UPSERT = f"""
WITH before AS (
    SELECT l.shift_id, l.package_id, l.starts_at, l.rate_seconds
    FROM shift_ledger l JOIN staged_ledgers s USING (shift_id)
), saved AS (
INSERT INTO shift_ledger ({", ".join(_LEDGER_COLUMNS)}, local_date, in_period)
SELECT {", ".join("s." + c for c in _LEDGER_COLUMNS)}, d.local_date, d.in_period
FROM staged_ledgers s LEFT JOIN packages p ON p.package_id = s.package_id
LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id
CROSS JOIN LATERAL carewatch_ledger_dates(s.starts_at, c.timezone, p.period_start, p.period_end) d
ON CONFLICT (shift_id) DO UPDATE SET package_id = EXCLUDED.package_id, provider_id = EXCLUDED.provider_id,
    starts_at = EXCLUDED.starts_at, planned_seconds = EXCLUDED.planned_seconds,
    scheduled_seconds = EXCLUDED.scheduled_seconds, actual_seconds = EXCLUDED.actual_seconds,
    payable_seconds = EXCLUDED.payable_seconds, overrun_seconds = EXCLUDED.overrun_seconds,
    unverified_seconds = EXCLUDED.unverified_seconds,
    provider_cancelled_seconds = EXCLUDED.provider_cancelled_seconds, day_seconds = EXCLUDED.day_seconds,
    night_seconds = EXCLUDED.night_seconds, weekend_seconds = EXCLUDED.weekend_seconds,
    bank_holiday_seconds = EXCLUDED.bank_holiday_seconds, rate_seconds = EXCLUDED.rate_seconds,
    spend_pence = EXCLUDED.spend_pence, first_clock_in_at = EXCLUDED.first_clock_in_at,
    open_attendances = EXCLUDED.open_attendances, distinct_carers = EXCLUDED.distinct_carers,
    attendance = EXCLUDED.attendance, updated_at = EXCLUDED.updated_at, local_date = EXCLUDED.local_date,
    in_period = EXCLUDED.in_period
RETURNING shift_id, package_id, starts_at, rate_seconds
)
-- The packages whose spend may have moved: a shift's rate seconds, start or package changed (both
-- packages then), or a new shift with spend already. Every sub-statement sees the rows as they were
-- before the upsert, so `before` holds the stored ledgers.
SELECT DISTINCT moved.package_id
FROM saved LEFT JOIN before b USING (shift_id)
CROSS JOIN LATERAL (VALUES (saved.package_id), (b.package_id)) AS moved(package_id)
WHERE moved.package_id IS NOT NULL AND (
    CASE WHEN b.shift_id IS NULL THEN saved.rate_seconds <> 0
         ELSE b.rate_seconds <> saved.rate_seconds OR b.starts_at <> saved.starts_at
              OR b.package_id <> saved.package_id END)"""


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _instant(value: datetime | None) -> str | None:
    return None if value is None else _utc(value).isoformat().replace("+00:00", "Z")


def ledger_row(ledger: ShiftLedger, now: datetime) -> tuple[Any, ...]:
    bands = ledger.band_seconds
    attendance = [
        {"carerId": a.carer_id, "clockInAt": _instant(a.clock_in_at), "clockOutAt": _instant(a.clock_out_at),
         "method": a.method, "verified": a.verified,
         **({"reasonCode": a.reason_code, "correctedBy": a.corrected_by, "correctedAt": _instant(a.corrected_at)}
            if a.corrected_at is not None else {})}
        for a in ledger.attendance
    ]
    return (ledger.shift_id, ledger.package_id, ledger.provider_id, ledger.starts_at, ledger.planned_seconds,
            ledger.scheduled_seconds, ledger.actual_seconds, ledger.payable_seconds, ledger.overrun_seconds,
            ledger.unverified_seconds, ledger.provider_cancelled_seconds, bands.get("day", 0),
            bands.get("night", 0), bands.get("weekend", 0), bands.get("bank_holiday", 0),
            ledger.rate_seconds, held_spend_pence(ledger.rate_seconds), ledger.first_clock_in_at,
            ledger.open_attendances, ledger.distinct_carers, json.dumps(attendance), now)


async def save_ledgers(conn: AsyncConnection[Any], ledgers: Iterable[ShiftLedger], now: datetime) -> set[str]:
    """Upsert these ledgers (one per shift) in one statement; returns the packages whose spend may have
    moved (a shift's rate seconds, start or package changed), for the budget judgement."""
    rows = [ledger_row(ledger, now) for ledger in ledgers]
    if not rows:
        return set()
    async with conn.cursor() as cur:
        await stage_rows(cur, "staged_ledgers", "shift_ledger", _LEDGER_COLUMNS, rows)
        await cur.execute(_UPSERT)
        return {package_id for (package_id,) in await cur.fetchall()}
