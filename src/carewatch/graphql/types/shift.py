# mypy: disable-error-code="untyped-decorator"
"""Shift (a visit): plan, status now, attendance and what it delivered."""

from datetime import datetime
from fractions import Fraction

import strawberry

from carewatch.domain.model import Shift as ShiftValue
from carewatch.domain.model import ShiftStatus as ShiftStatusValue
from carewatch.domain.money import round_half_up, spend_pence
from carewatch.graphql.context import Info
from carewatch.graphql.resolvers.shift_status import status_of
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

    @classmethod
    def from_row(cls, shift: ShiftValue) -> "Shift":
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
        )

    @strawberry.field(description="SCHEDULED, LATE, IN_PROGRESS, COMPLETED, MISSED or CANCELLED, as of now.")
    async def status(self, info: Info) -> ShiftStatus:  # type: ignore[valid-type]
        return await status_of(info, self.value)

    @strawberry.field
    async def attendance(self, info: Info) -> list[Attendance]:
        ledger = await info.context.loaders.ledgers.load(self.value.shift_id)
        return [Attendance.from_row(a) for a in ledger.attendance] if ledger else []

    @strawberry.field
    async def actual_minutes(self, info: Info) -> float:
        ledger = await info.context.loaders.ledgers.load(self.value.shift_id)
        return float(Fraction(ledger.actual_seconds, 60)) if ledger else 0.0

    @strawberry.field
    async def payable_minutes(self, info: Info) -> float:
        ledger = await info.context.loaders.ledgers.load(self.value.shift_id)
        return float(Fraction(ledger.payable_seconds, 60)) if ledger else 0.0

    @strawberry.field(description="Payable seconds x rate, rounded half-up to whole pence.")
    async def spend_pence(self, info: Info) -> int:
        ledger = await info.context.loaders.ledgers.load(self.value.shift_id)
        return round_half_up(spend_pence(ledger.rate_seconds)) if ledger else 0
