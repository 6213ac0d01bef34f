"""Effective hourly pay (DOMAIN.md "Non-direct care and effective pay") and PAY_BELOW_MINIMUM.

Carers are commonly paid for contact time only: over an ISO week, effective pay =
pay_pence_per_hour x direct minutes / (direct + non-direct minutes). A week without direct care is
not judged. One PAY_BELOW_MINIMUM is open per carer: raised while their rate itself, or the
effective pay of any judged week, is below the National Living Wage in force (on the week's
Monday); resolved when neither is (pay raised, or the week's time corrected).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from carewatch.domain.alert_rules import NLW_MIN_AGE, AlertDecision, AlertKind, age_on, national_living_wage
from carewatch.domain.alert_rules import pay_below_minimum as rate_below_minimum
from carewatch.domain.money import round_half_up


def week_start(d: date) -> date:
    """The Monday of `d`'s ISO week."""
    return d - timedelta(days=d.weekday())


def iso_week(monday: date) -> str:
    """`2026-W16`."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class CarerWeek:
    """A carer's time in one ISO week: attended (direct) carer-seconds and logged non-direct minutes."""

    carer_id: str
    week_start: date
    direct_seconds: int
    non_direct_minutes: Fraction

    @property
    def direct_minutes(self) -> Fraction:
        return Fraction(self.direct_seconds, 60)

    @property
    def non_direct_share(self) -> Fraction | None:
        total = self.direct_minutes + self.non_direct_minutes
        return None if total == 0 else self.non_direct_minutes / total


def effective_pay(pay_pence_per_hour: int, week: CarerWeek) -> Fraction | None:
    """Exact pence per hour over the week; None when the week had no direct care (not judged)."""
    if week.direct_seconds <= 0:
        return None
    return pay_pence_per_hour * week.direct_minutes / (week.direct_minutes + week.non_direct_minutes)


@dataclass(frozen=True)
class WeekBelow:
    week: CarerWeek
    effective_pence_per_hour: Fraction
    nlw_pence_per_hour: int


def weeks_below(pay_pence_per_hour: int, date_of_birth: date | None, weeks: Iterable[CarerWeek]) -> list[WeekBelow]:
    """The judged weeks whose effective pay is below the NLW in force on their Monday, oldest first."""
    found = []
    for week in sorted(weeks, key=lambda w: w.week_start):
        nlw = national_living_wage(week.week_start)
        pay = effective_pay(pay_pence_per_hour, week)
        if nlw is None or pay is None:
            continue
        if date_of_birth is not None and age_on(date_of_birth, week.week_start) < NLW_MIN_AGE:
            continue
        if pay < nlw:
            found.append(WeekBelow(week, pay, nlw))
    return found


def pay_decision(carer_id: str, provider_id: str, pay_pence_per_hour: int, date_of_birth: date | None,
                 today: date, weeks: Iterable[CarerWeek]) -> AlertDecision:
    """PAY_BELOW_MINIMUM for one carer: the rate itself first, else the latest week below, else resolve."""
    by_rate = rate_below_minimum(carer_id, provider_id, pay_pence_per_hour, date_of_birth, today)
    if by_rate.action == "raise":
        return by_rate
    below = weeks_below(pay_pence_per_hour, date_of_birth, weeks)
    if not below:
        return by_rate
    latest = below[-1]
    week = iso_week(latest.week.week_start)
    effective = round_half_up(latest.effective_pence_per_hour)
    return AlertDecision(
        "raise", AlertKind.PAY_BELOW_MINIMUM, "carer", carer_id,
        f"Carer {carer_id} of {provider_id} earned {effective}p/h in {week} "
        f"({pay_pence_per_hour}p/h for {float(latest.week.direct_minutes):.0f} minutes of care, none for "
        f"{float(latest.week.non_direct_minutes):.0f} minutes of travel and other work), below the "
        f"National Living Wage of {latest.nlw_pence_per_hour}p/h",
        carer_id=carer_id, provider_id=provider_id,
        details={"week": week, "effective_pence_per_hour": effective,
                 "nlw_pence_per_hour": latest.nlw_pence_per_hour, "pay_pence_per_hour": pay_pence_per_hour,
                 "direct_minutes": float(latest.week.direct_minutes),
                 "non_direct_minutes": float(latest.week.non_direct_minutes),
                 "weeks_below": [iso_week(b.week.week_start) for b in below]})
