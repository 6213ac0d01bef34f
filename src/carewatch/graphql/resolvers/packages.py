"""package(id) and packages(filter, first, after)."""

from __future__ import annotations

from collections.abc import Sequence

from carewatch.graphql.context import Info
from carewatch.graphql.filters import PackageFilter
from carewatch.graphql.pagination import decode_package_cursor, package_cursor, page_size
from carewatch.graphql.resolvers import ledger
from carewatch.graphql.selection import selected_names
from carewatch.graphql.types.budget import BudgetStatus
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.delivery import Delivery
from carewatch.graphql.types.package import CarePackage
from carewatch.store import read_models
from carewatch.store.rows import PackageRecord


async def package_nodes(info: Info, records: Sequence[PackageRecord]) -> list[CarePackage]:
    """The packages with the figures the operation selects, for all of them in one ledger query.

    rolling7Days and budget are then plain values: no resolver, no await per package.
    """
    names = selected_names(info)
    want_rolling, want_budget = "rolling7Days" in names, "budget" in names
    rolling, budgets = await ledger.page_figures(info, records, rolling=want_rolling, budget=want_budget)
    return [CarePackage.from_row(r, Delivery.from_domain(rolling[i]) if want_rolling else None,
                                 BudgetStatus.from_domain(budgets[i]) if want_budget else None)
            for i, r in enumerate(records)]


async def package(info: Info, package_id: str) -> CarePackage | None:
    record = await info.context.loaders.packages.load(package_id)
    return (await package_nodes(info, [record]))[0] if record else None


async def packages(info: Info, package_filter: PackageFilter | None, first: int | None,
                   after: str | None) -> Connection[CarePackage]:
    size = page_size(first)
    f = package_filter or PackageFilter()
    ctx = info.context
    rows = await read_models.list_packages(
        ctx.pool, ctx.viewer,
        commissioner_id=f.commissioner_id, provider_id=f.provider_id,
        after_id=decode_package_cursor(after), limit=size + 1, default_tz=ctx.settings.timezone,
    )
    for record in rows:  # later fields of these packages reuse the rows
        ctx.loaders.packages.prime(record.package.package_id, record)
    page = rows[:size]
    nodes = await package_nodes(info, page)
    return Connection.of([(package_cursor(r.package.package_id), n) for r, n in zip(page, nodes, strict=True)],
                         has_next_page=len(rows) > size)
