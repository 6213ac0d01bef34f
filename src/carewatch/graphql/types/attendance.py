"""Attendance: one carer's clock-in/clock-out pair on a shift."""

from datetime import datetime

import strawberry

from carewatch.domain.model import AttendancePair


@strawberry.type(description="One carer's clock-in and clock-out on a shift.")
class Attendance:
    carer_id: strawberry.ID
    clock_in_at: datetime
    clock_out_at: datetime | None
    method: str
    verified: bool = strawberry.field(description="False for manual or corrected attendance.")

    @classmethod
    def from_row(cls, pair: AttendancePair) -> "Attendance":
        return cls(
            carer_id=strawberry.ID(pair.carer_id),
            clock_in_at=pair.clock_in_at,
            clock_out_at=pair.clock_out_at,
            method=pair.method,
            verified=pair.verified,
        )
