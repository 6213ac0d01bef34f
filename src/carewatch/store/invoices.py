"""Invoices, their matches and budget checks: what the purchase-to-pay step reads and writes.

Runs inside the caller's transaction (the batch's, or a sweep's). Nothing here decides anything:
the three-way match and the alerts are the domain's (domain/invoice_match.py, domain/purchase_alerts.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from carewatch.domain.invoice_match import InvoiceMatch
from carewatch.domain.model import DEFAULT_TIMEZONE, Package, ShiftLedger
from carewatch.domain.money import round_half_up
from carewatch.store.kept import database_of
from carewatch.store.package_cache import package_cache
from carewatch.store.rows import InvoiceRecord, invoice_from_row, ledger_from_row, package_from_row

Window = tuple[str, datetime, datetime]  # package_id, start (inclusive), end (exclusive)

_PACKAGES = """
SELECT p.*, p.xmin::text AS row_version, COALESCE(c.timezone, %s) AS timezone,
       EXISTS (SELECT 1 FROM invoices i WHERE i.package_id = p.package_id) AS invoiced
FROM packages p LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id WHERE p.package_id = ANY(%s)"""

# What a cached package is checked against: its row version and its commissioner's time zone.
_PACKAGE_VERSIONS = """
SELECT p.package_id, p.xmin::text, COALESCE(c.timezone, %s),
       EXISTS (SELECT 1 FROM invoices i WHERE i.package_id = p.package_id)
FROM packages p LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id WHERE p.package_id = ANY(%s)"""


async def packages(conn: AsyncConnection[Any], ids: Collection[str],
                   default_tz: str = DEFAULT_TIMEZONE) -> tuple[dict[str, Package], set[str]]:
    """These packages, and which of them have invoices.

    A package read before is taken from `package_cache` when its row version and its commissioner's
    time zone are those it was read with (one light query); only the others are read whole."""
    cur = await conn.execute(_PACKAGE_VERSIONS, (default_tz, sorted(ids)))
    versions = await cur.fetchall()
    database = database_of(conn)
    found: dict[str, Package] = {}
    invoiced: set[str] = set()
    misses: list[str] = []
    for pid, version, tz, has_invoices in versions:
        if has_invoices:
            invoiced.add(pid)
        cached = package_cache.get((database, pid, version, tz))
        if cached is None:
            misses.append(pid)
        else:
            found[pid] = cached
    if misses:
        async with conn.cursor(row_factory=dict_row) as dcur:
            await dcur.execute(_PACKAGES, (default_tz, misses))
            rows = await dcur.fetchall()
        for r in rows:
            package = package_from_row(r).package
            found[r["package_id"]] = package
            package_cache.put((database, r["package_id"], r["row_version"], r["timezone"]), package)
            if r["invoiced"]:
                invoiced.add(r["package_id"])
    return found, invoiced


async def purchase_flags(conn: AsyncConnection[Any], ids: Collection[str],
                         checked_since: datetime) -> tuple[set[str], set[str]]:
    """Of these packages: which have invoices, and which had their budget checked since `checked_since`
    (one query, reading no package row)."""
    cur = await conn.execute(
        "SELECT t.id, EXISTS (SELECT 1 FROM invoices i WHERE i.package_id = t.id),"
        " EXISTS (SELECT 1 FROM budget_checks b WHERE b.package_id = t.id AND b.checked_at > %s)"
        " FROM unnest(%s::text[]) AS t(id)", (checked_since, sorted(ids)))
    rows = await cur.fetchall()
    return {pid for pid, invoiced, _ in rows if invoiced}, {pid for pid, _, fresh in rows if fresh}


async def invoices_of(conn: AsyncConnection[Any], package_ids: Collection[str]) -> list[InvoiceRecord]:
    """The latest version of every invoice of these packages."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM invoices WHERE package_id = ANY(%s) ORDER BY invoice_id",
                          (sorted(package_ids),))
        return [invoice_from_row(r) for r in await cur.fetchall()]


@dataclass(frozen=True)
class VersionKey:
    submitted_at: datetime
    event_id: str


async def latest_before(conn: AsyncConnection[Any], invoice_ids: Collection[str],
                        batch_event_ids: Collection[str]) -> dict[str, VersionKey]:
    """Per invoice, the latest version stored by other events than the batch's: what the batch's
    versions have to be newer than to replace it."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (invoice_id) invoice_id, submitted_at, event_id FROM invoice_versions"
        " WHERE invoice_id = ANY(%s) AND NOT (event_id = ANY(%s))"
        " ORDER BY invoice_id, submitted_at DESC, event_id DESC",
        (sorted(invoice_ids), sorted(batch_event_ids)))
    return {str(i): VersionKey(at, str(e)) for i, at, e in await cur.fetchall()}


async def ledgers_in(conn: AsyncConnection[Any], windows: Sequence[Window]) -> dict[Window, list[ShiftLedger]]:
    """The ledgers of each package's shifts starting in its window, in one query."""
    found: dict[Window, list[ShiftLedger]] = {w: [] for w in windows}
    if not windows:
        return found
    distinct = list(dict.fromkeys(windows))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT w.n, l.* FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY"
            " AS w(package_id, start_at, end_at, n)"
            " JOIN shift_ledger l ON l.package_id = w.package_id AND l.starts_at >= w.start_at"
            " AND l.starts_at < w.end_at ORDER BY w.n, l.starts_at, l.shift_id",
            ([w[0] for w in distinct], [w[1] for w in distinct], [w[2] for w in distinct]))
        for row in await cur.fetchall():
            n = int(row.pop("n"))
            found[distinct[n - 1]].append(ledger_from_row(row))
    return found


@dataclass(frozen=True)
class BudgetCheck:
    """The level a package's budget was last judged at (None: within budget - contingency), and when."""

    level: str | None
    checked_at: datetime


async def budget_inputs(conn: AsyncConnection[Any],
                        windows: Sequence[Window]) -> dict[Window, tuple[int, BudgetCheck | None]]:
    """Per package window: the summed rate seconds (spend x 3600) of its shifts starting in it, and its last
    budget check (None if never judged), in one query."""
    if not windows:
        return {}
    distinct = list(dict.fromkeys(windows))
    cur = await conn.execute(
        "SELECT w.n, COALESCE((SELECT sum(l.rate_seconds) FROM shift_ledger l WHERE l.package_id = w.package_id"
        " AND l.starts_at >= w.start_at AND l.starts_at < w.end_at), 0), b.level, b.checked_at"
        " FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY"
        " AS w(package_id, start_at, end_at, n) LEFT JOIN budget_checks b ON b.package_id = w.package_id",
        ([w[0] for w in distinct], [w[1] for w in distinct], [w[2] for w in distinct]))
    return {distinct[int(n) - 1]: (int(rs), None if at is None else BudgetCheck(level, at))
            for n, rs, level, at in await cur.fetchall()}


async def save_matches(conn: AsyncConnection[Any], matches: Sequence[InvoiceMatch], now: datetime) -> None:
    """The latest versions' matches, for lists filtered by status and for the statements."""
    if not matches:
        return
    await conn.execute(
        "UPDATE invoices i SET status = m.status, ordered_pence = m.ordered, delivered_pence = m.delivered,"
        " matched_pence = m.matched, matched_at = %s"
        " FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[])"
        " AS m(invoice_id, status, ordered, delivered, matched) WHERE i.invoice_id = m.invoice_id",
        (now, [m.invoice_id for m in matches], [m.status.value for m in matches],
         [round_half_up(m.ordered_spend_pence) for m in matches],
         [round_half_up(m.delivered_spend_pence) for m in matches], [m.matched_pence for m in matches]))


async def record_budget_checks(conn: AsyncConnection[Any], checks: Sequence[tuple[str, str | None, int]],
                               now: datetime) -> None:
    """(package, level, forecast pence) judged now."""
    if not checks:
        return
    await conn.execute(
        "INSERT INTO budget_checks (package_id, level, forecast_pence, checked_at)"
        " SELECT * , %s FROM unnest(%s::text[], %s::text[], %s::numeric[])"
        " ON CONFLICT (package_id) DO UPDATE SET level = EXCLUDED.level,"
        " forecast_pence = EXCLUDED.forecast_pence, checked_at = EXCLUDED.checked_at",
        (now, [c[0] for c in checks], [c[1] for c in checks], [c[2] for c in checks]))


async def budgets_unchecked_since(conn: AsyncConnection[Any], since: datetime, limit: int) -> list[str]:
    """Packages whose budget nobody has judged since `since` (oldest first), for the daily check."""
    cur = await conn.execute(
        "SELECT p.package_id FROM packages p LEFT JOIN budget_checks b ON b.package_id = p.package_id"
        " WHERE b.checked_at IS NULL OR b.checked_at < %s ORDER BY b.checked_at NULLS FIRST, p.package_id"
        " LIMIT %s", (since, limit))
    return [str(r[0]) for r in await cur.fetchall()]
