"""Who a carer's or a provider's alert concerns (DOMAIN.md "Non-direct care and effective pay", last item).

A carer's alert reaches the commissioners whose packages the carer attended in the alert's week: the
shifts it names (a double booking), else the ISO week it names (`details["week"]`, e.g. 2026-W16, local
Monday to Monday), else the 7 days up to now. A provider's alert reaches the commissioners of that
provider's packages. Every other alert reaches its own package's commissioner, which it already names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from carewatch.domain.alert_rules import AlertDecision, AlertKind
from carewatch.domain.calendar import zone

WEEK = timedelta(days=7)
# Alerts about a carer as such, not about their part in one visit (those name the visit's package).
CARER_WIDE: frozenset[AlertKind] = frozenset({AlertKind.DOUBLE_BOOKED_CARER, AlertKind.PAY_BELOW_MINIMUM})


@dataclass(frozen=True)
class Involvement:
    """What to look up: a carer's attendance in [start, end) or on named shifts, or a provider's packages."""

    carer_id: str | None = None
    shift_ids: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    provider_id: str | None = None


def iso_week_bounds(week: str, timezone: str | None = None) -> tuple[datetime, datetime] | None:
    """[local Monday 00:00, the next Monday 00:00) of an ISO week such as 2026-W16, as UTC; None if malformed."""
    try:
        monday = date.fromisoformat(f"{week}-1")
    except ValueError:
        return None
    tz = zone(timezone)
    start = datetime.combine(monday, time(0), tz).astimezone(UTC)
    return start, datetime.combine(monday + WEEK, time(0), tz).astimezone(UTC)


def involvement(d: AlertDecision, now: datetime) -> Involvement | None:
    """What decides the audience of a raised alert beyond its own commissioner; None when nothing does."""
    if d.action != "raise" or d.audience:
        return None
    if d.subject_type == "provider":
        return Involvement(provider_id=d.provider_id or d.subject_id)
    if d.subject_type != "carer" or d.kind not in CARER_WIDE:
        return None
    carer = d.carer_id or d.subject_id
    shift_ids = d.details.get("shift_ids")
    if isinstance(shift_ids, list) and shift_ids:
        return Involvement(carer_id=carer, shift_ids=tuple(str(s) for s in shift_ids))
    week = d.details.get("week")
    bounds = iso_week_bounds(week) if isinstance(week, str) else None
    start, end = bounds or (now - WEEK, now)
    return Involvement(carer_id=carer, start=start, end=end)
