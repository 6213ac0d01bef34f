"""Exact money, half-up rounding and rate look-up."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewatch.domain.model import Rate
from carewatch.domain.money import rate_for, round_half_up, spend_pence


@pytest.mark.parametrize(("x", "expected"), [
    (Fraction(1, 2), 1), (Fraction(3, 2), 2), (Fraction(5, 2), 3),  # not banker's rounding
    (Fraction(2499, 1000), 2), (Fraction(-1, 2), -1), (Fraction(-1, 3), 0),
    (Decimal("4526.5"), 4527), (Decimal("4526.4999"), 4526), (7, 7), (Fraction(0), 0),
])
def test_round_half_up(x: Fraction | Decimal | int, expected: int) -> None:
    assert round_half_up(x) == expected


@given(st.integers(-10**9, 10**9), st.integers(1, 10**6))
def test_round_half_up_is_within_half(n: int, d: int) -> None:
    x = Fraction(n, d)
    r = round_half_up(x)
    assert abs(x - r) <= Fraction(1, 2)
    if abs(x - r) == Fraction(1, 2):
        assert abs(r) > abs(x)  # halves go away from zero


def test_spend_is_exact_and_rounds_only_when_reported() -> None:
    spend = spend_pence(3395 * 4800)
    assert spend == Fraction(13580, 3)  # 4526.666...
    assert round_half_up(spend) == 4527


RATES = (Rate("personal_care", "day", 3214), Rate("personal_care", "night", 3500),
         Rate("domestic", "weekend", 2000))


def test_rate_for_exact_band_then_day_then_zero() -> None:
    assert rate_for(RATES, "personal_care", "night") == 3500
    assert rate_for(RATES, "personal_care", "bank_holiday") == 3214  # falls back to day
    assert rate_for(RATES, "domestic", "weekend") == 2000
    assert rate_for(RATES, "domestic", "night") == 0  # no day rate to fall back to
    assert rate_for(RATES, "nursing", "day") == 0
