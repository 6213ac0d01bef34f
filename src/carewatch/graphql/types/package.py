# mypy: disable-error-code="untyped-decorator"
"""CarePackage: the unit of oversight."""

from datetime import date, datetime
from typing import Annotated, Any

import strawberry

from carewatch.graphql.context import Info
from carewatch.graphql.resolvers import ledger
from carewatch.graphql.types.budget import BudgetStatus
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.delivery import Delivery
from carewatch.graphql.types.invoice import Invoice, InvoiceFilter
from carewatch.graphql.types.person import Person
from carewatch.store.rows import PackageRecord


@strawberry.type(description="A commissioned care package: plan, budget and what was delivered.")
class CarePackage:
    record: strawberry.Private[PackageRecord]
    id: strawberry.ID
    commissioner_id: strawberry.ID
    provider_id: strawberry.ID
    mechanism: str
    period_start: date
    period_end: date
    budget_pence: int
    contingency_pence: int
    planned_minutes_per_week: float = strawberry.field(
        description="Carer-minutes a week: sum of minutes_per_week x carers.")
    # Plain values, computed for a whole page at once by resolvers/packages.py (see `package_nodes`).
    rolling_7_days: Delivery = strawberry.field(name="rolling7Days",
                                                description="The 7 days up to now (the processing clock).")
    budget: BudgetStatus

    @classmethod
    def from_row(cls, record: PackageRecord, rolling_7_days: Delivery | None = None,
                 budget: BudgetStatus | None = None) -> "CarePackage":
        """`rolling_7_days` and `budget` may be left out only where the operation does not select them."""
        p = record.package
        return cls(
            record=record,
            id=strawberry.ID(p.package_id),
            commissioner_id=strawberry.ID(p.commissioner_id),
            provider_id=strawberry.ID(p.provider_id),
            mechanism=p.mechanism,
            period_start=p.period_start,
            period_end=p.period_end,
            budget_pence=p.budget_pence,
            contingency_pence=p.contingency_pence,
            planned_minutes_per_week=float(record.planned_minutes_per_week),
            rolling_7_days=_unselected() if rolling_7_days is None else rolling_7_days,
            budget=_unselected() if budget is None else budget,
        )

    @strawberry.field(description="The person cared for; NHS number masked except to admin.")
    def person(self, info: Info) -> Person:
        return Person.from_row(self.record, info.context.viewer)

    @strawberry.field(description="Shifts starting in [from, to).")
    async def delivery(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> Delivery:
        return Delivery.from_domain(await ledger.delivery_in(info, self.record, from_, to))

    @strawberry.field(description="The package's invoices (latest versions), by periodStart.")
    async def invoices(self, info: Info, filter: InvoiceFilter | None = None, first: int | None = None,
                       after: str | None = None) -> Connection[Invoice]:
        from carewatch.graphql.resolvers import invoices  # the resolver module imports the types

        return await invoices.invoices(info, filter, first, after, package_id=self.record.package.package_id)


def _unselected() -> Any:
    """Stands for a figure the operation did not select: GraphQL never reads it, so nothing computes it."""
    return None
