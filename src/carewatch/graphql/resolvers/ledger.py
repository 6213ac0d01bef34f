"""A package's delivery in a window and its budget, from ledger sums and the domain's rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from carewatch.domain import budget as budget_rules
from carewatch.domain import delivery as delivery_rules
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.store.read_models import Window
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


def _rolling_window(info: Info, record: PackageRecord) -> Window:
    """The 7 days up to the processing clock's now."""
    now = info.context.clock.now().astimezone(UTC)
    return record.package.package_id, now - ROLLING_WINDOW, now


def _budget_window(record: PackageRecord) -> Window:
    """Shifts starting within the package period."""
    package = record.package
    start, end = period_bounds(package.period_start, package.period_end, package.timezone)
    return package.package_id, start, end


async def rolling_7_days_of(info: Info, records: Sequence[PackageRecord]) -> list[delivery_rules.Delivery]:
    """The 7 days up to now of each package, from one query for the lot."""
    windows = [_rolling_window(info, r) for r in records]
    sums = await info.context.loaders.window_sums.load_many(windows)
    return [delivery_rules.delivery(r.package, s, w[1], w[2]) for r, s, w in zip(records, sums, windows, strict=True)]


async def budgets_of(info: Info, records: Sequence[PackageRecord]) -> list[budget_rules.BudgetStatus]:
    """Each package's spend within its period, forecast to its end, from one query for the lot."""
    sums = await info.context.loaders.window_sums.load_many([_budget_window(r) for r in records])
    now = info.context.clock.now()
    return [budget_rules.budget_status(r.package, s.rate_seconds, now) for r, s in zip(records, sums, strict=True)]
