"""Purchase to pay: the three-way match of an invoice against the order (plan) and proof of delivery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from carewatch.domain.budget import plan_weekly_spend
from carewatch.domain.delivery import plan_minutes_per_week
from carewatch.domain.model import Package, ShiftLedger
from carewatch.domain.money import round_half_up, spend_pence

ORDER_HEADROOM = Fraction(11, 10)  # the provider may bill up to 10% over the order
TOLERANCE_FLOOR_PENCE = 100
TOLERANCE_SHARE = Fraction(1, 100)
OVERSTATED_AFTER_MINUTES = 1


class LineFinding(StrEnum):
    OK = "OK"
    UNPROVEN = "UNPROVEN"  # names no shift, a shift outside the package or period, or one with no attendance
    OVERSTATED = "OVERSTATED"  # bills more than the shift's payable minutes + 1


class MatchStatus(StrEnum):
    MATCHED = "MATCHED"
    DISPUTED = "DISPUTED"


def exact_minutes(value: float | int | str | Decimal | Fraction) -> Fraction:
    """Minutes as written in the invoice (JSON numbers go through their decimal text, not binary floats)."""
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    return Fraction(value)


@dataclass(frozen=True)
class InvoiceLineInput:
    minutes: Fraction
    amount_pence: int
    shift_id: str | None = None
    service_type: str | None = None


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    package_id: str
    provider_id: str
    period_start: date
    period_end: date  # inclusive
    total_pence: int
    lines: tuple[InvoiceLineInput, ...] = ()


@dataclass(frozen=True)
class LineResult:
    """One invoice line beside its proof of delivery; differences are invoiced minus delivered."""

    index: int
    shift_id: str | None
    service_type: str | None
    invoiced_minutes: Fraction
    payable_minutes: Fraction | None  # None when the line names no shift of the package in the period
    difference_minutes: Fraction
    amount_pence: int
    delivered_spend_pence: Fraction | None  # known when the caller passes the shift's rate seconds
    difference_pence: Fraction | None
    finding: LineFinding


@dataclass(frozen=True)
class InvoiceMatch:
    invoice_id: str
    package_id: str
    status: MatchStatus
    invoiced_pence: int
    lines_total_pence: int
    ordered_minutes: Fraction
    ordered_spend_pence: Fraction
    delivered_minutes: Fraction
    delivered_spend_pence: Fraction
    tolerance_pence: Fraction
    matched_pence: int  # min(invoiced, delivered, ordered + 10%), rounded half up
    lines: tuple[LineResult, ...]
    reasons: tuple[str, ...]  # why it is disputed (and any other discrepancy worth a look)

    @property
    def disputed(self) -> bool:
        return self.status is MatchStatus.DISPUTED


def order_days(package_start: date, package_end: date, period_start: date, period_end: date) -> int:
    """Days of the invoice period inside the package period (both inclusive): the plan orders nothing outside it."""
    first = max(period_start, package_start)
    last = min(period_end, package_end)
    return max(0, (last - first).days + 1)


def _order_days(package: Package, invoice: Invoice) -> int:
    return order_days(package.period_start, package.period_end, invoice.period_start, invoice.period_end)


def line_unproven(shift_id: str | None, shift_payable_seconds: Mapping[str, int],
                  shifts_with_attendance: set[str]) -> bool:
    """A line naming no shift of the package in the period, or one nobody attended."""
    return shift_id is None or shift_id not in shift_payable_seconds or shift_id not in shifts_with_attendance


def match_figures(total_pence: int, delivered_rate_seconds: int, weekly_rate_minutes: int, days: int,
                  any_unproven: bool) -> tuple[int, bool]:
    """(matched pence rounded half up, disputed): the match rule of DOMAIN.md in exact integer arithmetic
    (statements run it for thousands of invoices at once).

    matched = min(invoiced, delivered, ordered + 10%); disputed when invoiced > delivered + max(100p, 1%)
    or a line is unproven. Delivered spend is rate seconds / 3600; the ordered spend of `days` is plan
    weekly spend x 60 (`weekly_rate_minutes`) x days / 420.
    """
    headroom, share = ORDER_HEADROOM, TOLERANCE_SHARE
    amounts = ((total_pence, 1), (delivered_rate_seconds, 3600),
               (weekly_rate_minutes * days * headroom.numerator, 420 * headroom.denominator))
    num, den = amounts[0]
    for n, d in amounts[1:]:
        if n * den < num * d:
            num, den = n, d
    matched = (2 * num + den) // (2 * den)  # half up; every amount here is >= 0
    # invoiced > D / 3600 + max(floor, D x share / 3600), times 3600 x share's denominator.
    d_scaled = delivered_rate_seconds * share.denominator
    over = total_pence * 3600 * share.denominator > d_scaled + max(
        TOLERANCE_FLOOR_PENCE * 3600 * share.denominator, delivered_rate_seconds * share.numerator)
    return matched, over or any_unproven


def _line_results(
    invoice: Invoice,
    shift_payable_seconds: Mapping[str, int],
    shifts_with_attendance: set[str],
    shift_rate_seconds: Mapping[str, int] | None,
) -> tuple[LineResult, ...]:
    # Several lines may bill the same shift: their minutes are judged together.
    billed: dict[str, Fraction] = {}
    for line in invoice.lines:
        if line.shift_id is not None:
            billed[line.shift_id] = billed.get(line.shift_id, Fraction(0)) + line.minutes
    results = []
    for index, line in enumerate(invoice.lines):
        sid = line.shift_id
        known = sid is not None and sid in shift_payable_seconds
        payable = Fraction(shift_payable_seconds[sid], 60) if sid is not None and known else None
        delivered = None
        if sid is not None and known and shift_rate_seconds is not None and sid in shift_rate_seconds:
            delivered = spend_pence(shift_rate_seconds[sid])
        if sid is None or payable is None or line_unproven(sid, shift_payable_seconds, shifts_with_attendance):
            finding = LineFinding.UNPROVEN
        elif billed[sid] > payable + OVERSTATED_AFTER_MINUTES:
            finding = LineFinding.OVERSTATED
        else:
            finding = LineFinding.OK
        results.append(LineResult(
            index=index,
            shift_id=sid,
            service_type=line.service_type,
            invoiced_minutes=line.minutes,
            payable_minutes=payable,
            difference_minutes=line.minutes - (payable or 0),
            amount_pence=line.amount_pence,
            delivered_spend_pence=delivered,
            difference_pence=None if delivered is None else line.amount_pence - delivered,
            finding=finding,
        ))
    return tuple(results)


def three_way_match(
    package: Package,
    invoice: Invoice,
    shift_payable_seconds: Mapping[str, int],
    shifts_with_attendance: set[str],
    delivered_rate_seconds: int,
    shift_rate_seconds: Mapping[str, int] | None = None,
) -> InvoiceMatch:
    """Match `invoice` against the plan for its period and the delivery proven for it.

    `shift_payable_seconds` holds the package's shifts starting in the invoice period;
    `delivered_rate_seconds` is their summed rate seconds (exact delivered spend x 3600).
    `shift_rate_seconds`, when given, prices each line's delivery too.
    """
    days = _order_days(package, invoice)
    ordered_spend = plan_weekly_spend(package) * days / 7
    ordered_minutes = Fraction(plan_minutes_per_week(package) * days, 7)
    delivered = spend_pence(delivered_rate_seconds)
    tolerance = max(Fraction(TOLERANCE_FLOOR_PENCE), delivered * TOLERANCE_SHARE)
    lines = _line_results(invoice, shift_payable_seconds, shifts_with_attendance, shift_rate_seconds)

    reasons: list[str] = []
    if invoice.total_pence > delivered + tolerance:
        reasons.append(f"invoiced {invoice.total_pence}p exceeds delivered {round_half_up(delivered)}p "
                       f"by more than the {round_half_up(tolerance)}p tolerance")
    unproven = [r for r in lines if r.finding is LineFinding.UNPROVEN]
    if unproven:
        reasons.append("unproven lines: " + ", ".join(r.shift_id or f"line {r.index + 1}" for r in unproven))
    matched_pence, disputed = match_figures(invoice.total_pence, delivered_rate_seconds,
                                            int(plan_weekly_spend(package) * 60), days, bool(unproven))
    status = MatchStatus.DISPUTED if disputed else MatchStatus.MATCHED
    # Overstated lines and a total that differs from its lines do not dispute the invoice by
    # themselves (the matched amount is capped anyway), but the finance officer should see them.
    overstated = [r for r in lines if r.finding is LineFinding.OVERSTATED]
    if overstated:
        reasons.append("overstated lines: " + ", ".join(str(r.shift_id) for r in overstated))
    lines_total = sum(line.amount_pence for line in invoice.lines)
    if lines_total != invoice.total_pence:
        reasons.append(f"total {invoice.total_pence}p differs from the sum of its lines {lines_total}p")

    return InvoiceMatch(
        invoice_id=invoice.invoice_id,
        package_id=invoice.package_id,
        status=status,
        invoiced_pence=invoice.total_pence,
        lines_total_pence=lines_total,
        ordered_minutes=ordered_minutes,
        ordered_spend_pence=ordered_spend,
        delivered_minutes=Fraction(sum(shift_payable_seconds.values()), 60),
        delivered_spend_pence=delivered,
        tolerance_pence=tolerance,
        matched_pence=matched_pence,
        lines=tuple(lines),
        reasons=tuple(reasons),
    )


def match_against_ledgers(package: Package, invoice: Invoice, ledgers: Sequence[ShiftLedger]) -> InvoiceMatch:
    """The three-way match with the proof of delivery taken from the ledgers of the package's shifts
    starting in the invoice period (the caller selects them by local dates, calendar.period_bounds)."""
    return three_way_match(
        package,
        invoice,
        shift_payable_seconds={lg.shift_id: lg.payable_seconds for lg in ledgers},
        shifts_with_attendance={lg.shift_id for lg in ledgers if lg.attendance or lg.actual_seconds > 0},
        delivered_rate_seconds=sum(lg.rate_seconds for lg in ledgers),
        shift_rate_seconds={lg.shift_id: lg.rate_seconds for lg in ledgers},
    )


def invoice_from_payload(payload: Mapping[str, Any]) -> Invoice:
    """An invoice.submitted's payload (contracts/care-event.schema.json) as the domain's value."""
    return Invoice(
        invoice_id=str(payload["invoice_id"]),
        package_id=str(payload["package_id"]),
        provider_id=str(payload["provider_id"]),
        period_start=date.fromisoformat(str(payload["period_start"])),
        period_end=date.fromisoformat(str(payload["period_end"])),
        total_pence=int(payload["total_pence"]),
        lines=tuple(InvoiceLineInput(minutes=exact_minutes(line.get("minutes", 0)),
                                     amount_pence=int(line.get("amount_pence", 0)),
                                     shift_id=line.get("shift_id"), service_type=line.get("service_type"))
                    for line in payload.get("lines", ())),
    )
