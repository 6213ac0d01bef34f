"""The `alerts` query and the acknowledge/resolve mutations, under the caller's read scope."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from carewatch.alerts import repository
from carewatch.alerts.record import AlertRecord
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.graphql.filters import AlertFilter, alert_since
from carewatch.graphql.pagination import decode_cursor, encode_cursor, page_size
from carewatch.graphql.types.alert import Alert
from carewatch.graphql.types.connection import Connection
from carewatch.security.roles import Role, Viewer
from carewatch.store.scope import scope_condition


def visible(viewer: Viewer, a: AlertRecord) -> bool:
    """Viewer.may_see (the rule store/scope.py writes as SQL), for alerts arriving on the bus."""
    return viewer.may_see(a.commissioner_ids or (a.commissioner_id,), a.provider_ids or (a.provider_id,))


async def alerts(
    info: Info, f: AlertFilter | None, first: int | None, after: str | None
) -> Connection[Alert]:
    """Newest first (by id); the cursor is the alert id."""
    size = page_size(first)
    scope, params = scope_condition(info.context.viewer, "a.commissioner_ids", "a.provider_ids", arrays=True)
    where: list[sql.Composable] = [scope]
    args: list[Any] = list(params)
    if after is not None:
        (last,) = decode_cursor(after, 1)
        if not last.isdigit():
            raise ClientError("after is not a cursor this API gave out")
        where.append(sql.SQL("a.id < %s"))
        args.append(int(last))
    if f is not None:
        for values, column in ((f.kinds, "kind"), (f.severities, "severity"), (f.statuses, "status")):
            if values:
                where.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier("a", column)))
                args.append(list(values))
        for value, column in (
            (f.package_id, "package_id"),
            (f.provider_id, "provider_id"),
        ):
            if value is not None:
                where.append(sql.SQL("{} = %s").format(sql.Identifier("a", column)))
                args.append(str(value))
        if f.commissioner_id is not None:  # every alert involving the commissioner (carer alerts too)
            where.append(sql.SQL("a.commissioner_ids @> ARRAY[%s]::text[]"))
            args.append(str(f.commissioner_id))
        since = alert_since(f)
        if since is not None:
            where.append(sql.SQL("a.updated_at >= %s"))
            args.append(since)
    query = sql.SQL("SELECT a.id FROM alerts a WHERE {} ORDER BY a.id DESC LIMIT %s").format(
        sql.SQL(" AND ").join(where)
    )
    async with info.context.pool.connection() as conn:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, [*args, size + 1])
            ids = [int(r["id"]) for r in await cur.fetchall()]
        found = await repository.get_alerts(conn, ids[:size])
    return Connection.of([(encode_cursor([str(a.id)]), Alert.from_record(a)) for a in found], len(ids) > size)


def may_act_on_alerts(viewer: Viewer) -> bool:
    """Admin, and safeguarding leads within their commissioner (GRAPHQL.md)."""
    return viewer.is_admin or viewer.role is Role.SAFEGUARDING


async def _act(info: Info, alert_id: str, note: str | None, resolve: bool) -> Alert:
    viewer = info.context.viewer
    if not alert_id.isdigit():
        raise ClientError(f"no alert {alert_id}")
    async with info.context.pool.connection() as conn:
        current = await repository.get_alert(conn, int(alert_id))
        if current is None or not visible(viewer, current):
            raise ClientError(f"no alert {alert_id}")  # outside the scope it does not exist
        if not may_act_on_alerts(viewer):
            raise ClientError("only safeguarding and admin tokens may acknowledge or resolve alerts")
        who = f"{viewer.role.value}:{viewer.commissioner_id or viewer.provider_id or '-'}"
        now = info.context.clock.now()
        try:
            if resolve:
                changed = await repository.resolve(conn, int(alert_id), who, note or "", now)
            else:
                changed = await repository.acknowledge(conn, int(alert_id), who, note, now)
        except repository.AlertTransitionError as exc:
            raise ClientError(str(exc)) from exc
        await conn.commit()
    await info.context.hub.bus().publish_alerts([changed])  # after the commit
    return Alert.from_record(changed)


async def acknowledge_alert(info: Info, alert_id: str, note: str | None) -> Alert:
    return await _act(info, alert_id, note, resolve=False)


async def resolve_alert(info: Info, alert_id: str, note: str) -> Alert:
    if not note.strip():
        raise ClientError("resolving an alert needs a note saying why")
    return await _act(info, alert_id, note, resolve=True)
