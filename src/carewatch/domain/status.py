"""The status of a shift at a moment of processing time."""

from __future__ import annotations

from datetime import datetime

from carewatch.domain.deadlines import late_deadline, missed_deadline
from carewatch.domain.model import Shift, ShiftLedger, ShiftStatus
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS, Thresholds


def shift_status(shift: Shift, ledger: ShiftLedger | None, now: datetime,
                 th: Thresholds = DEFAULT_THRESHOLDS) -> ShiftStatus:
    """CANCELLED, IN_PROGRESS, COMPLETED, or with no clock-in yet MISSED, LATE or SCHEDULED.

    The deadlines are inclusive: at exactly starts_at + 15 min with no clock-in the shift is late.
    """
    if shift.cancelled_by is not None:
        return ShiftStatus.CANCELLED
    if ledger is not None:
        # The counts are read too, so that a ledger loaded without its pairs gives the same answer.
        if ledger.open_attendances > 0 or any(p.clock_out_at is None for p in ledger.attendance):
            return ShiftStatus.IN_PROGRESS
        if ledger.attendance or ledger.first_clock_in_at is not None:
            return ShiftStatus.COMPLETED
    if now >= missed_deadline(shift, th):
        return ShiftStatus.MISSED
    if now >= late_deadline(shift, th):
        return ShiftStatus.LATE
    return ShiftStatus.SCHEDULED
