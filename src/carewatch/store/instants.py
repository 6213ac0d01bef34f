"""Aware datetimes written as text for PostgreSQL, fast (issue 12).

Every instant a batch stages by COPY (events' and clocks' times, shift times, ledgers) went through
psycopg's C datetime dumper: about 3.5 us an instant on the 2-core machines, where a whole COPY row of
text costs 3.6 (an events row: 11 us with its two instants, 6.2 with them as text). Registering a
Python dumper instead made it slower (13 us: psycopg then asks it for its key and upgrade per value),
so store/staging.py hands COPY the instants as text, written here: an instant on a whole second from
its epoch second, with each day's date and each second of the day formatted once
(`2026-03-07 05:17:23+00`, in UTC, which PostgreSQL reads as the same timestamptz); anything else
(fractions of a second, a time zone without an offset) as psycopg's Python dumper does, by `str()`.
Arrays of instants in parameters are written the same way (store/arrays.py).
"""

from __future__ import annotations

from datetime import date, datetime

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SECONDS = [f"{h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]
_DAYS: dict[int, str] = {}
_DAYS_KEPT = 20_000  # about 55 years of distinct days before the table starts again


def instant_text(at: datetime) -> str:
    """`at` (aware) as PostgreSQL timestamptz input text; the same instant as `str(at)` names."""
    if at.microsecond or at.utcoffset() is None:
        return str(at)
    day, second = divmod(int(at.timestamp()), 86400)
    prefix = _DAYS.get(day)
    if prefix is None:
        if len(_DAYS) >= _DAYS_KEPT:
            _DAYS.clear()
        prefix = _DAYS[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + " "
    return prefix + _SECONDS[second]
