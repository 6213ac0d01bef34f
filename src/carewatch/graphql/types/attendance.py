# mypy: disable-error-code="untyped-decorator"
"""Attendance: one carer's clock-in/clock-out pair on a shift, and the correction that made it, if any."""

from datetime import datetime

import strawberry

from carewatch.domain.model import AttendancePair


@strawberry.type(description="A visit.corrected behind an attendance: why, who made it and when.")
class AttendanceCorrection:
    reason_code: str
    corrected_by: str
    corrected_at: datetime = strawberry.field(description="When the correction was made (its occurred_at).")


@strawberry.type(description="One carer's clock-in and clock-out on a shift.")
class Attendance:
    carer_id: strawberry.ID
    clock_in_at: datetime
    clock_out_at: datetime | None
    method: str
    verified: bool = strawberry.field(description="False for manual or corrected attendance.")
    correction: AttendanceCorrection | None = strawberry.field(
        description="The correction that replaced this carer's clock events; null when none did.")

    @classmethod
    def from_row(cls, pair: AttendancePair) -> "Attendance":
        correction = None
        if pair.corrected_at is not None:
            correction = AttendanceCorrection(reason_code=pair.reason_code or "",
                                              corrected_by=pair.corrected_by or "",
                                              corrected_at=pair.corrected_at)
        return cls(
            carer_id=strawberry.ID(pair.carer_id),
            clock_in_at=pair.clock_in_at,
            clock_out_at=pair.clock_out_at,
            method=pair.method,
            verified=pair.verified,
            correction=correction,
        )
