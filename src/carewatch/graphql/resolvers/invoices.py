"""invoice(id): the invoice row, its package's ledgers for the period, and the domain's match."""

from __future__ import annotations

from fractions import Fraction

from carewatch.domain.invoice_match import Invoice as InvoiceValue
from carewatch.domain.invoice_match import InvoiceLineInput, three_way_match
from carewatch.graphql.context import Info
from carewatch.graphql.types.invoice import Invoice
from carewatch.store import read_models
from carewatch.store.rows import InvoiceRecord, period_bounds


def _value(record: InvoiceRecord) -> InvoiceValue:
    return InvoiceValue(
        invoice_id=record.invoice_id,
        package_id=record.package_id,
        provider_id=record.provider_id,
        period_start=record.period_start,
        period_end=record.period_end,
        total_pence=record.total_pence,
        lines=tuple(InvoiceLineInput(minutes=Fraction(line.minutes), amount_pence=line.amount_pence,
                                     shift_id=line.shift_id, service_type=line.service_type)
                    for line in record.lines),
    )


async def invoice(info: Info, invoice_id: str) -> Invoice | None:
    ctx = info.context
    record = await read_models.invoice_by_id(ctx.pool, ctx.viewer, invoice_id)
    if record is None:
        return None
    package = await ctx.loaders.packages.load(record.package_id)
    if package is None:  # no order to match against: the package is unknown or out of scope
        return None
    # Proof of delivery: the package's shifts starting within the invoice period, in local days.
    start, end = period_bounds(record.period_start, record.period_end, package.package.timezone)
    ledgers = await read_models.ledgers_of_package(ctx.pool, record.package_id, start, end)
    match = three_way_match(
        package.package,
        _value(record),
        shift_payable_seconds={lg.shift_id: lg.payable_seconds for lg in ledgers},
        shifts_with_attendance={lg.shift_id for lg in ledgers if lg.attendance or lg.actual_seconds > 0},
        delivered_rate_seconds=sum(lg.rate_seconds for lg in ledgers),
        shift_rate_seconds={lg.shift_id: lg.rate_seconds for lg in ledgers},
    )
    return Invoice.from_row(record, match)
