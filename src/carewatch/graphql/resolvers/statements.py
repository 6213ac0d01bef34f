"""statement(scope, id, from, to) and statements(...) as a league table, paged by statement id."""

from __future__ import annotations

from datetime import date

from carewatch.domain.statements import Statement as StatementValue
from carewatch.domain.statements import StatementScope
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.graphql.pagination import decode_cursor, encode_cursor, page_size
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.statement import Statement, StatementFilter
from carewatch.pipeline.statements import StatementRequest, StatementRequestError, statements


async def _read(info: Info, request: StatementRequest) -> list[StatementValue]:
    ctx = info.context
    try:
        return await statements(ctx.pool, ctx.viewer, request, ctx.clock.now())
    except StatementRequestError as exc:
        raise ClientError(str(exc)) from exc


async def statement(info: Info, scope: StatementScope, subject_id: str, start: date, end: date) -> Statement | None:
    found = await _read(info, StatementRequest(scope, start, end, subject_id=subject_id))
    return Statement.from_domain(found[0]) if found else None


async def league(info: Info, scope: StatementScope, flt: StatementFilter | None, start: date, end: date,
                 first: int | None, after: str | None) -> Connection[Statement]:
    size = page_size(first)
    request = StatementRequest(scope, start, end,
                               commissioner_id=str(flt.commissioner_id) if flt and flt.commissioner_id else None,
                               provider_id=str(flt.provider_id) if flt and flt.provider_id else None)
    table = await _read(info, request)
    if after is not None:
        last = decode_cursor(after, 1)[0]
        ids = [s.id for s in table]
        if last not in ids:
            raise ClientError("after names a statement no longer in this table; start again without it")
        table = table[ids.index(last) + 1:]
    page = table[:size]
    return Connection.of([(encode_cursor([s.id]), Statement.from_domain(s)) for s in page], len(table) > size)
