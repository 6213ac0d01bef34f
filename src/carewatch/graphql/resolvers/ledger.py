"""A package's delivery in a window and its budget, from ledger sums and the domain's rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from carewatch.domain import budget as budget_rules
from carewatch.domain import delivery as delivery_rules
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.store import read_models
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


async def page_figures(info: Info, records: Sequence[PackageRecord], *, rolling: bool, budget: bool
                       ) -> tuple[list[delivery_rules.Delivery], list[budget_rules.BudgetStatus]]:
    """The 7 days up to now and the budget of each package asked for, from one query for the page.

    The read model is called directly (not through the loader): the page already is the batch.
    """
    rolling_windows = [_rolling_window(info, r) for r in records] if rolling else []
    budget_windows = [_budget_window(r) for r in records] if budget else []
    if not rolling_windows and not budget_windows:
        return [], []
    sums = await read_models.window_sums(info.context.pool, [*rolling_windows, *budget_windows])
    now = info.context.clock.now()
    deliveries = [delivery_rules.delivery(r.package, sums[w], w[1], w[2])
                  for r, w in zip(records, rolling_windows, strict=False)]
    budgets = [budget_rules.budget_status(r.package, sums[w].rate_seconds, now)
               for r, w in zip(records, budget_windows, strict=False)]
    return deliveries, budgets
