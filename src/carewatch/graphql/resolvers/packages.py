"""package(id) and packages(filter, first, after)."""

from __future__ import annotations

from carewatch.graphql.context import Info
from carewatch.graphql.filters import PackageFilter
from carewatch.graphql.pagination import decode_package_cursor, package_cursor, page_size
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.package import CarePackage
from carewatch.store import read_models


async def package(info: Info, package_id: str) -> CarePackage | None:
    record = await info.context.loaders.packages.load(package_id)
    return CarePackage.from_row(record) if record else None


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
    return Connection.of([(package_cursor(r.package.package_id), CarePackage.from_row(r)) for r in page],
                         has_next_page=len(rows) > size)
