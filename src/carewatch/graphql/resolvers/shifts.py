"""shift(id) and shifts(filter, first, after), ordered by (starts_at, shift_id)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from carewatch.domain.model import Shift as ShiftValue
from carewatch.domain.model import ShiftStatus
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.graphql.filters import ShiftFilter
from carewatch.graphql.pagination import decode_shift_cursor, page_size, shift_cursor
from carewatch.graphql.resolvers.shift_status import status_of
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.shift import Shift
from carewatch.store import read_models
from carewatch.store.read_models import ShiftQuery

# Status is computed now, not stored, so a status filter reads ahead in chunks of at least this.
_STATUS_CHUNK = 200


async def shift(info: Info, shift_id: str) -> Shift | None:
    value = await info.context.loaders.shifts.load(shift_id)
    return Shift.from_row(value) if value else None


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
            # gathered, so the ledger and package loaders batch the whole chunk into one query each
            statuses = await asyncio.gather(*(status_of(info, v) for v in batch))
            found.extend(v for v, s in zip(batch, statuses, strict=True) if s == f.status)
        if len(batch) < chunk:
            break
        key = (batch[-1].starts_at, batch[-1].shift_id)
    page = found[:size]
    return Connection.of([(shift_cursor(v.starts_at, v.shift_id), Shift.from_row(v)) for v in page],
                         has_next_page=len(found) > size)
