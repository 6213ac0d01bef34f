"""POST /graphql through the response cache (graphql/response_cache.py): a hit is sent as stored bytes.

The access gate (security/gate.py) has already authenticated the caller, checked its role and the
query's cost when this runs: a hit skips only the GraphQL execution, never the checks. A mutation
empties this process's cache as soon as it has run and announces the change to the other processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carewatch.clock import Clock
from carewatch.graphql.over_http import RESULT_OK_KEY
from carewatch.graphql.response_cache import LOOKUPS, MAX_CACHED_QUERY_CHARS, ResponseCache, cache_key, operation_kind
from carewatch.security.gate import BODY_JSON_KEY, viewer_in_scope
from carewatch.security.query_cost import body_json

_HIT, _MISS, _WAITED, _BYPASS, _REFRESHED = (LOOKUPS.labels(r) for r in ("hit", "miss", "waited", "bypass", "refresh"))
# A hit on an entry past this share of its TTL has the page made again in the background.
REFRESH_AT = 0.75
log = logging.getLogger(__name__)


async def _quietly(run: Awaitable[None]) -> None:
    try:
        await run
    except Exception:  # the next request for the page makes it (and says what failed)
        log.debug("refreshing a cached GraphQL response failed", exc_info=True)


async def _whole_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The request body, and the messages it came in (to hand on unchanged)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"".join(chunks), messages
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _kinds(data: Any) -> list[str | None]:
    """The kind of each operation of a request body (None where it cannot be told)."""
    items = data if isinstance(data, list) else [data]
    kinds: list[str | None] = []
    for item in items:
        query = item.get("query") if isinstance(item, dict) else None
        name = item.get("operationName") if isinstance(item, dict) else None
        kinds.append(operation_kind(query, name if isinstance(name, str) else None) if isinstance(query, str) else None)
    return kinds


def _well_formed(data: Any) -> bool:
    """One operation in GraphQL-over-HTTP's shape, and no extensions: anything else is left to GraphQL
    to answer (a wrong type is a 400 there, which a cached answer to the right shape must not hide)."""
    if not isinstance(data, dict) or not isinstance(data.get("query"), str) or data.get("extensions") not in (None, {}):
        return False
    if len(data["query"]) > MAX_CACHED_QUERY_CHARS:
        return False
    if not set(data) <= {"query", "operationName", "variables", "extensions"}:
        return False
    name, variables = data.get("operationName"), data.get("variables")
    return (name is None or isinstance(name, str)) and (variables is None or isinstance(variables, dict))


class CachedQueries:
    """Serves GraphQL POSTs through `cache`; `negotiate` gives the response's media type (None: 406)."""

    def __init__(
        self,
        cache: ResponseCache,
        clock: Clock,
        negotiate: Callable[[str | None], str | None],
        on_write: Callable[[Scope], Awaitable[None]],
    ) -> None:
        self.cache, self.clock, self.negotiate, self.on_write = cache, clock, negotiate, on_write
        self._background: set[asyncio.Task[None]] = set()

    async def __call__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        viewer = viewer_in_scope(scope)
        content_type = _header(scope, b"content-type") or ""
        if scope["method"] != "POST" or viewer is None or "application/json" not in content_type.lower():
            _BYPASS.inc()
            await app(scope, receive, send)
            return
        if BODY_JSON_KEY in scope:
            data = scope[BODY_JSON_KEY]  # the access gate has read and decoded the body already
        else:
            body, messages = await _whole_body(receive)
            receive = _replay(messages, receive)
            data = body_json(body)
        kinds = _kinds(data)
        if "mutation" in kinds:
            _BYPASS.inc()
            try:
                await app(scope, receive, send)
            finally:
                self.cache.invalidate()  # here at once; the other processes when the announcement arrives
                await self.on_write(scope)
            return
        media_type = self.negotiate(_header(scope, b"accept"))
        if not _well_formed(data) or kinds != ["query"] or media_type is None or not self.cache.live:
            _BYPASS.inc()
            await app(scope, receive, send)
            return
        key = cache_key(viewer, media_type, data["query"], data.get("operationName"), data.get("variables"))
        now = self.clock.now().timestamp()
        entry = self.cache.get(key, now)
        if entry is None and (flight := self.cache.flight(key)) is not None:
            await asyncio.shield(flight)  # the same request, already running: its answer serves this one
            entry = self.cache.get(key, now)
            if entry is not None:
                _WAITED.inc()
                await _send_entry(send, entry.headers, entry.body)
                return
        elif entry is not None:
            _HIT.inc()
            await _send_entry(send, entry.headers, entry.body)
            if self.cache.monotonic() >= entry.expires - self.cache.ttl_seconds * (1 - REFRESH_AT):
                await self._refresh(app, key, scope, receive)
            return
        _MISS.inc()
        await self._run_and_keep(app, key, now, self.cache.take_off(key), scope, receive, send)

    async def _refresh(self, app: ASGIApp, key: Any, scope: Scope, receive: Receive) -> None:
        """Run this request again in the background to replace an entry late in its life, so that the
        page's readers keep being served from the cache rather than all waiting for it to be made again.
        The staleness bound is unchanged: each entry still serves only its TTL from its own start."""
        if self.cache.flight(key) is not None:
            return
        message = await receive()  # the body (as the gate hands it on): not read on a hit
        if message["type"] != "http.request" or message.get("more_body", False):
            return
        again = {k: v for k, v in scope.items() if k != RESULT_OK_KEY}
        given = False

        async def replay() -> Message:
            nonlocal given
            if given:
                return {"type": "http.disconnect"}
            given = True
            return message

        async def discard(_: Message) -> None:
            pass

        _REFRESHED.inc()
        run = self._run_and_keep(
            app, key, self.clock.now().timestamp(), self.cache.take_off(key), again, replay, discard
        )
        task = asyncio.get_running_loop().create_task(_quietly(run), name="carewatch-cache-refresh")
        self._background.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(self._background.discard)

    async def _run_and_keep(
        self,
        app: ASGIApp,
        key: Any,
        now: float,
        takeoff: tuple[int, asyncio.Future[None]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        generation, flight = takeoff
        started = self.cache.monotonic()
        status = 0
        headers: tuple[tuple[bytes, bytes], ...] = ()
        chunks: list[bytes] = []

        async def keeping_send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = tuple((bytes(k), bytes(v)) for k, v in message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            await app(scope, receive, keeping_send)
            if status == 200 and scope.get(RESULT_OK_KEY) is True:
                self.cache.put(key, b"".join(chunks), headers, generation=generation, started=started, now=now)
        finally:
            self.cache.land(key, generation, flight)


async def _send_entry(send: Send, headers: tuple[tuple[bytes, bytes], ...], body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
