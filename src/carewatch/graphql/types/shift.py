# mypy: disable-error-code="untyped-decorator"
"""Shift (a visit): plan, status now, attendance and what it delivered."""

from datetime import datetime
from fractions import Fraction
from typing import Any

import strawberry

from carewatch.domain.model import Shift as ShiftValue
from carewatch.domain.model import ShiftLedger
from carewatch.domain.model import ShiftStatus as ShiftStatusValue
from carewatch.domain.money import round_half_up, spend_pence
from carewatch.graphql.types.attendance import Attendance

ShiftStatus = strawberry.enum(ShiftStatusValue, name="ShiftStatus")


@strawberry.type(description="A scheduled block of care for a package.")
class Shift:
    value: strawberry.Private[ShiftValue]
    id: strawberry.ID
    package_id: strawberry.ID
    provider_id: strawberry.ID
    starts_at: datetime
    ends_at: datetime
    service_type: str
    carers_required: int
    carer_ids: list[strawberry.ID]
    required_competencies: list[str]
    cancelled_by: str | None
    # Plain values from the shift's ledger, read for a whole page at once (resolvers/shifts.py `shift_nodes`).
    status: ShiftStatus = strawberry.field(  # type: ignore[valid-type]
        description="SCHEDULED, LATE, IN_PROGRESS, COMPLETED, MISSED or CANCELLED, as of now.")
    attendance: list[Attendance]
    actual_minutes: float
    payable_minutes: float
    spend_pence: int = strawberry.field(description="Payable seconds x rate, rounded half-up to whole pence.")

    @classmethod
    def from_row(cls, shift: ShiftValue, ledger: ShiftLedger | None,
                 status: ShiftStatusValue | None = None) -> "Shift":
        """`status` may be left out only where the operation does not select it; no ledger reads as zero."""
        return cls(
            value=shift,
            id=strawberry.ID(shift.shift_id),
            package_id=strawberry.ID(shift.package_id),
            provider_id=strawberry.ID(shift.provider_id),
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            service_type=shift.service_type,
            carers_required=shift.carers_required,
            carer_ids=[strawberry.ID(c) for c in shift.carer_ids],
            required_competencies=list(shift.required_competencies),
            cancelled_by=shift.cancelled_by,
            status=_unselected() if status is None else status,
            attendance=[Attendance.from_row(a) for a in ledger.attendance] if ledger else [],
            actual_minutes=float(Fraction(ledger.actual_seconds, 60)) if ledger else 0.0,
            payable_minutes=float(Fraction(ledger.payable_seconds, 60)) if ledger else 0.0,
            spend_pence=round_half_up(spend_pence(ledger.rate_seconds)) if ledger else 0,
        )


def _unselected() -> Any:
    """Stands for a status the operation did not select: GraphQL never reads it, so nothing computes it."""
    return None
