"""Care packages: each person's visit pattern, the plan it implies, charge rates and a budget."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, time

from carewatch.simulator.people import Commissioner, Provider, nhs_number

MECHANISMS = ("commissioned", "commissioned", "commissioned", "ISF", "DP", "PHB", "TPMB", "PB")


@dataclass(frozen=True)
class Visit:
    """One regular call in a person's week: e.g. the morning call, 45 minutes, two carers."""

    slot: str  # morning, lunch, tea, bed, night, domestic...
    at: time  # local start time
    minutes: int
    carers: int
    service_type: str
    competencies: tuple[str, ...] = ()
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)  # Monday = 0


@dataclass(frozen=True)
class CarePackage:
    package_id: str
    commissioner: Commissioner
    provider: Provider
    mechanism: str
    person_id: str
    nhs_number: str
    lat: float
    lon: float
    visits: tuple[Visit, ...]
    rates: tuple[tuple[str, str, int], ...]  # (service_type, band, pence per hour)
    budget_pence: int
    contingency_pence: int
    period_start: date
    period_end: date

    def plan(self) -> list[dict[str, int | str]]:
        """Minutes per week by (service type, carers), as the care plan states them."""
        minutes: dict[tuple[str, int], int] = defaultdict(int)
        for v in self.visits:
            minutes[(v.service_type, v.carers)] += v.minutes * len(v.weekdays)
        return [{"service_type": s, "minutes_per_week": m, "carers": c} for (s, c), m in minutes.items()]

    def day_rate(self, service_type: str) -> int:
        return next(p for s, b, p in self.rates if s == service_type and b == "day")


def _minutes_after(start: time, minutes: int) -> time:
    total = start.hour * 60 + start.minute + minutes
    return time(total // 60 % 24, total % 60)


def _visits(rng: random.Random) -> tuple[Visit, ...]:
    """One of the usual shapes of a home care package, with times staggered across people."""
    shape = rng.choices(["four_calls", "two_calls", "waking_night", "companionship"], [5, 3, 1, 1])[0]
    morning = _minutes_after(time(7, 0), 15 * rng.randint(0, 10))
    double = rng.random() < 0.3  # hoist transfers need two carers
    moving = ("moving_and_handling",) if double else ()
    meds = ("medication",) if rng.random() < 0.5 else ()
    pc = "personal_care"
    if shape == "four_calls":
        return (Visit("morning", morning, rng.choice([45, 60]), 2 if double else 1, pc, moving + meds),
                Visit("lunch", _minutes_after(time(12, 0), 15 * rng.randint(0, 4)), 30, 1, pc, meds),
                Visit("tea", _minutes_after(time(16, 30), 15 * rng.randint(0, 4)), 30, 1, pc),
                Visit("bed", _minutes_after(time(19, 30), 15 * rng.randint(0, 6)), 30, 2 if double else 1, pc,
                      moving))
    if shape == "two_calls":
        return (Visit("morning", morning, rng.choice([30, 45]), 1, pc, meds),
                Visit("bed", _minutes_after(time(20, 0), 15 * rng.randint(0, 4)), rng.choice([15, 30]), 1,
                      pc),
                Visit("domestic", time(10, 30), 60, 1, "domestic", (), (rng.randint(0, 4),)))
    if shape == "waking_night":
        return (Visit("morning", _minutes_after(time(7, 30), 15 * rng.randint(0, 4)), 30, 1, pc, meds),
                Visit("night", time(22, 0), 540, 1, "waking_night", ("dementia",)))
    return (Visit("morning", morning, 30, 1, pc),
            Visit("sitting", time(13, 0), 120, 1, "companionship", (), (0, 2, 4)))


def _rates(rng: random.Random, visits: tuple[Visit, ...]) -> tuple[tuple[str, str, int], ...]:
    base = {"personal_care": rng.randint(2400, 3200), "domestic": rng.randint(2000, 2500),
            "companionship": rng.randint(1900, 2400), "waking_night": rng.randint(2100, 2600)}
    rates = []
    for service in sorted({v.service_type for v in visits}):
        day = base[service]
        rates += [(service, "day", day), (service, "night", day * 110 // 100),
                  (service, "weekend", day * 108 // 100), (service, "bank_holiday", day * 150 // 100)]
    return tuple(rates)


def financial_year(d: date) -> tuple[date, date]:
    """The English public-sector budget year (April to March) holding `d`."""
    first = date(d.year if d.month >= 4 else d.year - 1, 4, 1)
    return first, date(first.year + 1, 3, 31)


def make_package(rng: random.Random, number: int, commissioner: Commissioner, provider: Provider,
                 day: date) -> CarePackage:
    visits = _visits(rng)
    rates = _rates(rng, visits)
    rate = {s: p for s, b, p in rates if b == "day"}
    weekly = sum(v.minutes * v.carers * len(v.weekdays) * rate[v.service_type] for v in visits) / 60
    period_start, period_end = financial_year(day)
    weeks = ((period_end - period_start).days + 1) / 7
    # Most budgets cover the plan with room to spare; about one in six is set too tight.
    core = weekly * weeks * (rng.uniform(0.85, 0.99) if rng.random() < 0.17 else rng.uniform(1.02, 1.2))
    contingency = round(core * 0.05 / 100) * 100
    budget = round(core / 100) * 100 + contingency
    # Every ninth package is near its budget and another over it, so that BUDGET_AT_RISK shows at once as
    # a warning and as a critical alert: judged against the forecast from the simulated day (the plan for
    # the weeks left in the budget year), with a few percent to spare either side so that a day's care
    # cannot move it across a line.
    forecast = weekly * max(1.0, ((period_end - day).days + 1) / 7)
    if number % 9 == 4:  # forecast eats into the contingency: warning
        contingency = round(forecast * 0.08 / 100) * 100
        budget = round(forecast * 1.04 / 100) * 100
    elif number % 9 == 8:  # forecast beyond the budget: critical
        budget = round(forecast * 0.93 / 100) * 100
        contingency = round(budget * 0.05 / 100) * 100
    # People live within a few kilometres of the commissioner's centre.
    lat = round(commissioner.lat + rng.uniform(-0.04, 0.04), 6)
    lon = round(commissioner.lon + rng.uniform(-0.06, 0.06), 6)
    return CarePackage(f"PKG-{number:05d}", commissioner, provider, rng.choice(MECHANISMS),
                       f"P-{number:05d}", nhs_number(rng), lat, lon, visits, rates, budget, contingency,
                       period_start, period_end)
