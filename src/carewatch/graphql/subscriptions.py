"""The `alerts` and `shiftUpdates` subscriptions: the process's hub (graphql/alerts_hub.py) fanned out
to each subscriber under its read scope and filter; a subscriber too slow to keep up is closed (4413)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

from starlette.websockets import WebSocket

from carewatch.alerts.bus import from_wire, shift_ids_in
from carewatch.alerts.record import AlertRecord
from carewatch.graphql.alerts_hub import SLOW_SUBSCRIBER_REASON, WS_SLOW_SUBSCRIBER, SlowSubscriber
from carewatch.graphql.context import Info
from carewatch.graphql.filters import AlertFilter, ShiftFilter, alert_matches, alert_since
from carewatch.graphql.resolvers import shifts as shift_resolvers
from carewatch.graphql.resolvers.alerts import visible
from carewatch.graphql.types.alert import Alert
from carewatch.graphql.types.shift import Shift

log = logging.getLogger(__name__)


async def _close_slow(websocket: WebSocket) -> None:
    log.warning("closing a subscriber's websocket (%d): it fell too far behind", WS_SLOW_SUBSCRIBER)
    try:
        await websocket.close(code=WS_SLOW_SUBSCRIBER, reason=SLOW_SUBSCRIBER_REASON)
    except Exception as exc:  # the client went away first: nothing left to close
        log.info("the slow subscriber's websocket was already closing: %s", exc)


async def _updates(info: Info, channel: str) -> AsyncGenerator[dict[str, Any], None]:
    """The hub's messages on `channel`.

    A group's execution (graphql/fanout.py: its context names the group) listens for all its members;
    if it falls too far behind, the group closes every member's websocket with WS_SLOW_SUBSCRIBER.
    Otherwise a client that falls too far behind has its websocket closed with WS_SLOW_SUBSCRIBER at once
    (its operation may be stuck sending to it, so the hub tells us); the close frame follows what the
    client has not read yet. The operation then waits for the connection's shutdown to cancel it:
    returning would make strawberry send on a closed socket."""
    group = info.context.group
    if group is not None:
        async for message in info.context.hub.listen(channel, on_drop=group.drop_everyone, audience=group):
            yield message
        return
    request = info.context.request
    closing: list[asyncio.Task[None]] = []

    def drop() -> None:
        if isinstance(request, WebSocket) and not closing:
            closing.append(asyncio.get_running_loop().create_task(_close_slow(request)))

    try:
        async for message in info.context.hub.listen(channel, on_drop=drop):
            yield message
    except SlowSubscriber:
        if not closing:
            raise  # not over a websocket: the error goes to the client as the operation's result
        await closing[0]
        await asyncio.Event().wait()


# The hub hands every subscriber the same message object: decode it once for all of them (10,000
# subscribers of one process would otherwise parse the same alert 10,000 times).
_last_decoded: list[tuple[dict[str, Any], AlertRecord, Alert]] = []


def _decoded(message: dict[str, Any]) -> tuple[AlertRecord, Alert]:
    if _last_decoded and _last_decoded[0][0] is message:
        return _last_decoded[0][1], _last_decoded[0][2]
    alert = from_wire(message)
    wire = Alert.from_record(alert)
    _last_decoded[:] = [(message, alert, wire)]
    return alert, wire


async def alert_stream(info: Info, f: AlertFilter | None) -> AsyncGenerator[Alert, None]:
    alert_since(f)  # a bad filter fails now, not at the first alert
    viewer = info.context.viewer
    async for message in _updates(info, info.context.hub.channels.alerts):
        alert, wire = _decoded(message)
        if visible(viewer, alert) and alert_matches(f, alert):
            yield wire


async def shift_update_stream(info: Info, f: ShiftFilter | None) -> AsyncGenerator[Shift, None]:
    async for message in _updates(info, info.context.hub.channels.shift_updates):
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
