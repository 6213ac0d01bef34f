"""Effective hourly pay per ISO week and PAY_BELOW_MINIMUM (DOMAIN.md "Non-direct care and effective pay")."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from carewatch.domain.effective_pay import CarerWeek, effective_pay, iso_week, pay_decision, week_start

MONDAY_W16 = date(2026, 4, 13)  # NLW 1,271p from 1 April 2026
TODAY = date(2026, 4, 20)


def week(direct_minutes: int, non_direct_minutes: int, monday: date = MONDAY_W16) -> CarerWeek:
    return CarerWeek("CR-1", monday, direct_minutes * 60, Fraction(non_direct_minutes))


def test_weeks_are_iso_weeks_from_monday() -> None:
    assert week_start(date(2026, 4, 19)) == MONDAY_W16  # a Sunday
    assert week_start(MONDAY_W16) == MONDAY_W16
    assert iso_week(MONDAY_W16) == "2026-W16"
    assert iso_week(date(2025, 12, 29)) == "2026-W01"


def test_effective_pay_counts_non_direct_time_unpaid() -> None:
    # 1,300p/h for 600 minutes of care, none for 120 of travel: 1,300 x 600 / 720.
    assert effective_pay(1300, week(600, 120)) == Fraction(1300 * 600, 720)
    assert effective_pay(1300, week(0, 120)) is None  # no direct care: not judged


def test_a_week_below_the_minimum_raises_with_the_week_and_both_figures() -> None:
    d = pay_decision("CR-1", "PRV", 1300, None, TODAY, [week(600, 120)])
    assert d.action == "raise" and d.kind.value == "PAY_BELOW_MINIMUM" and d.subject_id == "CR-1"
    # 1,300 x 600 / 720 = 1,083.33p: 1,083p against 1,271p.
    assert "2026-W16" in d.message and "1083p/h" in d.message and "1271p/h" in d.message
    assert d.details["week"] == "2026-W16"
    assert (d.details["effective_pence_per_hour"], d.details["nlw_pence_per_hour"]) == (1083, 1271)


def test_little_travel_keeps_pay_above_and_resolves() -> None:
    # 1,300 x 600 / 610 = 1,278.7p >= 1,271p.
    assert pay_decision("CR-1", "PRV", 1300, None, TODAY, [week(600, 10)]).action == "resolve"
    # 1,300 x 600 / 630 = 1,238.1p < 1,271p.
    assert pay_decision("CR-1", "PRV", 1300, None, TODAY, [week(600, 30)]).action == "raise"


def test_each_week_is_judged_against_the_wage_in_force_on_its_monday() -> None:
    # Monday 2 June 2025: NLW 1,221p. 1,300 x 600 / 640 = 1,218.75p is below it, though 1,300p/h
    # for care alone is above 2026's 1,271p.
    june = week(600, 40, date(2025, 6, 2))
    d = pay_decision("CR-1", "PRV", 1300, None, TODAY, [june, week(600, 0)])
    assert d.action == "raise" and "2025-W23" in d.message and "1221p/h" in d.message
    # The same time a year earlier (NLW 1,144p from April 2024) is fine.
    assert pay_decision("CR-1", "PRV", 1300, None, TODAY, [week(600, 40, date(2024, 6, 3))]).action == "resolve"


def test_carers_under_21_on_the_monday_are_not_judged() -> None:
    born = date(2006, 1, 1)  # 20 on 13 April 2026
    assert pay_decision("CR-1", "PRV", 1300, born, TODAY, [week(600, 300)]).action == "resolve"
    assert pay_decision("CR-1", "PRV", 1300, date(2000, 1, 1), TODAY, [week(600, 300)]).action == "raise"


def test_the_rate_itself_below_the_minimum_still_raises() -> None:
    d = pay_decision("CR-1", "PRV", 1200, None, TODAY, [])
    assert d.action == "raise" and "1200p/h" in d.message
