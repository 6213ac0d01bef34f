# mypy: disable-error-code="untyped-decorator"
"""Statement: the commissioner's books for a package, a provider or a commissioner (DOMAIN.md)."""

from datetime import date

import strawberry

from carewatch.domain.statements import Statement as StatementValue
from carewatch.domain.statements import StatementScope as StatementScopeValue

StatementScope = strawberry.enum(StatementScopeValue, name="StatementScope",
                                 description="What a statement covers: one package, provider or commissioner.")


@strawberry.input(description="Narrow statements to one commissioner's and/or one provider's packages.")
class StatementFilter:
    commissioner_id: strawberry.ID | None = None
    provider_id: strawberry.ID | None = None


@strawberry.type(description="Ordered, delivered, invoiced and matched over local dates [from, to); "
                             "sums over the packages in scope, never averages of ratios.")
class Statement:
    scope: StatementScope  # type: ignore[valid-type]
    id: strawberry.ID
    from_: date = strawberry.field(name="from")
    to: date
    packages: int = strawberry.field(description="How many packages the statement adds up.")
    ordered_minutes: float = strawberry.field(description="Care plan carer-minutes prorated to the window.")
    ordered_pence: int
    delivered_minutes: float = strawberry.field(description="Payable carer-minutes of shifts starting in it.")
    delivered_pence: int
    unverified_minutes: float = strawberry.field(description="Delivered minutes from manual or corrected "
                                                             "attendance (included in delivered).")
    invoiced_pence: int = strawberry.field(description="Latest versions of invoices whose period starts in it.")
    matched_pence: int
    disputed_invoices: int
    variance_minutes: float = strawberry.field(description="Delivered - ordered: negative is under-delivery.")
    variance_share: float | None = strawberry.field(description="Variance / ordered minutes; null if none ordered.")
    recoverable_underspend_pence: int = strawberry.field(description="Each package's recoverable underspend "
                                                                     "now, summed.")
    direct_minutes: float = strawberry.field(description="Attended carer-minutes, overrun included.")
    non_direct_minutes: float = strawberry.field(description="Travel, waiting, training, supervision, admin.")
    non_direct_care_share: float | None = strawberry.field(
        description="Non-direct / (direct + non-direct) minutes; null where no non-direct time was logged.")

    @classmethod
    def from_domain(cls, s: StatementValue) -> "Statement":
        share = s.variance_share
        return cls(
            scope=s.scope, id=strawberry.ID(s.id), from_=s.start, to=s.end, packages=s.packages,
            ordered_minutes=float(s.ordered_minutes), ordered_pence=s.ordered_pence,
            delivered_minutes=float(s.delivered_minutes), delivered_pence=s.delivered_pence,
            unverified_minutes=float(s.unverified_minutes), invoiced_pence=s.invoiced_pence,
            matched_pence=s.matched_pence, disputed_invoices=s.disputed_invoices,
            variance_minutes=float(s.variance_minutes), variance_share=None if share is None else float(share),
            recoverable_underspend_pence=s.recoverable_underspend_pence,
            direct_minutes=float(s.direct_minutes), non_direct_minutes=float(s.non_direct_minutes),
            non_direct_care_share=None if s.non_direct_care_share is None else float(s.non_direct_care_share),
        )

