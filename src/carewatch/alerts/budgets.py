"""BUDGET_AT_RISK (DOMAIN.md "Budget at risk"): judged for the packages whose spend or plan a batch changed
(pipeline/purchase_to_pay.py) and, by the scheduler, for every package no batch has judged for a day."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from carewatch.alerts.record import AlertRecord
from carewatch.alerts.repository import apply_decisions, open_subjects, regrade, worth_applying
from carewatch.domain.alert_rules import AlertDecision, AlertKind
from carewatch.domain.budget import budget_status
from carewatch.domain.calendar import period_bounds, zone
from carewatch.domain.model import Package
from carewatch.domain.purchase_alerts import budget_at_risk
from carewatch.store import invoices as store

DAILY = timedelta(days=1)
REFRESH = timedelta(hours=1)  # how stale an unchanged check may get before a batch writes it again
BUDGET_SWEEP_LIMIT = 2000  # packages judged per scheduler tick at most; the rest on the next ticks


async def judge_budgets(conn: AsyncConnection[Any], packages: Mapping[str, Package], now: datetime,
                        default_zone: ZoneInfo | None = None) -> list[AlertRecord]:
    """BUDGET_AT_RISK for these packages now: raised, re-graded (history kept) or auto-resolved when the
    level differs from the one last judged; an unchanged level changes nothing (a lead who resolved the
    alert by hand is not paged again until the level moves), and only its check's time is kept fresh."""
    if not packages:
        return []
    windows = {pid: (pid, *period_bounds(p.period_start, p.period_end, zone(p.timezone, default_zone)))
               for pid, p in packages.items()}
    found = await store.budget_inputs(conn, list(windows.values()))
    decisions: list[AlertDecision] = []
    checks: list[tuple[str, str | None, int]] = []
    for pid, package in sorted(packages.items()):
        spent, last = found.get(windows[pid], (0, None))
        status = budget_status(package, spent, now)
        if last is None or last.level != status.risk:
            decisions.append(budget_at_risk(package, status))
        if last is None or last.level != status.risk or last.checked_at <= now - REFRESH:
            checks.append((pid, status.risk, status.forecast_spend_pence))
    await store.record_budget_checks(conn, checks, now)
    if not decisions:
        return []
    worth = worth_applying(decisions, await open_subjects(conn, [AlertKind.BUDGET_AT_RISK]))
    return await apply_decisions(conn, worth, now) + await regrade(conn, decisions, now)


async def sweep_budgets(conn: AsyncConnection[Any], now: datetime, default_zone: ZoneInfo | None = None,
                        limit: int = BUDGET_SWEEP_LIMIT) -> list[AlertRecord]:
    """The scheduler's daily check: every package no batch has judged for a day is judged now."""
    ids = await store.budgets_unchecked_since(conn, now - DAILY, limit)
    if not ids:
        return []
    packages, _ = await store.packages(conn, ids)
    return await judge_budgets(conn, packages, now, default_zone)
