"""A short-lived cache of whole GraphQL query responses, for the pages portals send again and again.

What a cached response is keyed by (`cache_key`): the caller's token (its id, role and scope: two tokens
never share an entry, whatever their reach), the response's media type, the document as graphql-core
prints it (so spacing does not matter), the operation name, the variables (canonical JSON), and the
processing clock's `now` (statuses and rolling windows depend on it): an entry made at processing time t
serves requests whose `now` is within [t, t + TTL) only.

When an entry stops being served:
- after `ttl_seconds` of wall time from when its request started (the staleness bound);
- when the processing clock is outside [t, t + TTL) of the request that made it (a fixed clock moved by
  a test, an accelerated clock: the TTL bounds staleness in processing time too);
- at once when the data may have changed: `invalidate()` drops every entry and bumps the generation,
  so a response computed from data read before the change is never stored afterwards. The API calls it
  when a data-version message arrives (carewatch/alerts/data_version.py: after every committed pipeline batch
  that changed something, every sweep that changed an alert, every mutation, every thresholds change);
- while the process is not listening for those messages (`live` False, e.g. Redis away), nothing is
  served from the cache and nothing is stored: every request runs.

Only queries are cached (never mutations or subscriptions), only 200 responses without any `errors`.
Memory is bounded by `max_bytes` (least recently used entries go first). Concurrent misses of one key
wait for the first one's response rather than all computing it (`flight`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from graphql import OperationDefinitionNode, print_ast
from prometheus_client import Counter, Gauge

from carewatch.security.query_cost import parsed
from carewatch.security.roles import Viewer

LOOKUPS = Counter(
    "carewatch_response_cache_total",
    "GraphQL requests seen by the response cache: hit (served from it), miss (ran and may be "
    "stored), waited (served by a concurrent identical request's run), bypass (not cacheable: "
    "a mutation, a batch, a request error, the cache not listening for data changes), refresh (a hit late "
    "in its entry's life had the page made again in the background)",
    ["result"],
)
for _result in ("hit", "miss", "waited", "bypass", "refresh"):  # every series exists from the start, at zero
    LOOKUPS.labels(_result)
INVALIDATIONS = Counter(
    "carewatch_response_cache_invalidations_total",
    "Times the response cache was emptied because the data may have changed",
)
CACHED_BYTES = Gauge("carewatch_response_cache_bytes", "Bytes the response cache holds (bodies and keys)")

ENTRY_OVERHEAD = 256  # bytes counted per entry beyond its body and key texts: the objects holding them

Key = tuple[Any, ...]


# Documents longer than this are never cached, nor kept in the per-text caches below (a client sending
# many large distinct documents must not fill memory with their texts).
MAX_CACHED_QUERY_CHARS = 16_384


def operation_kind(query: str, operation_name: str | None) -> str | None:
    """'query', 'mutation' or 'subscription' for the operation that would run; None when the document
    does not parse or names no single operation (GraphQL then answers with an error, not cached)."""
    if len(query) > MAX_CACHED_QUERY_CHARS:
        return _operation_kind.__wrapped__(query, operation_name)
    return _operation_kind(query, operation_name)


@lru_cache(maxsize=512)
def _operation_kind(query: str, operation_name: str | None) -> str | None:
    document = parsed(query)
    if document is None:
        return None
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        ops = [d for d in ops if d.name is not None and d.name.value == operation_name]
    return ops[0].operation.value if len(ops) == 1 else None


@lru_cache(maxsize=512)
def normalized_document(query: str) -> str:
    """The document as graphql-core prints it: the same operation spaced differently is one key."""
    document = parsed(query)
    return print_ast(document) if document is not None else query


def viewer_identity(viewer: Viewer) -> tuple[str, str | None, int | None]:
    """Who an entry belongs to: the token itself, never just its reach (`me` names the token)."""
    return viewer.role.value, viewer.scope, viewer.token_id


def cache_key(
    viewer: Viewer,
    media_type: str,
    query: str,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> Key:
    """The key of one query's response (see the module's docstring for why each part is there)."""
    canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    return (*viewer_identity(viewer), media_type, normalized_document(query), operation_name, canonical)


def key_bytes(key: Key) -> int:
    return sum(len(part) for part in key if isinstance(part, (str, bytes)))


@dataclass(frozen=True)
class Entry:
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    expires: float  # monotonic seconds
    now_from: float  # the processing clock's now (POSIX seconds) when the request that made it started
    size: int


class ResponseCache:
    """An LRU of response bodies bounded by bytes, emptied by `invalidate()`; see the module docstring."""

    def __init__(self, ttl_seconds: float, max_bytes: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self.monotonic = monotonic
        self.generation = 0
        self.live = False  # listening for data changes; until then nothing is served or stored
        self.size = 0
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._flights: dict[tuple[int, Key], asyncio.Future[None]] = {}

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key, now: float) -> Entry | None:
        """The entry for `key` if it may serve a request at processing time `now` (POSIX seconds)."""
        if not self.live:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self.monotonic():
            self._drop(key)
            return None
        if not entry.now_from <= now < entry.now_from + self.ttl_seconds:
            return None  # made for another moment of the processing clock
        self._entries.move_to_end(key)
        return entry

    def put(
        self,
        key: Key,
        body: bytes,
        headers: tuple[tuple[bytes, bytes], ...],
        *,
        generation: int,
        started: float,
        now: float,
    ) -> bool:
        """Keep a response computed from data read since `started` (monotonic) at `generation`, for the
        processing clock's `now` (POSIX seconds) when it started. Refused
        when the data may have changed since (another generation), when it has already expired, when the
        cache is not live, or when it alone would take more than a quarter of the cache."""
        if not self.live or generation != self.generation:
            return False
        expires = started + self.ttl_seconds
        size = len(body) + key_bytes(key) + ENTRY_OVERHEAD
        if expires <= self.monotonic() or size > self.max_bytes // 4:
            return False
        if key in self._entries:
            self._drop(key)
        self._entries[key] = Entry(body, headers, expires, now, size)
        self.size += size
        while self.size > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))
        CACHED_BYTES.set(self.size)
        return True

    def invalidate(self) -> None:
        """The data may have changed: forget every entry; responses being computed are not stored."""
        self.generation += 1
        self._entries.clear()
        self.size = 0
        CACHED_BYTES.set(0)
        INVALIDATIONS.inc()

    def flight(self, key: Key) -> asyncio.Future[None] | None:
        """The run of this key (in this generation) already under way, if any."""
        return self._flights.get((self.generation, key))

    def take_off(self, key: Key) -> tuple[int, asyncio.Future[None]]:
        """Mark this key's run as under way; `land` it when done, whatever happened."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flights[(self.generation, key)] = future
        return self.generation, future

    def land(self, key: Key, generation: int, future: asyncio.Future[None]) -> None:
        if self._flights.get((generation, key)) is future:
            del self._flights[(generation, key)]
        if not future.done():
            future.set_result(None)

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key)
        self.size -= entry.size
