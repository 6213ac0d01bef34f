"""Statements, the commissioner's books (DOMAIN.md "Statements"): sums over packages, never averages.

A statement covers the local dates [start, end) for one package, one provider or one commissioner.
Each package contributes exact figures (minutes and pence as fractions); a statement adds them up
and rounds half up only what it reports in whole pence, so a provider's statement is exactly the
sum of its packages' exact figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from carewatch.domain.money import round_half_up, spend_pence


class StatementScope(StrEnum):
    PACKAGE = "PACKAGE"
    PROVIDER = "PROVIDER"
    COMMISSIONER = "COMMISSIONER"


def ordered_days(period_start: date, period_end: date, start: date, end: date) -> int:
    """Local days of [start, end) inside the package period [period_start, period_end] (a local day
    is a whole day even across a clock change, so wall-clock overlap / 7 days is days / 7)."""
    lo, hi = max(start, period_start), min(end, period_end + timedelta(days=1))
    return max(0, (hi - lo).days)


@dataclass(frozen=True)
class Spans:
    """[start, end) cut into whole months and the days either side, as the roll-ups read it."""

    months: tuple[date, date]  # [first month start, stop month start): empty when equal
    days_before: tuple[date, date]
    days_after: tuple[date, date]


def month_after(d: date) -> date:
    """The first day of a month on or after `d`."""
    if d.day == 1:
        return d
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def spans(start: date, end: date) -> Spans:
    first_month, last_month = month_after(start), end.replace(day=1)
    if first_month >= last_month:  # no whole month inside: days only
        return Spans((start, start), (start, end), (end, end))
    return Spans((first_month, last_month), (start, first_month), (last_month, end))


WEEK_SECONDS = 7 * 24 * 3600
# Exact figures of many packages are added as integer numerators over fixed denominators (thousands of
# packages, so no Fraction per figure): ordered minutes x 7, ordered pence x 420 (the plan's weekly spend
# x 60, times days / 7), recoverable underspend x 36,288,000 (60 x a week's seconds, a multiple of 3600).
ORDERED_MINUTES_DEN = 7
ORDERED_PENCE_DEN = 420
RECOVERABLE_DEN = 60 * WEEK_SECONDS


def recoverable_underspend(budget_pence: int, contingency_pence: int, spent_rate_seconds: int,
                           weekly_rate_minutes: int, remaining_seconds: int) -> int:
    """DOMAIN.md "Budget", x RECOVERABLE_DEN: max(0, budget - contingency - forecast), the forecast being
    spend + plan weekly spend x remaining weeks (local wall-clock seconds / a week; 0 once the period has
    ended, when the forecast is the spend)."""
    free = (budget_pence - contingency_pence) * RECOVERABLE_DEN
    forecast = spent_rate_seconds * (RECOVERABLE_DEN // 3600) + weekly_rate_minutes * remaining_seconds
    return max(0, free - forecast)


@dataclass(frozen=True)
class PackageFigures:
    """One package's part of a statement, exact (integer numerators over the denominators above)."""

    package_id: str
    provider_id: str
    commissioner_id: str
    ordered_minutes_x7: int = 0
    ordered_pence_x420: int = 0
    payable_seconds: int = 0
    rate_seconds: int = 0  # delivered spend x 3600
    unverified_seconds: int = 0
    direct_seconds: int = 0  # actual attended carer-seconds, overrun included
    non_direct_minutes: Decimal = Decimal(0)  # activities naming the package (decimal minutes, exact)
    invoiced_pence: int = 0
    matched_pence: int = 0
    disputed_invoices: int = 0
    recoverable_x: int = 0  # recoverable underspend x RECOVERABLE_DEN


@dataclass(frozen=True)
class Statement:
    scope: StatementScope
    id: str
    start: date
    end: date  # exclusive
    packages: int
    ordered_minutes: Fraction
    ordered_pence: int
    delivered_minutes: Fraction
    delivered_pence: int
    unverified_minutes: Fraction
    invoiced_pence: int
    matched_pence: int
    disputed_invoices: int
    variance_minutes: Fraction  # delivered - ordered: negative is under-delivery
    recoverable_underspend_pence: int
    direct_minutes: Fraction
    non_direct_minutes: Fraction
    non_direct_care_share: Fraction | None  # None where no non-direct time was logged

    @property
    def variance_share(self) -> Fraction | None:
        """Variance as a share of ordered minutes: the league table's key; None when nothing was ordered."""
        return None if self.ordered_minutes == 0 else self.variance_minutes / self.ordered_minutes


def non_direct_share(direct_minutes: Fraction, non_direct_minutes: Fraction) -> Fraction | None:
    """Non-direct / (direct + non-direct); None where no non-direct time was logged."""
    if non_direct_minutes <= 0:
        return None
    return non_direct_minutes / (direct_minutes + non_direct_minutes)


def statement(scope: StatementScope, subject_id: str, start: date, end: date, parts: Iterable[PackageFigures],
              unattached_non_direct_minutes: Fraction = Fraction(0)) -> Statement:
    """The statement of `parts` (the packages in scope). `unattached_non_direct_minutes` is a provider's
    carers' time logged against no package, which counts in its non-direct share only."""
    parts = list(parts)
    ordered_minutes = Fraction(sum(p.ordered_minutes_x7 for p in parts), ORDERED_MINUTES_DEN)
    delivered_minutes = Fraction(sum(p.payable_seconds for p in parts), 60)
    direct = Fraction(sum(p.direct_seconds for p in parts), 60)
    non_direct = Fraction(sum((p.non_direct_minutes for p in parts), Decimal(0))) + unattached_non_direct_minutes
    return Statement(
        scope=scope, id=subject_id, start=start, end=end, packages=len(parts),
        ordered_minutes=ordered_minutes,
        ordered_pence=round_half_up(Fraction(sum(p.ordered_pence_x420 for p in parts), ORDERED_PENCE_DEN)),
        delivered_minutes=delivered_minutes,
        delivered_pence=round_half_up(spend_pence(sum(p.rate_seconds for p in parts))),
        unverified_minutes=Fraction(sum(p.unverified_seconds for p in parts), 60),
        invoiced_pence=sum(p.invoiced_pence for p in parts),
        matched_pence=sum(p.matched_pence for p in parts),
        disputed_invoices=sum(p.disputed_invoices for p in parts),
        variance_minutes=delivered_minutes - ordered_minutes,
        recoverable_underspend_pence=round_half_up(
            Fraction(sum(p.recoverable_x for p in parts), RECOVERABLE_DEN)),
        direct_minutes=direct,
        non_direct_minutes=non_direct,
        non_direct_care_share=non_direct_share(direct, non_direct),
    )


def league_key(s: Statement) -> tuple[int, float, Fraction, str]:
    """Most under-delivered share of ordered minutes first; nothing ordered last; then by id. The float
    orders fast; the exact share decides only between shares whose floats are equal."""
    share = s.variance_share
    if share is None:
        return (1, 0.0, Fraction(0), s.id)
    return (0, float(share), share, s.id)


def league_table(statements: Iterable[Statement]) -> list[Statement]:
    return sorted(statements, key=league_key)
