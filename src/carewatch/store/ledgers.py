"""Recomputing shift_ledger rows from a shift's stored facts: the shift, its clock events and corrections.

The ledger is always rebuilt from every fact stored for the shift, never adjusted
incrementally, so arrival order and replays cannot change it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection

from carewatch.domain.attendance import shift_ledger
from carewatch.domain.model import ShiftLedger
from carewatch.metrics import LEDGER_REBUILD_FAILURES
from carewatch.store.shift_facts import ShiftFacts
from carewatch.store.staging import stage_rows

log = logging.getLogger(__name__)


class LedgerRebuildError(RuntimeError):
    """A shift's stored facts could not be turned into its ledger."""

DEFAULT_TIMEZONE = "Europe/London"

_LEDGER_COLUMNS = (
    "shift_id", "package_id", "provider_id", "starts_at", "planned_seconds", "scheduled_seconds",
    "actual_seconds", "payable_seconds", "overrun_seconds", "unverified_seconds", "provider_cancelled_seconds",
    "day_seconds", "night_seconds", "weekend_seconds", "bank_holiday_seconds", "rate_seconds", "spend_pence",
    "first_clock_in_at", "open_attendances", "distinct_carers", "attendance", "updated_at")

# The ledgers are staged by COPY (store/staging.py) and merged in one statement; shift ids are
# unique within it, since each comes from one row of shifts.
_UPSERT = f"""
INSERT INTO shift_ledger ({", ".join(_LEDGER_COLUMNS)})
SELECT {", ".join(_LEDGER_COLUMNS)} FROM staged_ledgers
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
    attendance = EXCLUDED.attendance, updated_at = EXCLUDED.updated_at"""

_SIX_PLACES = Decimal("0.000001")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _instant(value: datetime | None) -> str | None:
    return None if value is None else _utc(value).isoformat().replace("+00:00", "Z")


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; using %s", name, DEFAULT_TIMEZONE)
        return ZoneInfo(DEFAULT_TIMEZONE)


def spend_pence(rate_seconds: int) -> Decimal:
    """Spend held to 6 places (the column's scale); rate_seconds stays the exact figure."""
    return (Decimal(rate_seconds) / Decimal(3600)).quantize(_SIX_PLACES, rounding=ROUND_HALF_UP)


def ledger_row(ledger: ShiftLedger, now: datetime) -> tuple[Any, ...]:
    bands = ledger.band_seconds
    attendance = [
        {"carerId": a.carer_id, "clockInAt": _instant(a.clock_in_at), "clockOutAt": _instant(a.clock_out_at),
         "method": a.method, "verified": a.verified}
        for a in ledger.attendance
    ]
    return (ledger.shift_id, ledger.package_id, ledger.provider_id, ledger.starts_at, ledger.planned_seconds,
            ledger.scheduled_seconds, ledger.actual_seconds, ledger.payable_seconds, ledger.overrun_seconds,
            ledger.unverified_seconds, ledger.provider_cancelled_seconds, bands.get("day", 0),
            bands.get("night", 0), bands.get("weekend", 0), bands.get("bank_holiday", 0),
            ledger.rate_seconds, spend_pence(ledger.rate_seconds), ledger.first_clock_in_at,
            ledger.open_attendances, ledger.distinct_carers, json.dumps(attendance), now)


async def recompute_ledgers(conn: AsyncConnection[Any], facts: Iterable[ShiftFacts],
                            now: datetime) -> dict[str, ShiftLedger]:
    """Rebuild and store the ledger of each shift from its facts; return the ledgers written, by shift id."""
    ledgers: dict[str, ShiftLedger] = {}
    for f in facts:
        try:
            ledgers[f.shift.shift_id] = shift_ledger(f.shift, f.clocks, f.corrections, f.rates, _zone(f.timezone))
        except Exception as exc:
            # Never left stale in silence: counted, and raised so that the batch is split until the
            # event that made the shift's facts unusable is found and rejected (stream/batches.py).
            LEDGER_REBUILD_FAILURES.inc()
            raise LedgerRebuildError(f"the ledger of shift {f.shift.shift_id} cannot be computed: "
                                     f"{type(exc).__name__}: {exc}") from exc
    if ledgers:
        async with conn.cursor() as cur:
            await stage_rows(cur, "staged_ledgers", "shift_ledger", _LEDGER_COLUMNS,
                             (ledger_row(ledger, now) for ledger in ledgers.values()))
            await cur.execute(_UPSERT)
    return ledgers
