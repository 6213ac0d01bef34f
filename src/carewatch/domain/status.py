"""The status of a shift at a moment of processing time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carewatch.domain.model import Shift, ShiftLedger, ShiftStatus


def late_deadline(shift: Shift, late_after_minutes: float = 15) -> datetime:
    """The instant after which a shift with no clock-in is late."""
    return shift.starts_at.astimezone(UTC) + timedelta(minutes=late_after_minutes)


def missed_deadline(shift: Shift, missed_after_minutes: float = 60) -> datetime:
    """The instant after which a shift with no clock-in is missed."""
    return shift.starts_at.astimezone(UTC) + timedelta(minutes=missed_after_minutes)


def shift_status(
    shift: Shift,
    ledger: ShiftLedger | None,
    now: datetime,
    late_after_minutes: float = 15,
    missed_after_minutes: float = 60,
) -> ShiftStatus:
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
    if now >= missed_deadline(shift, missed_after_minutes):
        return ShiftStatus.MISSED
    if now >= late_deadline(shift, late_after_minutes):
        return ShiftStatus.LATE
    return ShiftStatus.SCHEDULED
