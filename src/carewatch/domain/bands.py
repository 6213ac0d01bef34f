"""Rate bands by the commissioner's local time, and the split of an interval at band boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from carewatch.domain.calendar import is_bank_holiday
from carewatch.domain.model import Band

NIGHT_STARTS = time(22, 0)
NIGHT_ENDS = time(7, 0)
_ONE_SECOND = timedelta(seconds=1)


def band_at(local: datetime) -> Band:
    """The band of a local wall-clock time: bank_holiday > weekend > night > day."""
    if is_bank_holiday(local.date()):
        return "bank_holiday"
    if local.weekday() >= 5:
        return "weekend"
    if local.time() >= NIGHT_STARTS or local.time() < NIGHT_ENDS:
        return "night"
    return "day"


def _next_boundary(wall: datetime) -> datetime:
    """The first band boundary (07:00, 22:00 or midnight, naive local) strictly after `wall`."""
    day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    for hours in (7, 22, 24):
        candidate = day + timedelta(hours=hours)
        if candidate > wall:
            return candidate
    raise AssertionError("unreachable: midnight of the next day is always later")


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    return offset if offset is not None else timedelta(0)


def _first_offset_change(lo: datetime, hi: datetime, tz: ZoneInfo, offset: timedelta) -> datetime:
    """First whole second in (lo, hi] whose UTC offset differs from `offset` (it is known hi's does)."""
    while hi - lo > _ONE_SECOND:
        mid = lo + timedelta(seconds=int((hi - lo).total_seconds()) // 2)
        if _offset(mid, tz) == offset:
            lo = mid
        else:
            hi = mid
    return hi


def split_by_band(start: datetime, end: datetime, tz: ZoneInfo) -> dict[Band, int]:
    """Whole seconds of [start, end) in each band, by local time in `tz`; the values sum to the interval.

    Instants are truncated to the second. The walk is made in UTC between the band
    boundaries and the zone's offset changes, so a night across a clock change is
    exactly as long as it really was.
    """
    cur = start.astimezone(UTC).replace(microsecond=0)
    stop = end.astimezone(UTC).replace(microsecond=0)
    result: dict[Band, int] = {}
    while cur < stop:
        offset = _offset(cur, tz)
        wall = (cur + offset).replace(tzinfo=None)
        nxt = min(stop, (_next_boundary(wall) - offset).replace(tzinfo=UTC))
        if _offset(nxt - _ONE_SECOND, tz) != offset:
            # The clocks change inside this stretch: wall time jumps, so stop at the change.
            nxt = _first_offset_change(cur, nxt - _ONE_SECOND, tz, offset)
        band = band_at(wall)
        result[band] = result.get(band, 0) + int((nxt - cur).total_seconds())
        cur = nxt
    return result
