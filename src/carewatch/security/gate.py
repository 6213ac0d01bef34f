"""The ASGI middleware every request passes first: size limits, bearer tokens, roles, rate limit.

It sits outside the application, so a refused request never reaches GraphQL or the ingest
handler, and it puts the caller's `Viewer` in the ASGI scope under `VIEWER_KEY` for
`viewer_from_request` to read. Websockets are authenticated on their `connection_init`
message (graphql-transport-ws and graphql-ws alike): a bad token closes with 4401.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import psycopg
from graphql import GraphQLSchema
from prometheus_client import Counter
from psycopg_pool import PoolTimeout
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carewatch.logs import Outage
from carewatch.security.limits import MAX_BATCH_OPERATIONS, MAX_BODY_BYTES
from carewatch.security.query_cost import (
    REFUSED_FOR_COST,
    Operation,
    body_json,
    operations_of_body,
    operations_of_data,
    operations_of_query_string,
    refusal_message,
    request_cost,
)
from carewatch.security.rate_limit import IngestRateLimiter
from carewatch.security.roles import Role, Viewer
from carewatch.security.tokens import TokenCache, authenticate, bearer_secret, secret_hash

log = logging.getLogger(__name__)

VIEWER_KEY = "carewatch.viewer"
# The JSON of a POST /graphql body as the gate read it (GraphQL's response cache reuses it).
BODY_JSON_KEY = "carewatch.graphql_body_json"
WS_UNAUTHORIZED = 4401
WS_FORBIDDEN = 4403
WS_TOO_BIG = 1009
WS_TRY_AGAIN = 1013

REFUSED = Counter("carewatch_api_refused_total", "API requests refused before reaching a handler",
                  ["reason"])


class DatabaseAway(RuntimeError):
    """The token could not be checked: the database did not answer (the caller gets 503, not 500)."""


# What a database that is away raises (a fault in Carewatch is none of these, and stays a 500).
DATABASE_AWAY = (psycopg.OperationalError, PoolTimeout, OSError)


class Authenticator:
    """Looks bearer tokens up through the app's pool, with a short in-memory cache."""

    def __init__(self, cache: TokenCache | None = None) -> None:
        self.cache = cache if cache is not None else TokenCache()
        self.database = Outage(log, "PostgreSQL (checking tokens)", retrying="answering 503 meanwhile")

    async def viewer(self, pool: Any, authorization: str | None) -> Viewer | None:
        secret = bearer_secret(authorization)
        if secret is None:
            return None  # not even shaped like a token: no database round trip
        cached = self.cache.get(secret_hash(secret))
        if cached is not None:
            return cached
        try:
            async with pool.connection() as conn:
                viewer = await authenticate(conn, authorization, self.cache)
        except DATABASE_AWAY as exc:
            self.database.failed(exc)  # said when the outage starts and when it ends, not per request
            raise DatabaseAway(str(exc)) from None
        self.database.ok()
        return viewer


def _state(scope: Scope, key: str) -> Any:
    state = scope.get("state") or {}
    value = state.get(key) if isinstance(state, dict) else getattr(state, key, None)
    if value is None:
        raise RuntimeError(f"the app's lifespan state has no {key!r}: AccessGate needs it")
    return value


async def _json_response(send: Send, status: int, body: dict[str, Any],
                         headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


async def unauthorized(send: Send) -> None:
    # The same answer for a missing, malformed, unknown or revoked token: nothing to learn from it.
    REFUSED.labels("unauthorized").inc()
    await _json_response(send, 401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})


async def forbidden(send: Send, reason: str) -> None:
    REFUSED.labels("forbidden").inc()
    await _json_response(send, 403, {"error": "forbidden", "reason": reason})


async def too_large(send: Send) -> None:
    REFUSED.labels("too_large").inc()
    await _json_response(send, 413, {"error": "request body too large", "limit_bytes": MAX_BODY_BYTES})


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole request body, or (partial, True) as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _batch_size(data: Any) -> int:
    """Operations in a batch (0 when the body is one operation, or not JSON: GraphQL answers that itself)."""
    return len(data) if isinstance(data, list) else 0


class AccessGate:
    """ASGI middleware guarding /graphql, POST /events, the CSV exports and (optionally) /metrics."""

    def __init__(self, app: ASGIApp, *, production: bool, metrics_token_required: bool,
                 authenticator: Authenticator, rate_limiter: IngestRateLimiter,
                 pool_key: str = "pool", redis_key: str = "redis", graphql_path: str = "/graphql",
                 events_path: str = "/events", metrics_path: str = "/metrics",
                 export_paths: tuple[str, ...] = ("/exports/statements.csv",),
                 ws_init_timeout: float = 60.0, cost_schema: GraphQLSchema | None = None,
                 max_query_cost: int = 0) -> None:
        self.app = app
        # The query cost limit (security/query_cost.py); 0 switches it off.
        self.cost_schema = cost_schema
        self.max_query_cost = max_query_cost
        self.production = production
        self.metrics_token_required = metrics_token_required
        self.authenticator = authenticator
        self.rate_limiter = rate_limiter
        self.pool_key = pool_key
        self.redis_key = redis_key
        self.graphql_path = graphql_path
        self.events_path = events_path
        self.metrics_path = metrics_path
        self.export_paths = export_paths
        self.ws_init_timeout = ws_init_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket" and scope["path"].rstrip("/") == self.graphql_path:
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _viewer(self, scope: Scope, authorization: str | None) -> Viewer | None:
        return await self.authenticator.viewer(_state(scope, self.pool_key), authorization)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/") or "/"
        headers = Headers(scope=scope)
        method = scope["method"]
        guarded = path in (self.graphql_path, self.events_path, *self.export_paths) or (
            path == self.metrics_path and self.metrics_token_required)
        if not guarded or method == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if self._is_graphiql_page(path, method, scope, headers):
            await self.app(scope, receive, send)
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await too_large(send)
            return
        try:
            viewer = await self._viewer(scope, headers.get("authorization"))
        except DatabaseAway:
            REFUSED.labels("database_away").inc()
            await _json_response(send, 503, {"error": "the database did not answer, so the token could not be "
                                                      "checked; retry shortly"}, {"Retry-After": "5"})
            return
        if viewer is None:
            await unauthorized(send)
            return
        if path == self.events_path:
            if method != "POST":
                await self.app(scope, receive, send)
                return
            if not viewer.may_post_events:
                await forbidden(send, f"a {viewer.role.value} token may not post events")
                return
            decision = await self.rate_limiter.hit(_state(scope, self.redis_key), f"token-{viewer.token_id}")
            if not decision.allowed:
                REFUSED.labels("rate_limited").inc()
                await _json_response(
                    send, 429,
                    {"error": "rate limited", "limit_per_minute": self.rate_limiter.limit,
                     "retry_after_seconds": decision.retry_after_seconds},
                    {"Retry-After": str(decision.retry_after_seconds)})
                return
        elif viewer.role is Role.INGEST:
            await forbidden(send, "an ingest token may only post events")
            return
        body, over = await _read_body(receive, MAX_BODY_BYTES)
        if over:
            await too_large(send)
            return
        data = body_json(body) if path == self.graphql_path and method == "POST" else None
        if data is not None:
            scope[BODY_JSON_KEY] = data
        if path == self.graphql_path and (n := _batch_size(data)) > MAX_BATCH_OPERATIONS:
            REFUSED.labels("batch").inc()
            await _json_response(send, 400, {
                "error": f"too many operations in one batch: {n} (at most {MAX_BATCH_OPERATIONS})"})
            return
        if path == self.graphql_path and self.max_query_cost > 0:
            ops = operations_of_data(data) if method == "POST" else operations_of_query_string(
                scope.get("query_string", b""))
            refusal = self._over_cost(ops)
            if refusal is not None:
                await _json_response(send, 400, {"errors": [refusal]})
                return
        scope[VIEWER_KEY] = viewer
        await self.app(scope, _replay(body, receive), send)

    def _over_cost(self, ops: list[Operation]) -> dict[str, Any] | None:
        """The GraphQL error refusing these operations for their cost, or None when they are within the limit."""
        cost = request_cost(self.cost_schema, ops)
        if cost <= self.max_query_cost:
            return None
        REFUSED.labels("query_cost").inc()
        REFUSED_FOR_COST.inc()
        return {"message": refusal_message(cost, self.max_query_cost),
                "extensions": {"code": "QUERY_COST_OVER_LIMIT", "cost": cost, "limit": self.max_query_cost}}

    def _is_graphiql_page(self, path: str, method: str, scope: Scope, headers: Headers) -> bool:
        """The GraphiQL page itself (development only) holds no data; its queries carry the token."""
        if self.production or path != self.graphql_path or method != "GET":
            return False
        return b"query=" not in scope.get("query_string", b"") and "text/html" in headers.get("accept", "")

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate on connection_init, before the app builds its per-connection context.

        strawberry builds the context right after it accepts, before reading any message; so
        once the accept has gone out the gate reads the client's first message itself,
        authenticates it if it is connection_init, and hands it on at the app's next receive.
        """
        closed = False
        pending: list[Message] = []

        async def close(code: int, reason: str) -> None:
            nonlocal closed
            closed = True
            REFUSED.labels("unauthorized" if code == WS_UNAUTHORIZED else "websocket").inc()
            await send({"type": "websocket.close", "code": code, "reason": reason})

        async def first_message() -> None:
            try:
                message = await asyncio.wait_for(receive(), timeout=self.ws_init_timeout)
            except TimeoutError:
                await close(4408, "Connection initialisation timeout")
                return
            pending.append(message)
            if message["type"] != "websocket.receive" or _too_big(message):
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            init = _connection_init(text)
            if init is None:
                # Anything before connection_init (a ping, say) would leave strawberry with a context
                # built for nobody and a later connection_init acknowledged: refuse it here instead.
                await close(WS_UNAUTHORIZED, "Unauthorized")
                return
            try:
                viewer = await self._viewer(scope, init)
            except DatabaseAway:
                await close(WS_TRY_AGAIN, "the database did not answer; try again later")
                return
            if viewer is None:
                await close(WS_UNAUTHORIZED, "Unauthorized")
            elif not viewer.may_read:
                await close(WS_FORBIDDEN, "an ingest token may only post events")
            else:
                scope[VIEWER_KEY] = viewer

        async def guarded_receive() -> Message:
            while True:
                if closed:
                    return {"type": "websocket.disconnect", "code": WS_UNAUTHORIZED}
                message = pending.pop(0) if pending else await receive()
                if message["type"] == "websocket.receive" and _too_big(message):
                    await close(WS_TOO_BIG, "message too large")
                    return {"type": "websocket.disconnect", "code": WS_TOO_BIG}
                refused = self._ws_over_cost(message)
                if refused is None:
                    return message
                await send({"type": "websocket.send", "text": json.dumps(refused)})

        async def guarded_send(message: Message) -> None:
            if closed:
                return  # after our close the handler may still try to say goodbye
            await send(message)
            if message["type"] == "websocket.accept":
                await first_message()

        await self.app(scope, guarded_receive, guarded_send)


    def _ws_over_cost(self, message: Message) -> dict[str, Any] | None:
        """The error message answering a `subscribe` (or graphql-ws `start`) that costs too much, else None."""
        if self.max_query_cost <= 0 or message["type"] != "websocket.receive" or message.get("text") is None:
            return None
        try:
            data = json.loads(message["text"])
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("type") not in ("subscribe", "start"):
            return None
        ops = operations_of_body(json.dumps(data.get("payload")).encode())
        refusal = self._over_cost(ops)
        if refusal is None:
            return None
        # graphql-transport-ws answers with a list of errors, the older graphql-ws with one.
        return {"type": "error", "id": data.get("id"),
                "payload": [refusal] if data["type"] == "subscribe" else refusal}


def _too_big(message: Message) -> bool:
    text = message.get("text")
    size = len(text.encode()) if text is not None else len(message.get("bytes") or b"")
    return size > MAX_BODY_BYTES


def _connection_init(text: str) -> str | None:
    """The authorization value of a connection_init message ('' if it has none), None if not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") != "connection_init":
        return None
    payload = data.get("payload")
    if not isinstance(payload, dict):
        return ""
    for key in ("authorization", "Authorization"):
        value = payload.get(key)
        if isinstance(value, str):
            return value
    return ""


def viewer_in_scope(scope: Scope) -> Viewer | None:
    """The viewer the gate authenticated for this request or websocket, if any."""
    viewer = scope.get(VIEWER_KEY)
    return viewer if isinstance(viewer, Viewer) else None

