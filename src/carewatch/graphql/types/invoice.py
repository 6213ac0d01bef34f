# mypy: disable-error-code="untyped-decorator"
"""Invoice: what a provider billed, matched three ways against order and proof of delivery."""

from datetime import date, datetime

import strawberry

from carewatch.domain.invoice_match import InvoiceMatch, LineResult
from carewatch.domain.invoice_match import LineFinding as LineFindingValue
from carewatch.domain.money import round_half_up
from carewatch.graphql.context import Info
from carewatch.store import read_models
from carewatch.store.rows import InvoiceRecord

LineFinding = strawberry.enum(LineFindingValue, name="LineFinding",
                              description="OK, UNPROVEN (no attendance behind it) or OVERSTATED.")


@strawberry.type(description="One invoice line beside the delivery proven for its shift.")
class InvoiceLine:
    shift_id: strawberry.ID | None
    service_type: str | None
    invoiced_minutes: float
    payable_minutes: float | None = strawberry.field(
        description="Null when the line names no shift of the package starting in the invoice period.")
    difference_minutes: float
    amount_pence: int
    finding: LineFinding  # type: ignore[valid-type]

    @classmethod
    def from_domain(cls, line: LineResult) -> "InvoiceLine":
        return cls(
            shift_id=strawberry.ID(line.shift_id) if line.shift_id is not None else None,
            service_type=line.service_type,
            invoiced_minutes=float(line.invoiced_minutes),
            payable_minutes=None if line.payable_minutes is None else float(line.payable_minutes),
            difference_minutes=float(line.difference_minutes),
            amount_pence=line.amount_pence,
            finding=line.finding,
        )


@strawberry.input(description="Narrow invoices; from/to bound periodStart as [from, to) in local dates.")
class InvoiceFilter:
    package_id: strawberry.ID | None = None
    provider_id: strawberry.ID | None = None
    commissioner_id: strawberry.ID | None = None
    status: str | None = strawberry.field(default=None, description="MATCHED or DISPUTED.")
    from_: date | None = strawberry.field(default=None, name="from")
    to: date | None = None


@strawberry.type(description="One line as billed in an earlier version of an invoice.")
class InvoiceVersionLine:
    shift_id: strawberry.ID | None
    service_type: str | None
    invoiced_minutes: float
    amount_pence: int


@strawberry.type(description="An earlier version of an invoice, replaced by the provider's later correction.")
class InvoiceVersion:
    submitted_at: datetime
    period_start: date
    period_end: date
    invoiced_pence: int
    lines: list[InvoiceVersionLine]

    @classmethod
    def from_row(cls, record: InvoiceRecord) -> "InvoiceVersion":
        return cls(submitted_at=record.submitted_at, period_start=record.period_start,
                   period_end=record.period_end, invoiced_pence=record.total_pence,
                   lines=[InvoiceVersionLine(shift_id=None if line.shift_id is None else strawberry.ID(line.shift_id),
                                             service_type=line.service_type, invoiced_minutes=float(line.minutes),
                                             amount_pence=line.amount_pence) for line in record.lines])


@strawberry.type(description="A provider's invoice (its latest version) and its three-way match.")
class Invoice:
    record: strawberry.Private[InvoiceRecord]
    id: strawberry.ID
    package_id: strawberry.ID
    provider_id: strawberry.ID
    period_start: date
    period_end: date
    submitted_at: datetime
    invoiced_pence: int
    ordered_pence: int = strawberry.field(
        description="The care plan's spend for the period, prorated by days.")
    delivered_pence: int = strawberry.field(
        description="Spend proven by attendance for shifts starting in the period.")
    matched_pence: int = strawberry.field(description="min(invoiced, delivered, ordered + 10%).")
    status: str = strawberry.field(description="MATCHED or DISPUTED.")
    reasons: list[str] = strawberry.field(description="Why it is disputed, and other discrepancies.")
    lines: list[InvoiceLine]

    @classmethod
    def from_row(cls, record: InvoiceRecord, match: InvoiceMatch) -> "Invoice":
        return cls(
            record=record,
            id=strawberry.ID(record.invoice_id),
            package_id=strawberry.ID(record.package_id),
            provider_id=strawberry.ID(record.provider_id),
            period_start=record.period_start,
            period_end=record.period_end,
            submitted_at=record.submitted_at,
            invoiced_pence=match.invoiced_pence,
            ordered_pence=round_half_up(match.ordered_spend_pence),
            delivered_pence=round_half_up(match.delivered_spend_pence),
            matched_pence=match.matched_pence,
            status=match.status.value,
            reasons=list(match.reasons),
            lines=[InvoiceLine.from_domain(line) for line in match.lines],
        )

    @strawberry.field(description="Earlier versions, newest first: what the provider's corrections replaced.")
    async def history(self, info: Info) -> list[InvoiceVersion]:
        versions = await read_models.invoice_history(info.context.pool, self.record.invoice_id,
                                                     self.record.event_id)
        return [InvoiceVersion.from_row(v) for v in versions]
