"""Reading what statements are made of: per-package sums over a window of local dates.

The sums come from the roll-ups of migration 006 (whole months from the month tables, the days at
either end from the day tables), through `carewatch_ledger_sums` and `carewatch_activity_minutes`,
which the planner inlines; one query per part, whatever the number of packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, cast

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from carewatch.domain.model import DEFAULT_TIMEZONE, Band, Package, PlanLine, Rate
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

    package: Package
    invoice_id: str
    total_pence: int
    period_start: date
    period_end: date
    lines: list[dict[str, Any]]
    delivered_rate_seconds: Decimal
    proof: dict[str, list[Any]]  # shift_id -> [payable_seconds, has attendance]


# The window is the same for every package: its sums are read set-wise (by day, whole months from
# the month roll-ups). Each package's own period (for its budget) is read per package, whole months
# first; the day roll-up only for periods that do not start or end on a month boundary.
_PACKAGES = """
WITH pk AS MATERIALIZED (
    SELECT p.package_id, p.provider_id, p.commissioner_id, coalesce(c.timezone, {tz}) AS timezone,
           p.period_start, p.period_end, p.budget_pence, p.contingency_pence, p.planned_minutes_per_week,
           p.plan_weekly_rate_minutes, carewatch_month_after(p.period_start) AS ms,
           date_trunc('month', p.period_end + 1)::date AS me
    FROM packages p LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id
    WHERE {visible} AND {chosen}
), win AS (
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
), per AS (
    SELECT m.package_id, m.rate_seconds FROM pk JOIN package_month_ledger m
        ON m.package_id = pk.package_id AND m.day >= pk.ms AND m.day < pk.me
    UNION ALL
    SELECT pk.package_id, b.rate_seconds FROM pk CROSS JOIN LATERAL carewatch_ledger_sums(
        pk.package_id, pk.period_start, CASE WHEN pk.ms < pk.me THEN pk.ms ELSE pk.period_end + 1 END) b
    WHERE pk.period_start < pk.ms OR pk.ms >= pk.me
    UNION ALL
    SELECT pk.package_id, b.rate_seconds FROM pk CROSS JOIN LATERAL carewatch_ledger_sums(
        pk.package_id, pk.me, pk.period_end + 1) b
    WHERE pk.ms < pk.me AND pk.me <= pk.period_end
), period AS (
    SELECT package_id, sum(rate_seconds) AS rate_seconds FROM per GROUP BY package_id
)
SELECT pk.package_id, pk.provider_id, pk.commissioner_id, pk.timezone, pk.period_start, pk.period_end,
       pk.budget_pence, pk.contingency_pence, pk.planned_minutes_per_week, pk.plan_weekly_rate_minutes,
       coalesce(win.actual_seconds, 0)::bigint AS actual_seconds,
       coalesce(win.payable_seconds, 0)::bigint AS payable_seconds,
       coalesce(win.unverified_seconds, 0)::bigint AS unverified_seconds,
       coalesce(win.rate_seconds, 0) AS rate_seconds, coalesce(act.minutes, 0) AS non_direct_minutes,
       coalesce(period.rate_seconds, 0) AS period_rate_seconds
FROM pk LEFT JOIN win USING (package_id) LEFT JOIN act USING (package_id) LEFT JOIN period USING (package_id)
ORDER BY pk.package_id"""

_INVOICES = """
SELECT i.invoice_id, i.package_id, i.total_pence, i.period_start, i.period_end, i.lines,
       p.provider_id, p.commissioner_id, p.period_start AS package_start, p.period_end AS package_end,
       p.plan, p.rates, d.rate_seconds AS delivered_rate_seconds,
       (SELECT coalesce(jsonb_object_agg(l.shift_id, jsonb_build_array(
                   l.payable_seconds, l.actual_seconds > 0 OR jsonb_array_length(l.attendance) > 0)), '{}')
        FROM jsonb_array_elements(i.lines) x JOIN shift_ledger l ON l.shift_id = x->>'shift_id'
        WHERE l.package_id = i.package_id AND l.local_date BETWEEN i.period_start AND i.period_end) AS proof
FROM invoices i
JOIN packages p ON p.package_id = i.package_id
CROSS JOIN LATERAL carewatch_ledger_sums(i.package_id, i.period_start, i.period_end + 1) d
WHERE i.package_id = ANY(%(packages)s) AND i.period_start >= %(first)s AND i.period_start < %(stop)s
ORDER BY i.invoice_id"""

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


async def package_rows(pool: AsyncConnectionPool, viewer: Viewer, first: date, stop: date, *,
                       commissioner_id: str | None = None, provider_id: str | None = None,
                       package_id: str | None = None) -> list[PackageWindowRow]:
    """The packages the viewer may see (narrowed to those ids given), with their sums over [first, stop)."""
    visible, visible_params = scope_condition(viewer, "p.commissioner_id", "p.provider_id")
    chosen, chosen_params = _chosen(commissioner_id, provider_id, package_id)
    query = sql.SQL(_PACKAGES).format(tz=sql.Literal(DEFAULT_TIMEZONE), visible=visible, chosen=chosen)
    cut = spans(first, stop)
    window = [*cut.months, *cut.days_before, *cut.days_after]
    # Placeholders in the order they appear: the scope, the choice, the ledger window, the activity window.
    params: list[Any] = [*visible_params, *chosen_params, *window, *window]
    async with pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_NO_JIT)
        await cur.execute(query, params)
        return [PackageWindowRow(**row) for row in await cur.fetchall()]


def _package(row: dict[str, Any]) -> Package:
    return Package(
        package_id=row["package_id"], commissioner_id=row["commissioner_id"], provider_id=row["provider_id"],
        period_start=row["package_start"], period_end=row["package_end"], budget_pence=0, contingency_pence=0,
        plan=tuple(PlanLine(str(p["service_type"]), int(p["minutes_per_week"]), int(p.get("carers", 1)))
                   for p in row["plan"]),
        rates=tuple(Rate(str(r["service_type"]), cast(Band, r["band"]), int(r["pence_per_hour"]))
                    for r in row["rates"]))


async def invoice_rows(pool: AsyncConnectionPool, package_ids: list[str], first: date, stop: date
                       ) -> list[InvoiceWindowRow]:
    """Invoices of these packages whose period starts in [first, stop), with what matching needs."""
    if not package_ids:
        return []
    async with pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_NO_JIT)
        await cur.execute(_INVOICES, {"packages": package_ids, "first": first, "stop": stop})
        return [InvoiceWindowRow(_package(r), r["invoice_id"], r["total_pence"], r["period_start"],
                                 r["period_end"], r["lines"], r["delivered_rate_seconds"], r["proof"])
                for r in await cur.fetchall()]


async def unattached_minutes(pool: AsyncConnectionPool, provider_ids: list[str], first: date, stop: date
                             ) -> dict[str, Decimal]:
    """Non-direct minutes each provider's carers logged against no package in [first, stop)."""
    if not provider_ids:
        return {}
    async with pool.connection() as conn:
        cur = await conn.execute(_UNATTACHED, {"providers": provider_ids, "first": first, "stop": stop})
        return {str(p): Decimal(m) for p, m in await cur.fetchall()}
