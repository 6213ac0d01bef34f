"""Budget oversight: plan weekly spend, forecast to the end of the period, recoverable underspend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from carewatch.domain.calendar import period_bounds, wall_clock_seconds, zone
from carewatch.domain.model import Package
from carewatch.domain.money import rate_for, round_half_up, spend_pence

WEEK_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class BudgetStatus:
    """Figures in whole pence, rounded half up from the exact values (also kept)."""

    spent_pence: int
    forecast_spend_pence: int
    recoverable_underspend_pence: int
    contingency_pence: int
    budget_pence: int
    plan_weekly_spend_pence: Fraction = Fraction(0)
    remaining_weeks: Fraction = Fraction(0)
    forecast_exact_pence: Fraction = Fraction(0)
    period_ended: bool = False

    @property
    def risk(self) -> str | None:
        """'critical' when the forecast exceeds the budget, 'warning' when it eats into the contingency."""
        if self.forecast_exact_pence > self.budget_pence:
            return "critical"
        if self.forecast_exact_pence > self.budget_pence - self.contingency_pence:
            return "warning"
        return None


def plan_weekly_spend(package: Package) -> Fraction:
    """Sum over plan lines of minutes_per_week x carers x the line's day rate / 60, in exact pence."""
    return sum(
        (Fraction(line.minutes_per_week * line.carers * rate_for(package.rates, line.service_type, "day"), 60)
         for line in package.plan),
        Fraction(0),
    )


def remaining_weeks(package: Package, now: datetime) -> Fraction:
    """Local wall-clock weeks from max(now, period start) to the end of the period (>= 0)."""
    tz = zone(package.timezone)
    period_start, period_end = period_bounds(package.period_start, package.period_end, tz)
    return Fraction(wall_clock_seconds(max(now, period_start), period_end, tz), WEEK_SECONDS)


def budget_status(package: Package, spent_rate_seconds: int, now: datetime) -> BudgetStatus:
    """Spend to date, forecast and recoverable underspend; after the period, spend replaces the forecast."""
    tz = zone(package.timezone)
    _, period_end = period_bounds(package.period_start, package.period_end, tz)
    spent = spend_pence(spent_rate_seconds)
    weekly = plan_weekly_spend(package)
    weeks = remaining_weeks(package, now)
    forecast = spent + weekly * weeks
    ended = now >= period_end
    free = package.budget_pence - package.contingency_pence
    recoverable = max(Fraction(0), free - (spent if ended else forecast))
    return BudgetStatus(
        spent_pence=round_half_up(spent),
        forecast_spend_pence=round_half_up(forecast),
        recoverable_underspend_pence=round_half_up(recoverable),
        contingency_pence=package.contingency_pence,
        budget_pence=package.budget_pence,
        plan_weekly_spend_pence=weekly,
        remaining_weeks=weeks,
        forecast_exact_pence=forecast,
        period_ended=ended,
    )
