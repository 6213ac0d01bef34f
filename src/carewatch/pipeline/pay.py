"""Effective pay after a batch: the carer-weeks its attendance and activities touched are recomputed
(store/carer_weeks.py) and each touched carer waits for their PAY_BELOW_MINIMUM decision, which the
scheduler makes by the domain (domain/effective_pay.py) over all their weeks once the facts from other
partitions have had time to arrive, so the decision depends on event time only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.effective_pay import week_start
from carewatch.schema.events import CareEvent, parse_instant
from carewatch.store.carer_weeks import refresh_carer_weeks
from carewatch.store.settling import wait_for_pay

TOUCHING = frozenset({"visit.clock_in", "visit.clock_out", "visit.corrected", "activity.logged"})
# A shift's local start can lie a day either side of an instant of its attendance (UTC vs local,
# visits across midnight): each instant names the weeks of the days around it.
MARGIN = timedelta(days=1)


def _weeks_around(at: datetime) -> set[date]:
    return {week_start((at + shift).date()) for shift in (-MARGIN, timedelta(0), MARGIN)}


def touched_weeks(events: Iterable[CareEvent]) -> set[tuple[str, date]]:
    """(carer, Monday) of every week the events may change."""
    found: set[tuple[str, date]] = set()
    for e in events:
        if e.type not in TOUCHING:
            continue
        instants = [e.occurred_at]
        if e.type == "visit.corrected":
            instants += [parse_instant(e.payload["clock_in_at"]), parse_instant(e.payload["clock_out_at"])]
        for at in instants:
            found |= {(e.payload["carer_id"], monday) for monday in _weeks_around(at)}
    return found


async def pay_waits(conn: AsyncConnection[Any], events: Sequence[CareEvent], now: datetime) -> None:
    """Recompute the weeks the batch touched; the carers one of whose weeks changed, and those whose
    registration (pay rate) arrived, wait for their PAY_BELOW_MINIMUM decision (store/settling.py):
    a week's attendance and activities travel on several partitions, so the scheduler decides once
    they have had time to arrive (alerts/settled.py).
    (What moves with the calendar alone, a birthday or today's rate, is the scheduler's sweep_pay.)"""
    changed = await refresh_carer_weeks(conn, touched_weeks(events))
    carers = changed | {e.payload["carer_id"] for e in events if e.type == "carer.registered"}
    await wait_for_pay(conn, carers, now)
