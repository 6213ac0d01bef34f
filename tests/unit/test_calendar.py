"""England and Wales bank holidays: computed rules, substitutes and the one-off table."""

from __future__ import annotations

from datetime import date

import pytest

from carewatch.domain.calendar import bank_holidays, easter_sunday, is_bank_holiday


def test_easter_monday_2026_is_a_bank_holiday() -> None:
    assert easter_sunday(2026) == date(2026, 4, 5)
    assert is_bank_holiday(date(2026, 4, 6))
    assert is_bank_holiday(date(2026, 4, 3))  # Good Friday
    assert not is_bank_holiday(date(2026, 4, 7))


def test_2026_in_full() -> None:
    assert bank_holidays(2026) == {
        date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 4),
        date(2026, 5, 25), date(2026, 8, 31), date(2026, 12, 25), date(2026, 12, 28),
    }


@pytest.mark.parametrize(("year", "christmas", "boxing"), [
    (2021, date(2021, 12, 27), date(2021, 12, 28)),  # Christmas on Saturday, Boxing Day on Sunday
    (2022, date(2022, 12, 27), date(2022, 12, 26)),  # Christmas on Sunday: Boxing Day keeps Monday
    (2020, date(2020, 12, 25), date(2020, 12, 28)),  # Boxing Day on Saturday
    (2026, date(2026, 12, 25), date(2026, 12, 28)),  # Boxing Day on Saturday
    (2027, date(2027, 12, 27), date(2027, 12, 28)),  # Christmas on Saturday
])
def test_christmas_substitute_days(year: int, christmas: date, boxing: date) -> None:
    days = bank_holidays(year)
    assert christmas in days
    assert boxing in days
    december = {d for d in days if d.month == 12}
    assert len(december) == 2
    assert all(d.weekday() < 5 for d in december)


def test_new_year_substitute() -> None:
    assert date(2022, 1, 3) in bank_holidays(2022)  # 1 January 2022 was a Saturday
    assert date(2022, 1, 1) not in bank_holidays(2022)
    assert date(2023, 1, 2) in bank_holidays(2023)  # a Sunday


def test_one_offs_and_moves() -> None:
    h2020 = bank_holidays(2020)
    assert date(2020, 5, 8) in h2020 and date(2020, 5, 4) not in h2020
    h2022 = bank_holidays(2022)
    assert {date(2022, 6, 2), date(2022, 6, 3), date(2022, 9, 19)} <= h2022
    assert date(2022, 5, 30) not in h2022
    assert date(2023, 5, 8) in bank_holidays(2023)
    h2012 = bank_holidays(2012)
    assert {date(2012, 6, 4), date(2012, 6, 5)} <= h2012 and date(2012, 5, 28) not in h2012


@pytest.mark.parametrize("year", range(1990, 2051))
def test_every_year_has_at_least_eight_weekday_holidays(year: int) -> None:
    days = bank_holidays(year)
    assert len(days) >= 8
    assert all(d.year == year and d.weekday() < 5 for d in days)
