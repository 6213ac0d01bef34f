"""A package's delivery in a window and its budget, from ledger sums and the domain's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carewatch.domain import budget as budget_rules
from carewatch.domain import delivery as delivery_rules
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.store.rows import PackageRecord, period_bounds

ROLLING_WINDOW = timedelta(days=7)


def window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A client's [from, to): both with an offset, in order; as UTC."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ClientError("from and to need a UTC offset, e.g. 2026-04-06T00:00:00+01:00")
    if end <= start:
        raise ClientError("to must be after from")
    return start.astimezone(UTC), end.astimezone(UTC)


async def delivery_in(info: Info, record: PackageRecord, start: datetime, end: datetime
                      ) -> delivery_rules.Delivery:
    start, end = window(start, end)
    sums = await info.context.loaders.window_sums.load((record.package.package_id, start, end))
    return delivery_rules.delivery(record.package, sums, start, end)


async def rolling_7_days(info: Info, record: PackageRecord) -> delivery_rules.Delivery:
    """The 7 days up to the processing clock's now."""
    now = info.context.clock.now().astimezone(UTC)
    return await delivery_in(info, record, now - ROLLING_WINDOW, now)


async def budget(info: Info, record: PackageRecord) -> budget_rules.BudgetStatus:
    """Spend of shifts starting within the package period, forecast to its end."""
    package = record.package
    start, end = period_bounds(package.period_start, package.period_end, package.timezone)
    sums = await info.context.loaders.window_sums.load((package.package_id, start, end))
    return budget_rules.budget_status(package, sums.rate_seconds, info.context.clock.now())
