# mypy: disable-error-code="untyped-decorator"
"""Alerts in GraphQL: the Alert type, `alerts` query, acknowledge/resolve mutations, subscriptions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import strawberry
from psycopg import sql
from psycopg.rows import dict_row
from starlette.websockets import WebSocket

from carewatch.alerts import store
from carewatch.alerts.bus import Channels, shift_ids_in
from carewatch.graphql.alerts_hub import SLOW_SUBSCRIBER_REASON, WS_SLOW_SUBSCRIBER, SlowSubscriber, hub_for
from carewatch.graphql.context import Info
from carewatch.graphql.errors import ClientError
from carewatch.graphql.filters import ShiftFilter
from carewatch.graphql.pagination import decode_cursor, encode_cursor, page_size
from carewatch.graphql.resolvers import shifts as shift_resolvers
from carewatch.graphql.types.connection import Connection
from carewatch.graphql.types.shift import Shift
from carewatch.security.roles import Role, Viewer
from carewatch.store.scope import scope_condition

log = logging.getLogger(__name__)


@strawberry.type
class AlertChange:
    status: str
    changed_at: datetime
    changed_by: str
    note: str | None


@strawberry.type
class Alert:
    id: strawberry.ID
    kind: str
    severity: str
    status: str
    subject_type: str
    subject_id: str
    raised_at: datetime
    resolved_at: datetime | None
    message: str
    package_id: strawberry.ID | None
    shift_id: strawberry.ID | None
    carer_id: strawberry.ID | None
    provider_id: strawberry.ID | None
    commissioner_id: strawberry.ID | None
    caused_by_late_data: bool
    history: list[AlertChange]

    @staticmethod
    def from_store(a: store.Alert) -> Alert:
        return Alert(
            id=strawberry.ID(str(a.id)),
            kind=a.kind,
            severity=a.severity,
            status=a.status,
            subject_type=a.subject_type,
            subject_id=a.subject_id,
            raised_at=a.raised_at,
            resolved_at=a.resolved_at,
            message=a.message,
            package_id=_id(a.package_id),
            shift_id=_id(a.shift_id),
            carer_id=_id(a.carer_id),
            provider_id=_id(a.provider_id),
            commissioner_id=_id(a.commissioner_id),
            caused_by_late_data=a.caused_by_late_data,
            history=[
                AlertChange(status=h.status, changed_at=h.changed_at, changed_by=h.changed_by, note=h.note)
                for h in a.history
            ],
        )


def _id(value: str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(value)


@strawberry.input(description="Narrow alerts; `since` keeps those raised or changed at or after it.")
class AlertFilter:
    kinds: list[str] | None = None
    severities: list[str] | None = None
    statuses: list[str] | None = None
    package_id: strawberry.ID | None = None
    provider_id: strawberry.ID | None = None
    commissioner_id: strawberry.ID | None = None
    since: datetime | None = None


def _since(f: AlertFilter | None) -> datetime | None:
    if f is None or f.since is None:
        return None
    if f.since.tzinfo is None:
        raise ClientError("since needs a UTC offset, e.g. 2026-04-06T08:00:00Z")
    return f.since.astimezone(UTC)


def visible(viewer: Viewer, a: store.Alert) -> bool:
    """The same rule as store/scope.py, for alerts arriving on the bus."""
    if viewer.is_admin:
        return True
    if not viewer.may_read:
        return False
    if viewer.commissioner_id is not None:
        return a.commissioner_id == viewer.commissioner_id
    return viewer.provider_id is not None and a.provider_id == viewer.provider_id


def matches(f: AlertFilter | None, a: store.Alert) -> bool:
    if f is None:
        return True
    since = _since(f)
    return (
        (not f.kinds or a.kind in f.kinds)
        and (not f.severities or a.severity in f.severities)
        and (not f.statuses or a.status in f.statuses)
        and (f.package_id is None or a.package_id == str(f.package_id))
        and (f.provider_id is None or a.provider_id == str(f.provider_id))
        and (f.commissioner_id is None or a.commissioner_id == str(f.commissioner_id))
        and (since is None or a.updated_at >= since)
    )


async def alerts(
    info: Info, f: AlertFilter | None, first: int | None, after: str | None
) -> Connection[Alert]:
    """Newest first (by id); the cursor is the alert id."""
    size = page_size(first)
    scope, params = scope_condition(info.context.viewer, "a.commissioner_id", "a.provider_id")
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
            (f.commissioner_id, "commissioner_id"),
        ):
            if value is not None:
                where.append(sql.SQL("{} = %s").format(sql.Identifier("a", column)))
                args.append(str(value))
        since = _since(f)
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
        found = await store.get_alerts(conn, ids[:size])
    return Connection.of([(encode_cursor([str(a.id)]), Alert.from_store(a)) for a in found], len(ids) > size)


def may_act_on_alerts(viewer: Viewer) -> bool:
    """Admin, and safeguarding leads within their commissioner (GRAPHQL.md)."""
    return viewer.is_admin or viewer.role is Role.SAFEGUARDING


async def _act(info: Info, alert_id: str, note: str | None, resolve: bool) -> Alert:
    viewer = info.context.viewer
    if not alert_id.isdigit():
        raise ClientError(f"no alert {alert_id}")
    async with info.context.pool.connection() as conn:
        current = await store.get_alert(conn, int(alert_id))
        if current is None or not visible(viewer, current):
            raise ClientError(f"no alert {alert_id}")  # outside the scope it does not exist
        if not may_act_on_alerts(viewer):
            raise ClientError("only safeguarding and admin tokens may acknowledge or resolve alerts")
        who = f"{viewer.role.value}:{viewer.commissioner_id or viewer.provider_id or '-'}"
        now = info.context.clock.now()
        try:
            if resolve:
                changed = await store.resolve(conn, int(alert_id), who, note or "", now)
            else:
                changed = await store.acknowledge(conn, int(alert_id), who, note, now)
        except store.AlertTransitionError as exc:
            raise ClientError(str(exc)) from exc
        await conn.commit()
    hub = hub_for(info.context.settings)
    await hub.bus().publish_alerts([changed])  # after the commit
    return Alert.from_store(changed)


async def acknowledge_alert(info: Info, alert_id: str, note: str | None) -> Alert:
    return await _act(info, alert_id, note, resolve=False)


async def resolve_alert(info: Info, alert_id: str, note: str) -> Alert:
    if not note.strip():
        raise ClientError("resolving an alert needs a note saying why")
    return await _act(info, alert_id, note, resolve=True)


async def _close_slow(websocket: WebSocket) -> None:
    log.warning("closing a subscriber's websocket (%d): it fell too far behind", WS_SLOW_SUBSCRIBER)
    try:
        await websocket.close(code=WS_SLOW_SUBSCRIBER, reason=SLOW_SUBSCRIBER_REASON)
    except Exception as exc:  # the client went away first: nothing left to close
        log.info("the slow subscriber's websocket was already closing: %s", exc)


async def _updates(info: Info, channel: str) -> AsyncGenerator[dict[str, Any], None]:
    """The hub's messages on `channel`. A client that falls too far behind has its websocket closed
    with WS_SLOW_SUBSCRIBER at once (its operation may be stuck sending to it, so the hub tells us);
    the close frame follows what the client has not read yet. The operation then waits for the
    connection's shutdown to cancel it: returning would make strawberry send on a closed socket."""
    request = info.context.request
    closing: list[asyncio.Task[None]] = []

    def drop() -> None:
        if isinstance(request, WebSocket) and not closing:
            closing.append(asyncio.get_running_loop().create_task(_close_slow(request)))

    try:
        async for message in hub_for(info.context.settings).listen(channel, on_drop=drop):
            yield message
    except SlowSubscriber:
        if not closing:
            raise  # not over a websocket: the error goes to the client as the operation's result
        await closing[0]
        await asyncio.Event().wait()


# The hub hands every subscriber the same message object: decode it once for all of them (10,000
# subscribers of one process would otherwise parse the same alert 10,000 times).
_last_decoded: list[tuple[dict[str, Any], store.Alert, Alert]] = []


def _decoded(message: dict[str, Any]) -> tuple[store.Alert, Alert]:
    if _last_decoded and _last_decoded[0][0] is message:
        return _last_decoded[0][1], _last_decoded[0][2]
    alert = store.Alert.from_json(message)
    wire = Alert.from_store(alert)
    _last_decoded[:] = [(message, alert, wire)]
    return alert, wire


async def alert_stream(info: Info, f: AlertFilter | None) -> AsyncGenerator[Alert, None]:
    _since(f)  # a bad filter fails now, not at the first alert
    viewer = info.context.viewer
    async for message in _updates(info, Channels.for_settings(info.context.settings).alerts):
        alert, wire = _decoded(message)
        if visible(viewer, alert) and matches(f, alert):
            yield wire


async def shift_update_stream(info: Info, f: ShiftFilter | None) -> AsyncGenerator[Shift, None]:
    async for message in _updates(info, Channels.for_settings(info.context.settings).shift_updates):
        # A subscription's loaders live as long as it does: read the shifts and ledgers afresh.
        loaders = info.context.loaders
        # clear_all, not clear(key): strawberry's clear raises KeyError for a key never loaded.
        loaders.shifts.clear_all()
        loaders.ledgers.clear_all()
        # A message's shifts (those in the viewer's scope) and their ledgers, in one query each.
        values = [v for v in await loaders.shifts.load_many(shift_ids_in(message)) if v is not None]
        by_status = f is not None and f.status is not None
        for shift in await shift_resolvers.shift_nodes(info, values, need_status=by_status):
            if f is not None and not _shift_matches(f, shift):
                continue
            if f is not None and f.status is not None and shift.status != f.status:
                continue
            yield shift


def _shift_matches(f: ShiftFilter, s: Shift) -> bool:
    return (
        (f.package_id is None or str(s.package_id) == str(f.package_id))
        and (f.provider_id is None or str(s.provider_id) == str(f.provider_id))
        and (f.from_ is None or s.starts_at >= f.from_)
        and (f.to is None or s.starts_at < f.to)
    )
