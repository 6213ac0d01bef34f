"""Delivery: what a package's shifts delivered in a window, against its care plan."""

import strawberry

from carewatch.domain import delivery as delivery_rules


@strawberry.type(description="Carer-minutes and spend of the shifts starting in a window.")
class Delivery:
    planned_minutes: float = strawberry.field(description="Care plan carer-minutes prorated to the window.")
    scheduled_minutes: float = strawberry.field(description="Planned carer-minutes of shifts not cancelled.")
    actual_minutes: float
    payable_minutes: float
    overrun_minutes: float
    unverified_minutes: float
    provider_cancelled_minutes: float
    spend_pence: int
    variance_minutes: float = strawberry.field(description="actualMinutes - plannedMinutes.")

    @classmethod
    def from_domain(cls, d: delivery_rules.Delivery) -> "Delivery":
        return cls(
            planned_minutes=float(d.planned_minutes),
            scheduled_minutes=float(d.scheduled_minutes),
            actual_minutes=float(d.actual_minutes),
            payable_minutes=float(d.payable_minutes),
            overrun_minutes=float(d.overrun_minutes),
            unverified_minutes=float(d.unverified_minutes),
            provider_cancelled_minutes=float(d.provider_cancelled_minutes),
            spend_pence=d.spend_pence,
            variance_minutes=float(d.variance_minutes),
        )
