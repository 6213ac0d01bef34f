"""Effective pay after a batch: the carer-weeks its attendance and activities touched are recomputed
(store/carer_weeks.py) and each touched carer's PAY_BELOW_MINIMUM decided by the domain
(domain/effective_pay.py) over all their weeks, so the decision depends on event time only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from carewatch.alerts.record import AlertRecord
from carewatch.alerts.repository import apply_decisions, open_subjects, worth_applying
from carewatch.domain.alert_rules import AlertKind
from carewatch.domain.effective_pay import pay_decision, week_start
from carewatch.domain.model import DEFAULT_TIMEZONE
from carewatch.schema.events import CareEvent, parse_instant
from carewatch.store.carer_weeks import carer_pay, carer_weeks, refresh_carer_weeks

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


async def pay_alerts(conn: AsyncConnection[Any], events: Sequence[CareEvent], now: datetime,
                     timezone: str = DEFAULT_TIMEZONE) -> list[AlertRecord]:
    """Recompute the weeks the batch touched; decide PAY_BELOW_MINIMUM for the carers one of whose weeks
    changed and for carers whose registration (pay rate) arrived. Returns the alerts that changed.
    (What moves with the calendar alone, a birthday or today's rate, is the scheduler's sweep_pay.)"""
    changed = await refresh_carer_weeks(conn, touched_weeks(events))
    carers = changed | {e.payload["carer_id"] for e in events if e.type == "carer.registered"}
    if not carers:
        return []
    registered = await carer_pay(conn, carers)
    stored = await carer_weeks(conn, registered)
    today = now.astimezone(ZoneInfo(timezone)).date()
    decisions = [pay_decision(carer, provider, pay, born, today, stored.get(carer, ()))
                 for carer, (provider, pay, born) in sorted(registered.items())]
    kinds = {AlertKind.PAY_BELOW_MINIMUM}
    return await apply_decisions(conn, worth_applying(decisions, await open_subjects(conn, kinds)), now)
