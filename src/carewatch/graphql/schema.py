# mypy: disable-error-code="untyped-decorator"
"""The root types of the GraphQL API (contracts/GRAPHQL.md) and the schema built from them."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date
from typing import Annotated

import strawberry
from strawberry.schema.config import StrawberryConfig

from carewatch.graphql import subscriptions
from carewatch.graphql.context import Info
from carewatch.graphql.filters import AlertFilter, PackageFilter, ShiftFilter
from carewatch.graphql.resolvers import alerts as alert_resolvers
from carewatch.graphql.resolvers import invoices, packages, shifts
from carewatch.graphql.resolvers import statements as statement_resolvers
from carewatch.graphql.types.alert import Alert
from carewatch.graphql.types.caller import AlertKindInfo, Caller, alert_kinds
from carewatch.graphql.types.clock import ProcessingClock
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.invoice import Invoice, InvoiceFilter
from carewatch.graphql.types.package import CarePackage
from carewatch.graphql.types.shift import Shift
from carewatch.graphql.types.statement import Statement, StatementFilter, StatementScope
from carewatch.security.limits import BATCHING, graphql_extensions


@strawberry.type
class Query:
    @strawberry.field(description="One package, or null if it does not exist for this caller.")
    async def package(self, info: Info, id: strawberry.ID) -> CarePackage | None:
        return await packages.package(info, str(id))

    @strawberry.field(description="Packages in id order; first defaults to 50, at most 500.")
    async def packages(self, info: Info, filter: PackageFilter | None = None, first: int | None = None,
                       after: str | None = None) -> Connection[CarePackage]:
        return await packages.packages(info, filter, first, after)

    @strawberry.field(description="One shift, or null if it does not exist for this caller.")
    async def shift(self, info: Info, id: strawberry.ID) -> Shift | None:
        return await shifts.shift(info, str(id))

    @strawberry.field(description="Shifts in (startsAt, id) order; first defaults to 50, at most 500.")
    async def shifts(self, info: Info, filter: ShiftFilter | None = None, first: int | None = None,
                     after: str | None = None) -> Connection[Shift]:
        return await shifts.shifts(info, filter, first, after)

    @strawberry.field(description="One invoice with its three-way match, or null.")
    async def invoice(self, info: Info, id: strawberry.ID) -> Invoice | None:
        return await invoices.invoice(info, str(id))

    @strawberry.field(description="Invoices (latest versions) in (periodStart, id) order, each with its match.")
    async def invoices(self, info: Info, filter: InvoiceFilter | None = None, first: int | None = None,
                       after: str | None = None) -> Connection[Invoice]:
        return await invoices.invoices(info, filter, first, after)

    @strawberry.field(description="One statement over local dates [from, to), or null if nothing of it is in scope.")
    async def statement(self, info: Info, scope: StatementScope, id: strawberry.ID,  # type: ignore[valid-type]
                        from_: Annotated[date, strawberry.argument(name="from")], to: date) -> Statement | None:
        return await statement_resolvers.statement(info, scope, str(id), from_, to)

    @strawberry.field(description="Statements as a league table: most under-delivered share of ordered "
                                  "minutes first; first defaults to 50, at most 500.")
    async def statements(self, info: Info, scope: StatementScope,  # type: ignore[valid-type]
                         from_: Annotated[date, strawberry.argument(name="from")], to: date,
                         filter: StatementFilter | None = None, first: int | None = None,
                         after: str | None = None) -> Connection[Statement]:
        return await statement_resolvers.league(info, scope, filter, from_, to, first, after)

    @strawberry.field(description="Alerts the caller may see, newest first; `since` catches up.")
    async def alerts(self, info: Info, filter: AlertFilter | None = None, first: int | None = None,
                     after: str | None = None) -> Connection[Alert]:
        return await alert_resolvers.alerts(info, filter, first, after)

    @strawberry.field(description="The processing clock: what time the service thinks it is, and how fast.")
    def clock(self, info: Info) -> ProcessingClock:
        return ProcessingClock.read(info.context.clock, info.context.settings.timezone)

    @strawberry.field(description="Who the token belongs to.")
    def me(self, info: Info) -> Caller:
        viewer = info.context.viewer
        return Caller.of(viewer, alert_resolvers.may_act_on_alerts(viewer))

    @strawberry.field(description="Every kind of alert with its default severity.")
    def alert_kinds(self) -> list[AlertKindInfo]:
        return alert_kinds()


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Mark an alert as being handled (safeguarding and admin).")
    async def acknowledge_alert(self, info: Info, id: strawberry.ID, note: str | None = None) -> Alert:
        return await alert_resolvers.acknowledge_alert(info, str(id), note)

    @strawberry.mutation(description="Close an alert, saying why (safeguarding and admin).")
    async def resolve_alert(self, info: Info, id: strawberry.ID, note: str) -> Alert:
        return await alert_resolvers.resolve_alert(info, str(id), note)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Alerts as they are raised or change status.")
    async def alerts(self, info: Info, filter: AlertFilter | None = None) -> AsyncGenerator[Alert, None]:
        async for alert in subscriptions.alert_stream(info, filter):
            yield alert

    @strawberry.subscription(description="Shifts as their attendance or status changes.")
    async def shift_updates(self, info: Info,
                            filter: ShiftFilter | None = None) -> AsyncGenerator[Shift, None]:
        async for shift in subscriptions.shift_update_stream(info, filter):
            yield shift


def build_schema(*, production: bool = False) -> strawberry.Schema:
    """The schema; production masks unexpected errors and hides introspection."""
    # Depth, token and alias limits always; introspection off and errors masked in production
    # (ClientError messages stay visible: they are the caller's own mistakes).
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription,
                             extensions=graphql_extensions(production),
                             config=StrawberryConfig(batching_config=BATCHING))


schema = build_schema()
