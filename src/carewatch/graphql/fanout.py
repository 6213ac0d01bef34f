"""Websocket subscriptions executed once per group of subscribers that would receive the same payloads.

Two subscribers receive the same payloads when they sent the same document text, operation name and
variables under viewers of the same role and scope: a subscription's resolvers read nothing else of the
caller (Viewer.reach and may_see decide what is visible from the role and scope; no resolver reads the
token's id or name), and the alerts and shift updates they receive come from the process's one hub.
Such subscribers form a group: strawberry runs the operation ONCE for the group, under a context whose
viewer is that role and scope, each result is serialised once, and every member's websocket is sent
that text framed with its own operation id (graphql-transport-ws `next`, graphql-ws `data`). The text is
exactly what strawberry would have sent that member (the same encoder, the same keys in the same order).

Only subscriptions over websockets group; queries and mutations sent over a websocket, documents that
do not parse, an ambiguous operation and variables that are not plain JSON run as strawberry runs them.
The document text is compared as sent, not normalised: error locations (line and column) in a result
come from the text, so only identical texts may share one.

Each member keeps a bounded queue of the texts it has not sent yet (CAREWATCH_SUBSCRIBER_QUEUE): a
client that falls that far behind is dropped alone, its websocket closed with 4413 and counted in
carewatch_subscribers_dropped_total. A group whose own execution falls that far behind the hub drops
every member. A group ends when its last member leaves, or when its execution ends (an error before
execution, or the stream completing), which every member then answers as strawberry would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson
from graphql import OperationType, get_operation_ast
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import CompleteMessage, ErrorMessage
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from carewatch import metrics
from carewatch.graphql.alerts_hub import SLOW_SUBSCRIBER_REASON, WS_SLOW_SUBSCRIBER, AlertHub
from carewatch.graphql.context import Context
from carewatch.graphql.loaders import make_loaders
from carewatch.security.query_cost import parsed
from carewatch.security.roles import Viewer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroupKey:
    """What the members of a group share: everything a subscription's payloads depend on."""

    role: str
    scope: str | None
    query: str
    operation_name: str | None
    variables: str  # canonical JSON (keys sorted)


@lru_cache(maxsize=512)
def _is_subscription(query: str, operation_name: str | None) -> bool:
    document = parsed(query)
    if document is None:
        return False
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is OperationType.SUBSCRIPTION


def group_key(viewer: Viewer, query: object, variables: object, operation_name: object) -> GroupKey | None:
    """The group this operation may join, or None when it runs alone (see the module's docstring)."""
    if not isinstance(query, str) or not (operation_name is None or isinstance(operation_name, str)):
        return None
    if not (variables is None or isinstance(variables, dict)):
        return None
    if not _is_subscription(query, operation_name):
        return None
    try:
        canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError: not plain JSON
        return None
    return GroupKey(viewer.role.value, viewer.scope, query, operation_name, canonical)


def encode_payload(result: ExecutionResult) -> str:
    """A result as the JSON text of a `next` (or graphql-ws `data`) message's payload, as strawberry builds it."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [err.formatted for err in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return orjson.dumps(payload).decode()


def next_frame(operation_id: object, payload: str) -> str:
    """graphql-transport-ws: the same text as the view's encode_json({"id", "type": "next", "payload"})."""
    return '{"id":' + orjson.dumps(operation_id).decode() + ',"type":"next","payload":' + payload + "}"


def data_frame(operation_id: object, payload: str) -> str:
    """graphql-ws: the same text as the view's encode_json({"type": "data", "id", "payload"})."""
    return '{"type":"data","id":' + orjson.dumps(operation_id).decode() + ',"payload":' + payload + "}"


class Complete:
    """The group's stream ended: each member completes its operation."""


COMPLETE = Complete()
Item = str | PreExecutionError | Complete  # a payload's JSON text, an error before execution, or the end


class Member:
    """One subscriber of a group: the texts its websocket has not been sent yet, at most `limit`."""

    __slots__ = ("closing", "dropped", "items", "limit", "waiter", "websocket")

    def __init__(self, limit: int, websocket: WebSocket | None) -> None:
        self.items: deque[Item] = deque()
        self.limit = limit
        self.waiter: asyncio.Future[None] | None = None
        self.dropped = False
        self.websocket = websocket
        self.closing: asyncio.Task[None] | None = None

    def offer(self, item: Item) -> bool:
        """Queue `item`; False when the queue is full (the member has fallen too far behind)."""
        if len(self.items) >= self.limit:
            return False
        self.items.append(item)
        self._wake()
        return True

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self) -> Item | None:
        """The next item to send, waiting for one; None once the member has been dropped (and, if the
        drop let it, has sent what it held)."""
        while not self.items and not self.dropped:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.popleft() if self.items else None

    def drop(self, *, send_what_is_held: bool = False) -> None:
        """Close the websocket with 4413 and send nothing more.

        A member too slow itself is closed at once, after what is already on its way (its operation may be
        stuck sending); what it holds is thrown away. A member of a group whose execution fell behind is
        not slow itself: it sends what it holds first, and its operation closes the websocket after."""
        self.dropped = True
        if not send_what_is_held:
            self.items.clear()
            if self.websocket is not None:
                self.closing = asyncio.get_running_loop().create_task(_close_slow(self.websocket))
        self._wake()


async def _close_slow(websocket: WebSocket) -> None:
    try:
        await websocket.close(code=WS_SLOW_SUBSCRIBER, reason=SLOW_SUBSCRIBER_REASON)
    except Exception as exc:  # the client went away first: nothing left to close
        log.info("the slow subscriber's websocket was already closing: %s", exc)


class Group:
    """Subscribers sharing one execution of their operation (the hub's Audience for its listener)."""

    def __init__(
        self, hub: AlertHub, key: GroupKey, schema: BaseSchema, context: Context, variables: dict[str, Any] | None
    ) -> None:
        self.hub, self.key, self.schema = hub, key, schema
        viewer = Viewer(context.viewer.role, context.viewer.scope)  # the role and scope, no token
        self.context = replace(
            context,
            request=None,
            response=None,
            viewer=viewer,
            loaders=make_loaders(context.pool, viewer, context.settings.timezone),
            group=self,
        )
        self.variables = variables
        self.members: dict[Member, None] = {}  # in order of arrival
        self.channel: str | None = None  # while the execution listens on the hub
        self.task: asyncio.Task[None] | None = None

    # -- the hub's Audience -------------------------------------------------------------------------
    def listening(self, hub: AlertHub, channel: str) -> None:
        self.channel = channel
        hub.count(channel, len(self.members))

    def not_listening(self) -> None:
        if self.channel is not None:
            self.hub.count(self.channel, -len(self.members))
            self.channel = None

    def drop_everyone(self) -> None:
        """The execution fell more than a queue behind the hub: every member is dropped."""
        log.warning("dropping a group of %d subscribers: their shared execution fell too far behind", len(self.members))
        for member in list(self.members):
            self._drop(member, send_what_is_held=True)

    # -- members ------------------------------------------------------------------------------------
    def join(self, member: Member) -> None:
        self.members[member] = None
        if self.channel is not None:
            self.hub.count(self.channel, 1)

    def leave(self, member: Member) -> None:
        if self.members.pop(member, False) is False:
            return
        if self.channel is not None:
            self.hub.count(self.channel, -1)
        if not self.members:
            self.members = {}  # a dict keeps the table of its largest size: 10,000 members' was 300 KiB
            self._unregister()
            if self.task is not None:
                self.task.cancel()  # its stream closes and stops listening on the hub

    def _drop(self, member: Member, *, send_what_is_held: bool = False) -> None:
        metrics.SUBSCRIBERS_DROPPED.inc()
        self.leave(member)
        member.drop(send_what_is_held=send_what_is_held)

    def deliver(self, item: Item) -> None:
        for member in list(self.members):
            if not member.offer(item):
                log.warning("dropped a subscriber: %d messages behind", len(member.items))
                self._drop(member)

    # -- the shared execution -----------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="carewatch-subscription-group")

    def _unregister(self) -> None:
        if self.hub.groups.get(self.key) is self:
            del self.hub.groups[self.key]

    def _end(self, item: Item) -> None:
        self._unregister()  # nobody joins a group that has ended
        self.deliver(item)

    async def _run(self) -> None:
        key = self.key
        try:
            stream = await self.schema.subscribe(
                key.query, variable_values=self.variables, context_value=self.context, operation_name=key.operation_name
            )
            async with aclosing(stream):
                first = True
                async for result in stream:
                    if first and isinstance(result, PreExecutionError):
                        self._end(result)
                        return
                    first = False
                    if result.data is None and result.errors:
                        self._unregister()  # the stream failed and ends: whoever comes next starts afresh
                    self.deliver(encode_payload(result))
                self._unregister()  # ended: nobody joins while the stream closes
            self._end(COMPLETE)
        except asyncio.CancelledError:
            self._unregister()
            raise
        except Exception:
            log.exception("a group's subscription failed")
            self._end(COMPLETE)


def join(
    context: object,
    schema: BaseSchema,
    websocket: AsyncWebSocketAdapter,
    query: object,
    variables: object,
    operation_name: object,
) -> tuple[Group, Member] | None:
    """Join (or start) the group of this websocket operation; None when it must run alone."""
    ws = getattr(websocket, "ws", None)  # strawberry's ASGI adapter holds Starlette's WebSocket
    if not isinstance(context, Context) or not isinstance(ws, WebSocket):
        return None
    key = group_key(context.viewer, query, variables, operation_name)
    if key is None:
        return None
    hub = context.hub
    group = hub.groups.get(key)
    if group is None:
        group = Group(hub, key, schema, context, variables if isinstance(variables, dict) else None)
        hub.groups[key] = group
        group.start()
    member = Member(hub.queue_size, ws)
    group.join(member)
    return group, member


async def _send(member: Member, text: str) -> bool:
    """Send one text frame; False when the client has gone (the connection's shutdown cancels the rest)."""
    assert member.websocket is not None
    try:
        await member.websocket.send_text(text)
    except WebSocketDisconnect:
        return False
    return True


async def _dropped(member: Member) -> None:
    """Close with 4413 (unless the drop already did), then wait for the connection's shutdown to cancel the
    operation (returning would make strawberry send on a closed socket)."""
    if member.closing is None and member.websocket is not None:
        member.closing = asyncio.get_running_loop().create_task(_close_slow(member.websocket))
    if member.closing is not None:
        await member.closing
    await asyncio.Event().wait()


class GroupedTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with subscriptions delivered through their group."""

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        joined = join(
            self.context, self.schema, self.websocket, operation.query, operation.variables, operation.operation_name
        )
        if joined is None:
            await super().run_operation(operation)
            return
        group, member = joined
        try:
            while (item := await member.next()) is not None:
                if isinstance(item, str):
                    if operation.completed or not await _send(member, next_frame(operation.id, item)):
                        return
                elif isinstance(item, PreExecutionError):
                    await self._handle_pre_execution_error(operation, item)
                    return
                else:
                    await operation.send_operation_message({"id": operation.id, "type": "complete"})
                    return
            await _dropped(member)
        except _OperationStreamClosed:
            return
        except Exception as error:  # as strawberry's own run_operation: logged, completed, forgotten
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise
        finally:
            group.leave(member)


class GroupedGraphQLWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The older graphql-ws protocol, with subscriptions delivered through their group."""

    async def handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        joined = join(self.context, self.schema, self.websocket, query, variables, operation_name)
        if joined is None:
            await super().handle_async_results(operation_id, query, operation_name, variables)
            return
        group, member = joined
        try:
            while (item := await member.next()) is not None:
                if isinstance(item, str):
                    if not await _send(member, data_frame(operation_id, item)):
                        return
                elif isinstance(item, PreExecutionError):
                    assert item.errors
                    await self.send_message(
                        ErrorMessage(type="error", id=operation_id, payload=item.errors[0].formatted)
                    )
                    return
                else:
                    await self.send_message(CompleteMessage(type="complete", id=operation_id))
                    return
            await _dropped(member)
        except asyncio.CancelledError:  # stopped, as strawberry's own: the client is told it is complete
            await self.send_message(CompleteMessage(type="complete", id=operation_id))
        finally:
            group.leave(member)
            self.tasks.pop(operation_id, None)
