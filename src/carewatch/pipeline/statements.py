"""Statements for a caller: read the packages' sums (store/statements.py), let the domain add them up.

Every statement is a sum over the packages in its scope that the caller may see (GRAPHQL.md): a
commissioner's provider statement covers only that provider's packages it funds. A provider's own
carers' time logged against no package counts in its non-direct share only where the statement is
not narrowed to one commissioner's packages.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from psycopg_pool import AsyncConnectionPool

from carewatch.domain.calendar import period_bounds, wall_clock_seconds, zone
from carewatch.domain.invoice_match import match_figures, order_days
from carewatch.domain.statements import (
    PackageFigures,
    Statement,
    StatementScope,
    league_table,
    ordered_days,
    recoverable_underspend,
    statement,
)
from carewatch.store.scope import Viewer
from carewatch.store.statements import InvoiceWindowRow, PackageWindowRow, invoice_rows, package_rows
from carewatch.store.statements import unattached_minutes as read_unattached

MAX_WINDOW_DAYS = 3 * 366


class StatementRequestError(ValueError):
    """A request the caller must fix (a window backwards or too long); the message says how."""


@dataclass(frozen=True)
class StatementRequest:
    scope: StatementScope
    start: date
    end: date  # exclusive
    subject_id: str | None = None  # one statement; None: the league table
    commissioner_id: str | None = None  # StatementFilter
    provider_id: str | None = None

    def checked(self) -> StatementRequest:
        if self.end <= self.start:
            raise StatementRequestError("to must be after from (the window is [from, to) in local dates)")
        if (self.end - self.start).days > MAX_WINDOW_DAYS:
            raise StatementRequestError(f"a statement covers at most {MAX_WINDOW_DAYS} days")
        return self


def invoice_figures(row: InvoiceWindowRow) -> tuple[int, int]:
    """(matched pence, 1 if disputed) of one invoice: the match the stream stored, or for a version not
    matched yet the domain's rule over its proof of delivery."""
    if row.stored_matched_pence is not None and row.stored_status is not None:
        return row.stored_matched_pence, int(row.stored_status == "DISPUTED")
    days = order_days(row.package_start, row.package_end, row.period_start, row.period_end)
    matched, disputed = match_figures(row.total_pence, int(row.delivered_rate_seconds),
                                      int(row.plan_weekly_rate_minutes), days, row.any_unproven)
    return matched, int(disputed)


def _remaining_seconds(row: PackageWindowRow, now: datetime) -> int:
    """Local wall-clock seconds from max(now, period start) to the period's end (0 once it has ended)."""
    tz = zone(row.timezone)
    start, end = period_bounds(row.period_start, row.period_end, tz)
    return wall_clock_seconds(max(now, start), end, tz)


def _figures(row: PackageWindowRow, start: date, end: date, now: datetime,
             invoices: Sequence[InvoiceWindowRow], remaining: dict[tuple[date, date, str], int]) -> PackageFigures:
    days = ordered_days(row.period_start, row.period_end, start, end)
    weekly_rate_minutes = int(row.plan_weekly_rate_minutes)
    key = (row.period_start, row.period_end, row.timezone)  # packages commonly share their periods
    if key not in remaining:
        remaining[key] = _remaining_seconds(row, now)
    matches = [invoice_figures(i) for i in invoices]
    return PackageFigures(
        package_id=row.package_id, provider_id=row.provider_id, commissioner_id=row.commissioner_id,
        ordered_minutes_x7=int(row.planned_minutes_per_week) * days, ordered_pence_x420=weekly_rate_minutes * days,
        payable_seconds=row.payable_seconds, rate_seconds=int(row.rate_seconds),
        unverified_seconds=row.unverified_seconds, direct_seconds=row.actual_seconds,
        non_direct_minutes=row.non_direct_minutes,
        invoiced_pence=sum(i.total_pence for i in invoices),
        matched_pence=sum(m for m, _ in matches), disputed_invoices=sum(d for _, d in matches),
        recoverable_x=recoverable_underspend(row.budget_pence, row.contingency_pence, int(row.period_rate_seconds),
                                             weekly_rate_minutes, remaining[key]),
    )


def _key(scope: StatementScope, f: PackageFigures) -> str:
    return {StatementScope.PACKAGE: f.package_id, StatementScope.PROVIDER: f.provider_id,
            StatementScope.COMMISSIONER: f.commissioner_id}[scope]


async def statements(pool: AsyncConnectionPool, viewer: Viewer, request: StatementRequest,
                     now: datetime) -> list[Statement]:
    """The statements asked for, in league-table order (one, or none if nothing is in scope, when
    `subject_id` is given)."""
    r = request.checked()
    narrowed = {StatementScope.PACKAGE: "package_id", StatementScope.PROVIDER: "provider_id",
                StatementScope.COMMISSIONER: "commissioner_id"}[r.scope]
    ids: dict[str, str | None] = {"commissioner_id": r.commissioner_id, "provider_id": r.provider_id,
                                  "package_id": None}
    if r.subject_id is not None:
        if ids[narrowed] not in (None, r.subject_id):
            return []  # the filter and the id name different subjects
        ids[narrowed] = r.subject_id
    # The packages' sums and their invoices are read side by side, on two connections.
    rows, invoice_list = await asyncio.gather(package_rows(pool, viewer, r.start, r.end, **ids),
                                              invoice_rows(pool, viewer, r.start, r.end, **ids))
    invoices: dict[str, list[InvoiceWindowRow]] = defaultdict(list)
    for inv in invoice_list:
        invoices[inv.package_id].append(inv)
    groups: dict[str, list[PackageFigures]] = defaultdict(list)
    remaining: dict[tuple[date, date, str], int] = {}
    for row in rows:
        figures = _figures(row, r.start, r.end, now, invoices.get(row.package_id, ()), remaining)
        groups[_key(r.scope, figures)].append(figures)
    unattached: dict[str, Fraction] = {}
    if r.scope is StatementScope.PROVIDER and viewer.commissioner_id is None and r.commissioner_id is None:
        found = await read_unattached(pool, sorted(groups), r.start, r.end)
        unattached = {p: Fraction(m) for p, m in found.items()}
    made = [statement(r.scope, key, r.start, r.end, parts, unattached.get(key, Fraction(0)))
            for key, parts in groups.items()]
    return league_table(made)
