"""England and Wales bank holidays: the computed rules plus a dated table of one-off changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carewatch.domain.model import DEFAULT_TIMEZONE

# Royal proclamations move or add days; extend these tables when a new one is announced.
# MOVED_HOLIDAYS maps the date the rules give to the date actually observed.
MOVED_HOLIDAYS: dict[date, date] = {
    date(1995, 5, 1): date(1995, 5, 8),  # early May moved for the 50th anniversary of VE Day
    date(2002, 5, 27): date(2002, 6, 4),  # spring moved for the Golden Jubilee
    date(2012, 5, 28): date(2012, 6, 4),  # spring moved for the Diamond Jubilee
    date(2020, 5, 4): date(2020, 5, 8),  # early May moved for the 75th anniversary of VE Day
    date(2022, 5, 30): date(2022, 6, 2),  # spring moved for the Platinum Jubilee
}
EXTRA_HOLIDAYS: frozenset[date] = frozenset({
    date(1999, 12, 31),  # Millennium
    date(2002, 6, 3),  # Golden Jubilee
    date(2011, 4, 29),  # Royal wedding
    date(2012, 6, 5),  # Diamond Jubilee
    date(2022, 6, 3),  # Platinum Jubilee
    date(2022, 9, 19),  # State funeral of Queen Elizabeth II
    date(2023, 5, 8),  # Coronation of King Charles III
})


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _first_monday(year: int, month: int) -> date:
    d = date(year, month, 1)
    return d + timedelta(days=(7 - d.weekday()) % 7)


def _last_monday(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=last.weekday())


def _with_substitutes(days: list[date], taken: set[date]) -> list[date]:
    """Move days falling at a weekend to the next weekday not already a holiday."""
    observed: list[date] = []
    for d in sorted(days, key=lambda x: (x.weekday() >= 5, x)):  # weekday holidays keep their day first
        if d.weekday() < 5 and d not in taken:
            observed.append(d)
            taken.add(d)
            continue
        sub = d + timedelta(days=1)
        while sub.weekday() >= 5 or sub in taken:
            sub += timedelta(days=1)
        observed.append(sub)
        taken.add(sub)
    return observed


@lru_cache(maxsize=256)
def bank_holidays(year: int) -> frozenset[date]:
    """The bank holidays observed in England and Wales in `year`."""
    easter = easter_sunday(year)
    fixed = [
        easter - timedelta(days=2),  # Good Friday
        easter + timedelta(days=1),  # Easter Monday
        _first_monday(year, 5),  # early May
        _last_monday(year, 5),  # spring
        _last_monday(year, 8),  # summer
    ]
    days = {MOVED_HOLIDAYS.get(d, d) for d in fixed}
    days.update(_with_substitutes([date(year, 1, 1)], set(days)))
    days.update(_with_substitutes([date(year, 12, 25), date(year, 12, 26)], set(days)))
    days.update(d for d in EXTRA_HOLIDAYS if d.year == year)
    return frozenset(days)


def is_bank_holiday(d: date) -> bool:
    """True when `d` (a local date) is a bank holiday in England and Wales."""
    return d in bank_holidays(d.year)


# Local-calendar helpers shared by the delivery, budget and invoice rules.


@lru_cache(maxsize=64)
def zone(name: str | None, default: ZoneInfo | None = None) -> ZoneInfo:
    """The IANA zone `name`; none, or an unknown name, falls back to `default` (the deployment's,
    CAREWATCH_TIMEZONE) or Europe/London rather than stop the stream."""
    fallback = default or ZoneInfo(DEFAULT_TIMEZONE)
    if not name:
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback


def local_midnight(d: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which local date `d` begins in `tz`."""
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def period_bounds(period_start: date, period_end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[period_start 00:00 local, period_end + 1 day 00:00 local) as UTC instants; period_end is inclusive."""
    return local_midnight(period_start, tz), local_midnight(period_end + timedelta(days=1), tz)


def wall_clock_seconds(start: datetime, end: datetime, tz: ZoneInfo) -> int:
    """Local wall-clock seconds from `start` to `end` (>= 0): a local week is always 7 x 24 hours.

    Plans are written per local week, so a week containing a clock change still holds
    exactly one week of plan.
    """
    a = start.astimezone(tz).replace(tzinfo=None, microsecond=0)
    b = end.astimezone(tz).replace(tzinfo=None, microsecond=0)
    return max(0, int((b - a).total_seconds()))
