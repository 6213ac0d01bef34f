"""Delivery against the plan over a window: carer-minutes planned, scheduled, delivered and paid."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from carewatch.domain.calendar import period_bounds, wall_clock_seconds, zone
from carewatch.domain.model import Package, ShiftLedger
from carewatch.domain.money import round_half_up, spend_pence

WEEK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class LedgerTotals:
    """Sums of the shift_ledger columns over some shifts."""

    planned_seconds: int = 0
    scheduled_seconds: int = 0
    actual_seconds: int = 0
    payable_seconds: int = 0
    overrun_seconds: int = 0
    unverified_seconds: int = 0
    provider_cancelled_seconds: int = 0
    rate_seconds: int = 0

    @classmethod
    def of(cls, ledgers: Iterable[ShiftLedger]) -> LedgerTotals:
        """The totals of `ledgers`."""
        sums = [0] * 8
        for x in ledgers:
            row = (x.planned_seconds, x.scheduled_seconds, x.actual_seconds, x.payable_seconds,
                   x.overrun_seconds, x.unverified_seconds, x.provider_cancelled_seconds, x.rate_seconds)
            sums = [a + b for a, b in zip(sums, row, strict=True)]
        return cls(*sums)


@dataclass(frozen=True)
class Delivery:
    planned_minutes: Fraction  # from the care plan, prorated to the window
    scheduled_minutes: Fraction
    actual_minutes: Fraction
    payable_minutes: Fraction
    overrun_minutes: Fraction
    unverified_minutes: Fraction
    provider_cancelled_minutes: Fraction
    spend_pence: int  # rounded half up; the exact figure is rate_seconds / 3600
    variance_minutes: Fraction  # actual - planned: negative is under-delivery
    rate_seconds: int = 0


def plan_minutes_per_week(package: Package) -> int:
    """Carer-minutes per week of the care plan: minutes_per_week x carers, summed over lines."""
    return sum(line.minutes_per_week * line.carers for line in package.plan)


def planned_carer_minutes(package: Package, start: datetime, end: datetime) -> Fraction:
    """Plan carer-minutes for the part of [start, end) inside the package period, by local wall-clock time."""
    tz = zone(package.timezone)
    period_start, period_end = period_bounds(package.period_start, package.period_end, tz)
    lo, hi = max(start, period_start), min(end, period_end)
    if hi <= lo:
        return Fraction(0)
    return Fraction(plan_minutes_per_week(package) * wall_clock_seconds(lo, hi, tz), WEEK_SECONDS)


def delivery(package: Package, totals: LedgerTotals, start: datetime, end: datetime) -> Delivery:
    """The delivery figures of `package` for the window [start, end), given its shifts' ledger totals."""
    planned = planned_carer_minutes(package, start, end)
    actual = Fraction(totals.actual_seconds, 60)
    return Delivery(
        planned_minutes=planned,
        scheduled_minutes=Fraction(totals.scheduled_seconds, 60),
        actual_minutes=actual,
        payable_minutes=Fraction(totals.payable_seconds, 60),
        overrun_minutes=Fraction(totals.overrun_seconds, 60),
        unverified_minutes=Fraction(totals.unverified_seconds, 60),
        provider_cancelled_minutes=Fraction(totals.provider_cancelled_seconds, 60),
        spend_pence=round_half_up(spend_pence(totals.rate_seconds)),
        variance_minutes=actual - planned,
        rate_seconds=totals.rate_seconds,
    )
