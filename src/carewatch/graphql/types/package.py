# mypy: disable-error-code="untyped-decorator"
"""CarePackage: the unit of oversight."""

from datetime import date, datetime
from typing import Annotated

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

    @classmethod
    def from_row(cls, record: PackageRecord) -> "CarePackage":
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

    @strawberry.field(name="rolling7Days", description="The 7 days up to now (the processing clock).")
    async def rolling_7_days(self, info: Info) -> Delivery:
        return Delivery.from_domain(await ledger.rolling_7_days(info, self.record))

    @strawberry.field
    async def budget(self, info: Info) -> BudgetStatus:
        return BudgetStatus.from_domain(await ledger.budget(info, self.record))

    @strawberry.field(description="The package's invoices (latest versions), by periodStart.")
    async def invoices(self, info: Info, filter: InvoiceFilter | None = None, first: int | None = None,
                       after: str | None = None) -> Connection[Invoice]:
        from carewatch.graphql.resolvers import invoices  # the resolver module imports the types

        return await invoices.invoices(info, filter, first, after, package_id=self.record.package.package_id)
