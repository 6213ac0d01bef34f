"""invoice(id), invoices(filter, first, after) and CarePackage.invoices: stored invoices, matched three
ways by the domain against their package's ledgers for the period (read in one query per page)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from carewatch.domain.calendar import period_bounds, zone
from carewatch.domain.invoice_match import Invoice as InvoiceValue
from carewatch.domain.invoice_match import InvoiceLineInput, exact_minutes, match_against_ledgers
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.graphql.pagination import decode_cursor, encode_cursor, page_size
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.invoice import Invoice, InvoiceFilter
from carewatch.store import read_models
from carewatch.store.invoices import Window, ledgers_in
from carewatch.store.rows import InvoiceRecord


def invoice_value(record: InvoiceRecord) -> InvoiceValue:
    return InvoiceValue(
        invoice_id=record.invoice_id,
        package_id=record.package_id,
        provider_id=record.provider_id,
        period_start=record.period_start,
        period_end=record.period_end,
        total_pence=record.total_pence,
        lines=tuple(InvoiceLineInput(minutes=exact_minutes(line.minutes), amount_pence=line.amount_pence,
                                     shift_id=line.shift_id, service_type=line.service_type)
                    for line in record.lines),
    )


async def matched(info: Info, records: Sequence[InvoiceRecord]) -> list[Invoice]:
    """Each invoice beside its proof of delivery: the package's shifts starting within the invoice period
    (local days). An invoice whose package is out of scope or unknown has no order to match: left out."""
    ctx = info.context
    packages = await ctx.loaders.packages.load_many([r.package_id for r in records])
    found: list[tuple[InvoiceRecord, Window]] = []
    for record, package in zip(records, packages, strict=True):
        if package is not None:
            p = package.package
            start, end = period_bounds(record.period_start, record.period_end, zone(p.timezone))
            found.append((record, (record.package_id, start, end)))
    async with ctx.pool.connection() as conn:
        ledgers = await ledgers_in(conn, [w for _, w in found])
    by_id = {p.package.package_id: p for p in packages if p is not None}
    return [Invoice.from_row(record, match_against_ledgers(by_id[record.package_id].package,
                                                           invoice_value(record), ledgers[window]))
            for record, window in found]


async def invoice(info: Info, invoice_id: str) -> Invoice | None:
    ctx = info.context
    record = await read_models.invoice_by_id(ctx.pool, ctx.viewer, invoice_id)
    if record is None:
        return None
    found = await matched(info, [record])
    return found[0] if found else None


def _after(after: str | None) -> tuple[date, str] | None:
    if after is None:
        return None
    start, invoice_id = decode_cursor(after, 2)
    try:
        return date.fromisoformat(start), invoice_id
    except ValueError as exc:
        raise ClientError("after is not a cursor this API gave out") from exc


async def invoices(info: Info, f: InvoiceFilter | None, first: int | None, after: str | None,
                   package_id: str | None = None) -> Connection[Invoice]:
    """Latest versions in (periodStart, id) order; `package_id` narrows to one package (CarePackage.invoices)."""
    size = page_size(first)
    f = f or InvoiceFilter()
    if f.from_ is not None and f.to is not None and f.to <= f.from_:
        raise ClientError("to must be after from")
    query = read_models.InvoiceQuery(
        package_id=package_id or (str(f.package_id) if f.package_id is not None else None),
        provider_id=str(f.provider_id) if f.provider_id is not None else None,
        commissioner_id=str(f.commissioner_id) if f.commissioner_id is not None else None,
        status=f.status.upper() if f.status else None, period_from=f.from_, period_before=f.to)
    if package_id is not None and f.package_id is not None and str(f.package_id) != package_id:
        return Connection.of([], False)
    ctx = info.context
    rows = await read_models.list_invoices(ctx.pool, ctx.viewer, query, after=_after(after), limit=size + 1)
    page = await matched(info, rows[:size])
    return Connection.of([(encode_cursor([i.period_start.isoformat(), str(i.id)]), i) for i in page],
                         has_next_page=len(rows) > size)
