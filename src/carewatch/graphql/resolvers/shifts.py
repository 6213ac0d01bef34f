"""shift(id) and shifts(filter, first, after), ordered by (starts_at, shift_id)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from carewatch.domain.model import Shift as ShiftValue
from carewatch.domain.model import ShiftLedger, ShiftStatus
from carewatch.domain.status import shift_status
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS, resolve_thresholds
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.graphql.filters import ShiftFilter
from carewatch.graphql.pagination import decode_shift_cursor, page_size, shift_cursor
from carewatch.graphql.selection import selected_names
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.shift import Shift
from carewatch.store import read_models
from carewatch.store.read_models import ShiftQuery

# Status is computed now, not stored, so a status filter reads ahead in chunks of at least this.
_STATUS_CHUNK = 200


# Fields read from a shift's ledger; status also needs its package's thresholds.
_LEDGER_FIELDS = frozenset({"status", "attendance", "actualMinutes", "payableMinutes", "spendPence"})


async def _ledgers_and_statuses(info: Info, values: Sequence[ShiftValue], with_status: bool
                                ) -> tuple[list[ShiftLedger | None], list[ShiftStatus] | None]:
    """The shifts' ledgers (one query) and, if asked, their statuses now (and one thresholds query).

    Read models are called directly, not through the loaders: the page already is the batch.
    """
    pool = info.context.pool
    ledgers_q = read_models.ledgers_by_shift_ids(pool, [v.shift_id for v in values])
    if not with_status:
        found = await ledgers_q
        return [found.get(v.shift_id) for v in values], None
    found, overrides = await asyncio.gather(
        ledgers_q, read_models.threshold_overrides(pool, list({v.package_id for v in values})))
    ledgers = [found.get(v.shift_id) for v in values]
    thresholds = {p: resolve_thresholds(DEFAULT_THRESHOLDS, dict(c), dict(o)) for p, (c, o) in overrides.items()}
    now = info.context.clock.now()
    statuses = [shift_status(v, lg, now, thresholds.get(v.package_id, DEFAULT_THRESHOLDS))
                for v, lg in zip(values, ledgers, strict=True)]
    return ledgers, statuses


async def statuses_of(info: Info, values: Sequence[ShiftValue]) -> list[ShiftStatus]:
    """Each shift's status now, from one ledger query and one thresholds query for the lot."""
    statuses = (await _ledgers_and_statuses(info, values, True))[1]
    assert statuses is not None
    return statuses


async def shift_nodes(info: Info, values: Sequence[ShiftValue], *, need_status: bool = False) -> list[Shift]:
    """The shifts with the figures the operation selects, for all of them in one or two queries.

    status, attendance and the minutes are then plain values: no resolver, no await per shift.
    """
    names = selected_names(info) | ({"status"} if need_status else set())
    if not names & _LEDGER_FIELDS or not values:
        return [Shift.from_row(v, None) for v in values]
    ledgers, statuses = await _ledgers_and_statuses(info, values, "status" in names)
    if statuses is None:
        return [Shift.from_row(v, lg) for v, lg in zip(values, ledgers, strict=True)]
    return [Shift.from_row(v, lg, st) for v, lg, st in zip(values, ledgers, statuses, strict=True)]


async def shift(info: Info, shift_id: str) -> Shift | None:
    value = await info.context.loaders.shifts.load(shift_id)
    return (await shift_nodes(info, [value]))[0] if value else None


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    if at.tzinfo is None:
        raise ClientError("from and to need a UTC offset, e.g. 2026-04-06T00:00:00+01:00")
    return at.astimezone(UTC)


def _query(f: ShiftFilter) -> ShiftQuery:
    start, end = _utc(f.from_), _utc(f.to)
    cancelled = None if f.status is None else f.status == ShiftStatus.CANCELLED
    return ShiftQuery(package_id=f.package_id, provider_id=f.provider_id,
                      starts_from=start, starts_before=end, cancelled=cancelled)


async def shifts(info: Info, shift_filter: ShiftFilter | None, first: int | None,
                 after: str | None) -> Connection[Shift]:
    size = page_size(first)
    f = shift_filter or ShiftFilter()
    query = _query(f)
    ctx = info.context
    key = decode_shift_cursor(after)
    chunk = size + 1 if f.status is None else max(size + 1, _STATUS_CHUNK)
    found: list[ShiftValue] = []
    while len(found) <= size:
        batch = await read_models.list_shifts(ctx.pool, ctx.viewer, query, after=key, limit=chunk)
        for value in batch:
            ctx.loaders.shifts.prime(value.shift_id, value)
        if f.status is None:
            found.extend(batch)
        else:
            statuses = await statuses_of(info, batch)
            found.extend(v for v, s in zip(batch, statuses, strict=True) if s == f.status)
        if len(batch) < chunk:
            break
        key = (batch[-1].starts_at, batch[-1].shift_id)
    page = found[:size]
    nodes = await shift_nodes(info, page)
    return Connection.of([(shift_cursor(v.starts_at, v.shift_id), n) for v, n in zip(page, nodes, strict=True)],
                         has_next_page=len(found) > size)
