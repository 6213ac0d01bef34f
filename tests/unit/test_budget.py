"""Budget: plan weekly spend, remaining weeks by local time, forecast and recoverable underspend."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

from carewatch.domain.budget import budget_status, plan_weekly_spend, remaining_weeks
from carewatch.domain.model import Package, PlanLine, Rate

LONDON = ZoneInfo("Europe/London")
# Four local weeks, Monday 5 January to Sunday 1 February 2026 inclusive.
PKG = Package("P", "LA", "PRV", date(2026, 1, 5), date(2026, 2, 1), budget_pence=100_000,
              contingency_pence=10_000, plan=(PlanLine("personal_care", 600),),
              rates=(Rate("personal_care", "day", 2000), Rate("personal_care", "night", 9999)))
HOUR = 3600


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON).astimezone(UTC)  # type: ignore[misc]


def test_plan_weekly_spend_uses_the_day_rate_and_carers() -> None:
    assert plan_weekly_spend(PKG) == 20_000
    example = Package("PKG-100", "LA", "PRV", date(2026, 4, 1), date(2027, 3, 31), 3_500_000, 150_000,
                      plan=(PlanLine("personal_care", 840, 1), PlanLine("personal_care", 210, 2)),
                      rates=(Rate("personal_care", "day", 3214), Rate("personal_care", "night", 3500)))
    assert plan_weekly_spend(example) == Fraction(1260 * 3214, 60)
    odd = Package("Q", "LA", "PRV", date(2026, 1, 5), date(2026, 2, 1), 0, 0,
                  plan=(PlanLine("domestic", 7),), rates=(Rate("domestic", "day", 1000),))
    assert plan_weekly_spend(odd) == Fraction(7000, 60)  # held exactly, not rounded


def test_remaining_weeks() -> None:
    assert remaining_weeks(PKG, local(2025, 12, 1)) == 4  # before the period: the whole period
    assert remaining_weeks(PKG, local(2026, 1, 19)) == 2
    assert remaining_weeks(PKG, local(2026, 1, 19, 12)) == Fraction(2 * 14 - 1, 14)
    assert remaining_weeks(PKG, local(2026, 2, 2)) == 0
    assert remaining_weeks(PKG, local(2026, 3, 1)) == 0


def test_remaining_weeks_across_a_clock_change_are_local_weeks() -> None:
    spring = Package("S", "LA", "PRV", date(2026, 3, 23), date(2026, 4, 5), 0, 0, plan=(), rates=())
    assert remaining_weeks(spring, local(2026, 3, 1)) == 2


def test_during_the_period_forecast_protects_the_contingency() -> None:
    spent = 15 * HOUR * 2000  # fifteen hours at 2000p: 30000p
    status = budget_status(PKG, spent, local(2026, 1, 19))
    assert status.spent_pence == 30_000
    assert status.forecast_spend_pence == 30_000 + 2 * 20_000
    assert status.recoverable_underspend_pence == 100_000 - 10_000 - 70_000
    assert not status.period_ended and status.risk is None


def test_after_the_period_spend_replaces_the_forecast() -> None:
    status = budget_status(PKG, 15 * HOUR * 2000, local(2026, 2, 10))
    assert status.period_ended
    assert status.forecast_spend_pence == 30_000
    assert status.recoverable_underspend_pence == 60_000


def test_overspend_forecast_has_no_recoverable_underspend_and_is_at_risk() -> None:
    within = budget_status(PKG, 11_000 * HOUR, local(2026, 1, 19))  # forecast 51000, within 90000
    assert within.recoverable_underspend_pence == 90_000 - 51_000 and within.risk is None
    status = budget_status(PKG, 55_000 * HOUR, local(2026, 1, 19))  # forecast 95000 > 90000
    assert status.recoverable_underspend_pence == 0 and status.risk == "warning"
    status = budget_status(PKG, 65_000 * HOUR, local(2026, 1, 19))  # forecast 105000 > budget
    assert status.risk == "critical"


def test_figures_round_half_up() -> None:
    status = budget_status(PKG, 1800, local(2026, 2, 10))  # half a penny spent
    assert status.spent_pence == 1
    assert status.recoverable_underspend_pence == 90_000  # 89999.5 rounds up
