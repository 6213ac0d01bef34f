"""Shift status at the late and missed deadlines, to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carewatch.domain.attendance import shift_ledger
from carewatch.domain.model import ClockEvent, Shift, ShiftStatus
from carewatch.domain.status import late_deadline, missed_deadline, shift_status

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
    assert late_deadline(SHIFT, 5) == T0 + timedelta(minutes=5)
    assert missed_deadline(SHIFT, 30) == T0 + timedelta(minutes=30)
    assert shift_status(SHIFT, None, T0 + timedelta(minutes=5), 5, 30) == ShiftStatus.LATE
    assert shift_status(SHIFT, None, T0 + timedelta(minutes=30), 5, 30) == ShiftStatus.MISSED


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
