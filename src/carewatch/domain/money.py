"""Money held exactly (pence as fractions) and rounded half-up to whole pence only when reported."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from carewatch.domain.model import Band, Rate

SECONDS_PER_HOUR = 3600


def round_half_up(x: Fraction | Decimal | int) -> int:
    """Round to the nearest integer, halves away from zero (as PostgreSQL's round(numeric) does)."""
    if isinstance(x, int):
        return x
    exact = Fraction(x)
    magnitude = (abs(exact.numerator) * 2 + exact.denominator) // (2 * exact.denominator)
    return magnitude if exact >= 0 else -magnitude


def rate_for(rates: Sequence[Rate], service_type: str, band: Band) -> int:
    """Pence per hour for (service_type, band), falling back to (service_type, day); 0 when unpriced."""
    fallback = 0
    for rate in rates:
        if rate.service_type != service_type:
            continue
        if rate.band == band:
            return rate.pence_per_hour
        if rate.band == "day":
            fallback = rate.pence_per_hour
    return fallback


def spend_pence(rate_seconds: int) -> Fraction:
    """Exact spend in pence of `rate_seconds` (payable seconds x pence per hour)."""
    return Fraction(rate_seconds, SECONDS_PER_HOUR)


HELD_PLACES = Decimal("0.000001")  # spend_pence NUMERIC(.., 6) in shift_ledger; rate_seconds stays exact


def held_spend_pence(rate_seconds: int) -> Decimal:
    """The spend as stored beside its exact rate_seconds: to 6 places, half-up (DOMAIN.md: at least 4)."""
    return (Decimal(rate_seconds) / Decimal(SECONDS_PER_HOUR)).quantize(HELD_PLACES, rounding=ROUND_HALF_UP)
