"""Reading what statements are made of: per-package sums over a window of local dates.

The sums come from the roll-ups of migration 006 (whole months from the month tables, the days at
either end from the day tables), through `carewatch_ledger_sums` and `carewatch_activity_minutes`,
which the planner inlines; one query per part, whatever the number of packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from carewatch.domain.model import DEFAULT_TIMEZONE
from carewatch.domain.statements import spans
from carewatch.store.scope import Viewer, scope_condition


@dataclass(frozen=True)
class PackageWindowRow:
    """One package and its sums over the window (and over its whole period, for the budget)."""

    package_id: str
    provider_id: str
    commissioner_id: str
    timezone: str
    period_start: date
    period_end: date
    budget_pence: int
    contingency_pence: int
    planned_minutes_per_week: Decimal
    plan_weekly_rate_minutes: Decimal  # plan weekly spend x 60
    actual_seconds: int
    payable_seconds: int
    unverified_seconds: int
    rate_seconds: Decimal
    non_direct_minutes: Decimal
    period_rate_seconds: Decimal


@dataclass(frozen=True)
class InvoiceWindowRow:
    """The latest version of an invoice whose period starts in the window, with its proof of delivery."""

    invoice_id: str
    package_id: str
    total_pence: int
    period_start: date
    period_end: date
    package_start: date
    package_end: date
    plan_weekly_rate_minutes: Decimal  # plan weekly spend x 60
    stored_matched_pence: int | None  # the stream's match, once it has matched this version
    stored_status: str | None  # MATCHED | DISPUTED
    delivered_rate_seconds: Decimal
    any_unproven: bool  # a line names no shift of the package in the period, or one nobody attended


# The window is the same for every package: its sums are read set-wise by day (whole months from
# the month roll-ups, the days either side from the day roll-ups). Each package's spend within its
# own period (for its budget) is kept whole in package_period_ledger.
_SCOPED = """
WITH pk AS MATERIALIZED (
    SELECT p.package_id, p.provider_id, p.commissioner_id, coalesce(c.timezone, {tz}) AS timezone,
           p.period_start, p.period_end, p.budget_pence, p.contingency_pence, p.planned_minutes_per_week,
           p.plan_weekly_rate_minutes
    FROM packages p LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id
    WHERE {visible} AND {chosen}
)"""

_PACKAGES = _SCOPED + """, win AS (
    SELECT x.package_id, sum(x.actual_seconds) AS actual_seconds, sum(x.payable_seconds) AS payable_seconds,
           sum(x.unverified_seconds) AS unverified_seconds, sum(x.rate_seconds) AS rate_seconds
    FROM (SELECT * FROM package_month_ledger WHERE day >= %s AND day < %s
          UNION ALL SELECT * FROM package_day_ledger WHERE day >= %s AND day < %s
          UNION ALL SELECT * FROM package_day_ledger WHERE day >= %s AND day < %s) x
    WHERE x.package_id IN (SELECT package_id FROM pk)
    GROUP BY x.package_id
), act AS (
    SELECT x.package_id, sum(x.minutes) AS minutes
    FROM (SELECT package_id, minutes FROM activity_month WHERE day >= %s AND day < %s
          UNION ALL SELECT package_id, minutes FROM activity_day WHERE day >= %s AND day < %s
          UNION ALL SELECT package_id, minutes FROM activity_day WHERE day >= %s AND day < %s) x
    WHERE x.package_id IN (SELECT package_id FROM pk)
    GROUP BY x.package_id
)
SELECT pk.package_id, pk.provider_id, pk.commissioner_id, pk.timezone, pk.period_start, pk.period_end,
       pk.budget_pence, pk.contingency_pence, pk.planned_minutes_per_week, pk.plan_weekly_rate_minutes,
       coalesce(win.actual_seconds, 0)::bigint AS actual_seconds,
       coalesce(win.payable_seconds, 0)::bigint AS payable_seconds,
       coalesce(win.unverified_seconds, 0)::bigint AS unverified_seconds,
       coalesce(win.rate_seconds, 0) AS rate_seconds, coalesce(act.minutes, 0) AS non_direct_minutes,
       coalesce(period.rate_seconds, 0) AS period_rate_seconds
FROM pk LEFT JOIN win USING (package_id) LEFT JOIN act USING (package_id)
LEFT JOIN package_period_ledger period USING (package_id)
ORDER BY pk.package_id"""

# Each invoice's match as the stream stored it (pipeline/purchase_to_pay.py); for one not matched yet,
# what matching needs: the delivered spend over its own period (whole months from the month roll-up,
# the day roll-up only for a period that does not start or end on a month boundary) and whether a
# line is unproven.
_INVOICES = _SCOPED + """, inv AS MATERIALIZED (
    SELECT i.invoice_id, i.package_id, i.total_pence, i.period_start, i.period_end,
           ARRAY(SELECT x->>'shift_id' FROM jsonb_array_elements(i.lines) x) AS line_shifts,
           carewatch_month_after(i.period_start) AS ms, date_trunc('month', i.period_end + 1)::date AS me,
           pk.period_start AS package_start, pk.period_end AS package_end, pk.plan_weekly_rate_minutes,
           i.matched_pence AS stored_matched_pence, i.status AS stored_status
    FROM invoices i JOIN pk ON pk.package_id = i.package_id
    WHERE i.period_start >= %s AND i.period_start < %s
), delivered AS (
    -- Whole months: read by month across the invoices at once, then matched to each invoice's own.
    SELECT inv.invoice_id, m.rate_seconds FROM inv JOIN package_month_ledger m
        ON m.package_id = inv.package_id AND m.day >= inv.ms AND m.day < inv.me
    WHERE m.day >= (SELECT min(ms) FROM inv) AND m.day < (SELECT max(me) FROM inv)
      AND inv.stored_matched_pence IS NULL
    UNION ALL
    SELECT inv.invoice_id, b.rate_seconds FROM inv CROSS JOIN LATERAL carewatch_ledger_sums(
        inv.package_id, inv.period_start, CASE WHEN inv.ms < inv.me THEN inv.ms ELSE inv.period_end + 1 END) b
    WHERE (inv.period_start < inv.ms OR inv.ms >= inv.me) AND inv.stored_matched_pence IS NULL
    UNION ALL
    SELECT inv.invoice_id, b.rate_seconds FROM inv CROSS JOIN LATERAL carewatch_ledger_sums(
        inv.package_id, inv.me, inv.period_end + 1) b
    WHERE inv.ms < inv.me AND inv.me <= inv.period_end AND inv.stored_matched_pence IS NULL
), delivered_sums AS (
    SELECT invoice_id, sum(rate_seconds) AS rate_seconds FROM delivered GROUP BY invoice_id
)
SELECT inv.invoice_id, inv.package_id, inv.total_pence, inv.period_start, inv.period_end,
       inv.package_start, inv.package_end, inv.plan_weekly_rate_minutes, inv.stored_matched_pence,
       inv.stored_status, coalesce(d.rate_seconds, 0) AS delivered_rate_seconds,
       -- domain/invoice_match.line_unproven: a line naming no shift of the package starting in the
       -- period, or one nobody attended
       CASE WHEN inv.stored_matched_pence IS NULL THEN coalesce((SELECT bool_or(l.shift_id IS NULL
                                OR NOT (l.actual_seconds > 0 OR jsonb_array_length(l.attendance) > 0))
                 FROM unnest(inv.line_shifts) AS named(shift_id)
                 LEFT JOIN shift_ledger l ON l.shift_id = named.shift_id AND l.package_id = inv.package_id
                      AND l.local_date BETWEEN inv.period_start AND inv.period_end), false)
       ELSE false END AS any_unproven
FROM inv LEFT JOIN delivered_sums d ON d.invoice_id = inv.invoice_id
ORDER BY inv.invoice_id"""

# Many short index probes look costly to the planner, whose JIT then spends far longer compiling
# than the query takes to run (measured: 180 ms of JIT for a 30 ms query).
_NO_JIT = "SET LOCAL jit = off"

_UNATTACHED = """
SELECT pr.provider_id, a.minutes
FROM unnest(%(providers)s::text[]) AS pr(provider_id)
CROSS JOIN LATERAL carewatch_activity_minutes(pr.provider_id, '', %(first)s, %(stop)s) a"""


def _chosen(commissioner_id: str | None, provider_id: str | None, package_id: str | None
            ) -> tuple[sql.Composable, list[str]]:
    parts: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[str] = []
    for column, value in (("commissioner_id", commissioner_id), ("provider_id", provider_id),
                          ("package_id", package_id)):
        if value is not None:
            parts.append(sql.SQL("p.{} = %s").format(sql.Identifier(column)))
            params.append(value)
    return sql.SQL(" AND ").join(parts), params


def _scoped(template: str, viewer: Viewer, commissioner_id: str | None, provider_id: str | None,
            package_id: str | None) -> tuple[sql.Composed, list[Any]]:
    """`template` with the packages in scope (the viewer's, narrowed to the ids given) and their parameters."""
    visible, visible_params = scope_condition(viewer, "p.commissioner_id", "p.provider_id")
    chosen, chosen_params = _chosen(commissioner_id, provider_id, package_id)
    query = sql.SQL(template).format(tz=sql.Literal(DEFAULT_TIMEZONE), visible=visible, chosen=chosen)
    return query, [*visible_params, *chosen_params]


async def package_rows(pool: AsyncConnectionPool, viewer: Viewer, first: date, stop: date, *,
                       commissioner_id: str | None = None, provider_id: str | None = None,
                       package_id: str | None = None) -> list[PackageWindowRow]:
    """The packages the viewer may see (narrowed to those ids given), with their sums over [first, stop)."""
    query, params = _scoped(_PACKAGES, viewer, commissioner_id, provider_id, package_id)
    cut = spans(first, stop)
    window = [*cut.months, *cut.days_before, *cut.days_after]
    # Placeholders in the order they appear: the scope, the ledger window, the activity window.
    # Rows come back in the dataclass's field order: built positionally, 10,000 at a time.
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.execute(_NO_JIT)
        await cur.execute(query, [*params, *window, *window])
        return [PackageWindowRow(*row) for row in await cur.fetchall()]


async def invoice_rows(pool: AsyncConnectionPool, viewer: Viewer, first: date, stop: date, *,
                       commissioner_id: str | None = None, provider_id: str | None = None,
                       package_id: str | None = None) -> list[InvoiceWindowRow]:
    """Invoices of the packages in scope whose period starts in [first, stop), with what matching needs."""
    query, params = _scoped(_INVOICES, viewer, commissioner_id, provider_id, package_id)
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.execute(_NO_JIT)
        await cur.execute(query, [*params, first, stop])
        return [InvoiceWindowRow(*row) for row in await cur.fetchall()]


async def unattached_minutes(pool: AsyncConnectionPool, provider_ids: list[str], first: date, stop: date
                             ) -> dict[str, Decimal]:
    """Non-direct minutes each provider's carers logged against no package in [first, stop)."""
    if not provider_ids:
        return {}
    async with pool.connection() as conn:
        cur = await conn.execute(_UNATTACHED, {"providers": provider_ids, "first": first, "stop": stop})
        return {str(p): Decimal(m) for p, m in await cur.fetchall()}
