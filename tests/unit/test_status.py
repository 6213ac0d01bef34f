"""Shift status at the late and missed deadlines, to the second."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carewatch.domain.attendance import shift_ledger
from carewatch.domain.deadlines import late_deadline, missed_deadline
from carewatch.domain.model import ClockEvent, Shift, ShiftStatus
from carewatch.domain.status import shift_status
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS

T0 = datetime(2026, 4, 14, 9, 0, tzinfo=UTC)
SHIFT = Shift("SH", "PKG", "PRV", T0, T0 + timedelta(hours=1), "personal_care")
SEC = timedelta(seconds=1)



@pytest.mark.parametrize(("offset", "expected"), [
    (timedelta(minutes=-5), ShiftStatus.SCHEDULED),
    (timedelta(minutes=15) - SEC, ShiftStatus.SCHEDULED),
    (timedelta(minutes=15), ShiftStatus.LATE),
    (timedelta(minutes=15) + SEC, ShiftStatus.LATE),
    (timedelta(minutes=60) - SEC, ShiftStatus.LATE),
    (timedelta(minutes=60), ShiftStatus.MISSED),
    (timedelta(minutes=60) + SEC, ShiftStatus.MISSED),
])
def test_no_clock_in_by_deadlines(offset: timedelta, expected: ShiftStatus) -> None:
    assert shift_status(SHIFT, None, T0 + offset) == expected
    empty = shift_ledger(SHIFT, (), (), (), ZoneInfo("Europe/London"))
    assert shift_status(SHIFT, empty, T0 + offset) == expected


def test_thresholds_are_settings() -> None:
    th = replace(DEFAULT_THRESHOLDS, late_start_minutes=5, missed_visit_minutes=30)
    assert late_deadline(SHIFT, th) == T0 + timedelta(minutes=5)
    assert missed_deadline(SHIFT, th) == T0 + timedelta(minutes=30)
    assert shift_status(SHIFT, None, T0 + timedelta(minutes=5), th) == ShiftStatus.LATE
    assert shift_status(SHIFT, None, T0 + timedelta(minutes=30), th) == ShiftStatus.MISSED


def test_attendance_decides_once_someone_clocks_in() -> None:
    clock_in = ClockEvent("a", "SH", "C1", "in", T0 + timedelta(minutes=70), "nfc")
    clock_out = ClockEvent("b", "SH", "C1", "out", T0 + timedelta(minutes=90), "nfc")
    late = T0 + timedelta(hours=3)
    open_ledger = shift_ledger(SHIFT, [clock_in], (), (), ZoneInfo("Europe/London"))
    assert shift_status(SHIFT, open_ledger, late) == ShiftStatus.IN_PROGRESS
    closed = shift_ledger(SHIFT, [clock_in, clock_out], (), (), ZoneInfo("Europe/London"))
    assert shift_status(SHIFT, closed, late) == ShiftStatus.COMPLETED


def test_cancelled_wins() -> None:
    cancelled = Shift("SH", "PKG", "PRV", T0, T0 + timedelta(hours=1), "personal_care", cancelled_by="person")
    assert shift_status(cancelled, None, T0 + timedelta(hours=2)) == ShiftStatus.CANCELLED
