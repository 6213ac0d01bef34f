"""DOUBLE_BOOKED_CARER for a set of carers: read their attendance, let the domain decide, store.

Called by the worker for the carers a batch's clock events and corrections name, and by the
scheduler for carers on two open visits whose overlap began after their events were processed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from carewatch.alerts.record import AlertRecord
from carewatch.alerts.repository import apply_decisions, record_settled, recorded_overlaps
from carewatch.domain.alert_rules import AlertDecision
from carewatch.domain.double_booking import double_booking
from carewatch.store.carer_attendance import carer_stints

# How far before the earliest event in hand a carer's visits are read for overlaps with it.
OVERLAP_WINDOW = timedelta(days=2)


async def _providers(conn: AsyncConnection[Any], carer_ids: Collection[str]) -> dict[str, str]:
    cur = await conn.execute("SELECT carer_id, provider_id FROM carers WHERE carer_id = ANY(%s)",
                             (sorted(carer_ids),))
    return {str(c): str(p) for c, p in await cur.fetchall()}


async def double_booking_alerts(conn: AsyncConnection[Any], carer_ids: Collection[str], earliest: datetime,
                                now: datetime) -> list[AlertRecord]:
    """Reconcile each carer's overlapping visits (by event time) with their stored alerts."""
    if not carer_ids:
        return []
    carers = sorted(carer_ids)
    stints = await carer_stints(conn, carers, earliest - OVERLAP_WINDOW)
    recorded = await recorded_overlaps(conn, carers)
    providers = await _providers(conn, carers)
    resolves: list[AlertDecision] = []
    settled: list[AlertDecision] = []
    raises: list[AlertDecision] = []
    for carer in carers:
        plan = double_booking(carer, providers.get(carer), stints.get(carer, []), recorded[carer], now)
        resolves += [plan.resolve] if plan.resolve is not None else []
        settled += plan.record
        raises += [plan.raise_now] if plan.raise_now is not None else []
    changed = await apply_decisions(conn, resolves, now)
    changed += await record_settled(conn, settled, now)
    return changed + await apply_decisions(conn, raises, now)


_OPEN_ON_TWO = """
SELECT carer_id FROM (
    SELECT DISTINCT ON (carer_id, shift_id) carer_id, shift_id, direction FROM clock_events
    WHERE at >= %(since)s AND at <= %(now)s
    ORDER BY carer_id, shift_id, at DESC, direction DESC) latest
WHERE direction = 'in'
GROUP BY carer_id HAVING count(*) >= 2
EXCEPT
SELECT subject_id FROM alerts WHERE kind = 'DOUBLE_BOOKED_CARER' AND status IN ('open', 'acknowledged')"""


async def sweep_double_bookings(conn: AsyncConnection[Any], now: datetime,
                                lookback: timedelta = OVERLAP_WINDOW) -> list[AlertRecord]:
    """Raise the overlaps going on now that no event raised: their events arrived before they began
    by processing time (clocks a little ahead, or a simulation's), so only the clock can raise them."""
    cur = await conn.execute(_OPEN_ON_TWO, {"since": now - lookback, "now": now})
    carers = [str(r[0]) for r in await cur.fetchall()]
    return await double_booking_alerts(conn, carers, now - lookback, now) if carers else []
