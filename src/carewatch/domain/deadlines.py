"""The deadlines of a visit (DOMAIN.md "Alerts"), from its shift and thresholds: one home for each.

The sweeps' SQL filters candidate shifts by the same formulas so that it reads few rows; what a
shift's status is, and which alert it gets, is always decided here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carewatch.domain.model import Shift
from carewatch.domain.thresholds import Thresholds


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def late_deadline(shift: Shift, th: Thresholds) -> datetime:
    """The instant from which a shift with no clock-in is late (inclusive)."""
    return shift.starts_at.astimezone(UTC) + _minutes(th.late_start_minutes)


def missed_deadline(shift: Shift, th: Thresholds) -> datetime:
    """The instant from which a shift with no clock-in is missed (inclusive)."""
    return shift.starts_at.astimezone(UTC) + _minutes(th.missed_visit_minutes)


def partial_deadline(shift: Shift, th: Thresholds) -> datetime:
    return shift.starts_at.astimezone(UTC) + _minutes(th.partial_attendance_minutes)


def lone_worker_deadline(shift: Shift, th: Thresholds) -> datetime:
    return shift.ends_at.astimezone(UTC) + _minutes(th.lone_worker_overdue_minutes)
