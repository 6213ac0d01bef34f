"""shift(id) and shifts(filter, first, after), ordered by (starts_at, shift_id)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from carewatch.domain.model import Shift as ShiftValue
from carewatch.domain.model import ShiftStatus
from carewatch.domain.status import shift_status
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


async def statuses_of(info: Info, values: Sequence[ShiftValue]) -> list[ShiftStatus]:
    """Each shift's status now, from one ledger query and one package query for the lot."""
    loaders = info.context.loaders
    ledgers, thresholds = await asyncio.gather(loaders.ledgers.load_many([v.shift_id for v in values]),
                                               loaders.thresholds.load_many([v.package_id for v in values]))
    now = info.context.clock.now()
    return [shift_status(v, lg, now, th) for v, lg, th in zip(values, ledgers, thresholds, strict=True)]


async def shift_nodes(info: Info, values: Sequence[ShiftValue], *, need_status: bool = False) -> list[Shift]:
    """The shifts with the figures the operation selects, for all of them in one or two queries.

    status, attendance and the minutes are then plain values: no resolver, no await per shift.
    """
    names = selected_names(info) | ({"status"} if need_status else set())
    if not names & _LEDGER_FIELDS:
        return [Shift.from_row(v, None) for v in values]
    ledgers = await info.context.loaders.ledgers.load_many([v.shift_id for v in values])
    if "status" not in names:
        return [Shift.from_row(v, lg) for v, lg in zip(values, ledgers, strict=True)]
    statuses = await statuses_of(info, values)  # the ledgers are cached by now: one thresholds query
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
