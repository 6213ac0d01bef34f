"""The API's reads: every query takes the viewer and returns only what it may see.

Results are domain values (store/rows.py). Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from carewatch.domain.delivery import LedgerTotals
from carewatch.domain.model import Shift, ShiftLedger
from carewatch.store.rows import (
    InvoiceRecord,
    PackageRecord,
    Row,
    invoice_from_row,
    ledger_from_row,
    overrides,
    package_from_row,
    shift_from_row,
)
from carewatch.store.scope import Viewer, scope_condition

# The package's local zone is its commissioner's; the deployment default where none is known.
_PACKAGE_SELECT = """
SELECT p.*, COALESCE(c.timezone, %s) AS timezone, ct.thresholds AS commissioner_thresholds
FROM packages p LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id
LEFT JOIN commissioner_thresholds ct ON ct.commissioner_id = p.commissioner_id
WHERE {scope} AND {condition}
"""

_SHIFT_SELECT = """
SELECT s.*
FROM shifts s LEFT JOIN packages p ON p.package_id = s.package_id
WHERE {scope} AND {condition}
"""


@dataclass(frozen=True)
class ShiftQuery:
    """ShiftFilter as the store sees it; `cancelled` narrows by the one status SQL can decide."""

    package_id: str | None = None
    provider_id: str | None = None
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    cancelled: bool | None = None


Window = tuple[str, datetime, datetime]  # package_id, start (inclusive), end (exclusive)


async def _fetch(
    pool: AsyncConnectionPool, query: sql.SQL | sql.Composed, params: Sequence[object]
) -> list[Row]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def packages_by_ids(
    pool: AsyncConnectionPool, viewer: Viewer, ids: Sequence[str], default_tz: str
) -> dict[str, PackageRecord]:
    scope, scope_params = scope_condition(viewer, "p.commissioner_id", "p.provider_id")
    query = sql.SQL(_PACKAGE_SELECT).format(scope=scope, condition=sql.SQL("p.package_id = ANY(%s)"))
    rows = await _fetch(pool, query, [default_tz, *scope_params, list(ids)])
    return {r["package_id"]: package_from_row(r) for r in rows}


async def list_packages(
    pool: AsyncConnectionPool,
    viewer: Viewer,
    *,
    commissioner_id: str | None,
    provider_id: str | None,
    after_id: str | None,
    limit: int,
    default_tz: str,
) -> list[PackageRecord]:
    """Packages in id order after `after_id`, at most `limit`."""
    scope, scope_params = scope_condition(viewer, "p.commissioner_id", "p.provider_id")
    condition = sql.SQL(
        "(%s::text IS NULL OR p.commissioner_id = %s) AND (%s::text IS NULL OR p.provider_id = %s)"
        " AND (%s::text IS NULL OR p.package_id > %s)"
    )
    query = sql.SQL(_PACKAGE_SELECT + " ORDER BY p.package_id LIMIT %s").format(
        scope=scope, condition=condition)
    params: list[object] = [default_tz, *scope_params, commissioner_id, commissioner_id,
                            provider_id, provider_id, after_id, after_id, limit]
    return [package_from_row(r) for r in await _fetch(pool, query, params)]


async def shifts_by_ids(pool: AsyncConnectionPool, viewer: Viewer, ids: Sequence[str]) -> dict[str, Shift]:
    scope, scope_params = scope_condition(viewer, "p.commissioner_id", "s.provider_id")
    query = sql.SQL(_SHIFT_SELECT).format(scope=scope, condition=sql.SQL("s.shift_id = ANY(%s)"))
    rows = await _fetch(pool, query, [*scope_params, list(ids)])
    return {r["shift_id"]: shift_from_row(r) for r in rows}


async def list_shifts(
    pool: AsyncConnectionPool,
    viewer: Viewer,
    query_filter: ShiftQuery,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Shift]:
    """Shifts in (starts_at, shift_id) order after the `after` key, at most `limit`."""
    f = query_filter
    scope, scope_params = scope_condition(viewer, "p.commissioner_id", "s.provider_id")
    condition = sql.SQL(
        "(%s::text IS NULL OR s.package_id = %s) AND (%s::text IS NULL OR s.provider_id = %s)"
        " AND (%s::timestamptz IS NULL OR s.starts_at >= %s)"
        " AND (%s::timestamptz IS NULL OR s.starts_at < %s)"
        " AND (%s::boolean IS NULL OR (s.cancelled_by IS NOT NULL) = %s)"
        " AND (%s::timestamptz IS NULL OR (s.starts_at, s.shift_id) > (%s::timestamptz, %s::text))"
    )
    after_at, after_id = after if after else (None, None)
    query = sql.SQL(_SHIFT_SELECT + " ORDER BY s.starts_at, s.shift_id LIMIT %s").format(
        scope=scope, condition=condition)
    params: list[object] = [
        *scope_params,
        f.package_id, f.package_id, f.provider_id, f.provider_id,
        f.starts_from, f.starts_from, f.starts_before, f.starts_before,
        f.cancelled, f.cancelled, after_at, after_at, after_id, limit,
    ]
    return [shift_from_row(r) for r in await _fetch(pool, query, params)]


async def threshold_overrides(
    pool: AsyncConnectionPool, package_ids: Sequence[str]
) -> dict[str, tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]]:
    """(commissioner's, package's) alert threshold overrides of (already scoped) packages, and nothing else."""
    query = sql.SQL(
        "SELECT p.package_id, ct.thresholds AS commissioner_thresholds, p.thresholds FROM packages p"
        " LEFT JOIN commissioner_thresholds ct ON ct.commissioner_id = p.commissioner_id"
        " WHERE p.package_id = ANY(%s)")
    return {r["package_id"]: (overrides(r["commissioner_thresholds"]), overrides(r["thresholds"]))
            for r in await _fetch(pool, query, [list(package_ids)])}


async def ledgers_by_shift_ids(pool: AsyncConnectionPool, ids: Sequence[str]) -> dict[str, ShiftLedger]:
    """Ledgers of shifts the caller already read through a scoped query."""
    query = sql.SQL("SELECT * FROM shift_ledger WHERE shift_id = ANY(%s)")
    return {r["shift_id"]: ledger_from_row(r) for r in await _fetch(pool, query, [list(ids)])}


async def ledgers_of_package(
    pool: AsyncConnectionPool, package_id: str, start: datetime, end: datetime
) -> list[ShiftLedger]:
    """Ledgers of one (already scoped) package's shifts starting in [start, end)."""
    query = sql.SQL(
        "SELECT * FROM shift_ledger WHERE package_id = %s AND starts_at >= %s AND starts_at < %s"
        " ORDER BY starts_at, shift_id"
    )
    return [ledger_from_row(r) for r in await _fetch(pool, query, [package_id, start, end])]


async def window_sums(pool: AsyncConnectionPool, windows: Sequence[Window]) -> dict[Window, LedgerTotals]:
    """Ledger sums for many (package, window) pairs in one query; callers scope the packages."""
    if not windows:
        return {}
    query = sql.SQL("""
        SELECT w.package_id, w.start_at, w.end_at,
               COALESCE(sum(l.planned_seconds), 0) AS planned_seconds,
               COALESCE(sum(l.scheduled_seconds), 0) AS scheduled_seconds,
               COALESCE(sum(l.actual_seconds), 0) AS actual_seconds,
               COALESCE(sum(l.payable_seconds), 0) AS payable_seconds,
               COALESCE(sum(l.overrun_seconds), 0) AS overrun_seconds,
               COALESCE(sum(l.unverified_seconds), 0) AS unverified_seconds,
               COALESCE(sum(l.provider_cancelled_seconds), 0) AS provider_cancelled_seconds,
               COALESCE(sum(l.rate_seconds), 0) AS rate_seconds
        FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(package_id, start_at, end_at)
        LEFT JOIN shift_ledger l
               ON l.package_id = w.package_id AND l.starts_at >= w.start_at AND l.starts_at < w.end_at
        GROUP BY w.package_id, w.start_at, w.end_at
    """)
    distinct = list(dict.fromkeys(windows))
    params = [[w[0] for w in distinct], [w[1] for w in distinct], [w[2] for w in distinct]]
    found: dict[tuple[str, float, float], LedgerTotals] = {}
    for r in await _fetch(pool, query, params):
        found[(r["package_id"], r["start_at"].timestamp(), r["end_at"].timestamp())] = LedgerTotals(
            **{k: int(v) for k, v in r.items() if k not in ("package_id", "start_at", "end_at")})
    # Match by instant, not by tz-aware object identity: the database hands instants back in UTC.
    return {w: found.get((w[0], w[1].timestamp(), w[2].timestamp()), LedgerTotals()) for w in windows}


async def invoice_by_id(pool: AsyncConnectionPool, viewer: Viewer, invoice_id: str) -> InvoiceRecord | None:
    scope, scope_params = scope_condition(viewer, "p.commissioner_id", "i.provider_id")
    query = sql.SQL(
        "SELECT i.* FROM invoices i LEFT JOIN packages p ON p.package_id = i.package_id"
        " WHERE {scope} AND i.invoice_id = %s"
    ).format(scope=scope)
    rows = await _fetch(pool, query, [*scope_params, invoice_id])
    return invoice_from_row(rows[0]) if rows else None


@dataclass(frozen=True)
class InvoiceQuery:
    """InvoiceFilter as the store sees it: period_start within [period_from, period_before)."""

    package_id: str | None = None
    provider_id: str | None = None
    commissioner_id: str | None = None
    status: str | None = None
    period_from: date | None = None
    period_before: date | None = None


async def list_invoices(pool: AsyncConnectionPool, viewer: Viewer, f: InvoiceQuery, *,
                        after: tuple[date, str] | None, limit: int) -> list[InvoiceRecord]:
    """Latest versions in (period_start, invoice_id) order after the `after` key, at most `limit`."""
    scope, scope_params = scope_condition(viewer, "p.commissioner_id", "i.provider_id")
    after_start, after_id = after if after else (None, None)
    query = sql.SQL(
        "SELECT i.* FROM invoices i LEFT JOIN packages p ON p.package_id = i.package_id WHERE {scope}"
        " AND (%s::text IS NULL OR i.package_id = %s) AND (%s::text IS NULL OR i.provider_id = %s)"
        " AND (%s::text IS NULL OR p.commissioner_id = %s) AND (%s::text IS NULL OR i.status = %s)"
        " AND (%s::date IS NULL OR i.period_start >= %s) AND (%s::date IS NULL OR i.period_start < %s)"
        " AND (%s::date IS NULL OR (i.period_start, i.invoice_id) > (%s::date, %s::text))"
        " ORDER BY i.period_start, i.invoice_id LIMIT %s").format(scope=scope)
    params: list[object] = [*scope_params, f.package_id, f.package_id, f.provider_id, f.provider_id,
                            f.commissioner_id, f.commissioner_id, f.status, f.status, f.period_from,
                            f.period_from, f.period_before, f.period_before, after_start, after_start, after_id,
                            limit]
    return [invoice_from_row(r) for r in await _fetch(pool, query, params)]


async def invoice_history(pool: AsyncConnectionPool, invoice_id: str, current_event_id: str) -> list[InvoiceRecord]:
    """Earlier versions of an (already scoped) invoice, newest first: every version but the current."""
    query = sql.SQL("SELECT * FROM invoice_versions WHERE invoice_id = %s AND event_id <> %s"
                    " ORDER BY submitted_at DESC, event_id DESC")
    return [invoice_from_row(r) for r in await _fetch(pool, query, [invoice_id, current_event_id])]


async def count_rejected_events(pool: AsyncConnectionPool) -> dict[tuple[str, str], int]:
    """Rejected input held in the database, by (stage, source): a gauge read at scrape time."""
    rows = await _fetch(pool, sql.SQL(
        "SELECT stage, source, count(*) AS n FROM rejected_events GROUP BY stage, source"), [])
    return {(r["stage"], r["source"]): int(r["n"]) for r in rows}
