"""Delivery against the plan: planned carer-minutes prorated to a window, and the ledger totals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

from carewatch.domain.delivery import LedgerTotals, delivery, plan_minutes_per_week, planned_carer_minutes
from carewatch.domain.model import Package, PlanLine, Rate, ShiftLedger

LONDON = ZoneInfo("Europe/London")
PKG = Package(
    "PKG-100", "LA", "PRV", date(2026, 4, 1), date(2027, 3, 31), 3_500_000, 150_000,
    plan=(PlanLine("personal_care", 840, 1), PlanLine("personal_care", 210, 2)),
    rates=(Rate("personal_care", "day", 3214),),
)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON).astimezone(UTC)  # type: ignore[misc]


def test_plan_minutes_per_week_counts_carers() -> None:
    assert plan_minutes_per_week(PKG) == 840 + 420


def test_planned_minutes_for_a_local_week() -> None:
    assert planned_carer_minutes(PKG, local(2026, 4, 6), local(2026, 4, 13)) == 1260


def test_planned_minutes_are_clipped_to_the_package_period() -> None:
    # 29 March to 5 April: only 1-4 April (four days) are inside the period.
    assert planned_carer_minutes(PKG, local(2026, 3, 29), local(2026, 4, 5)) == Fraction(1260 * 4, 7)
    assert planned_carer_minutes(PKG, local(2027, 3, 29), local(2027, 4, 5)) == Fraction(1260 * 3, 7)
    assert planned_carer_minutes(PKG, local(2025, 1, 1), local(2025, 2, 1)) == 0
    assert planned_carer_minutes(PKG, local(2026, 4, 13), local(2026, 4, 6)) == 0


def test_a_local_week_across_the_clock_change_is_one_week_of_plan() -> None:
    pkg = Package("P", "LA", "PRV", date(2026, 3, 1), date(2026, 12, 31), 0, 0,
                  plan=(PlanLine("personal_care", 700),), rates=())
    assert planned_carer_minutes(pkg, local(2026, 3, 23), local(2026, 3, 30)) == 700  # 167 real hours
    assert planned_carer_minutes(pkg, local(2026, 10, 19), local(2026, 10, 26)) == 700  # 169 real hours


def _ledger(**kw: int) -> ShiftLedger:
    base = dict(planned_seconds=0, scheduled_seconds=0, actual_seconds=0, payable_seconds=0,
                overrun_seconds=0, unverified_seconds=0, provider_cancelled_seconds=0)
    base.update(kw)
    return ShiftLedger("SH", "PKG", "PRV", local(2026, 4, 6), **base)  # type: ignore[arg-type]


def test_totals_and_delivery_figures() -> None:
    totals = LedgerTotals.of([
        _ledger(planned_seconds=3600, scheduled_seconds=3600, actual_seconds=3395, payable_seconds=3395,
                rate_seconds=3395 * 4800),
        _ledger(planned_seconds=1800, provider_cancelled_seconds=1800),
        _ledger(planned_seconds=1800, scheduled_seconds=1800, actual_seconds=2400, payable_seconds=1800,
                overrun_seconds=600, unverified_seconds=2400, rate_seconds=1800 * 3214),
    ])
    assert totals.planned_seconds == 7200 and totals.actual_seconds == 5795
    d = delivery(PKG, totals, local(2026, 4, 6), local(2026, 4, 13))
    assert d.planned_minutes == 1260
    assert d.scheduled_minutes == 90
    assert d.actual_minutes == Fraction(5795, 60)
    assert d.payable_minutes == Fraction(5195, 60)
    assert d.overrun_minutes == 10 and d.unverified_minutes == 40 and d.provider_cancelled_minutes == 30
    assert d.variance_minutes == Fraction(5795, 60) - 1260
    # 4526.666... + 1607 = 6133.666... -> 6134
    assert d.spend_pence == 6134


def test_spend_rounds_half_up() -> None:
    day = (local(2026, 4, 6), local(2026, 4, 7))
    assert delivery(PKG, LedgerTotals(rate_seconds=1800), *day).spend_pence == 1  # exactly half a penny
    assert delivery(PKG, LedgerTotals(rate_seconds=1799), *day).spend_pence == 0
