"""The GraphQL response cache's rules without services: keys, expiry, invalidation, memory bound, flights,
and which committed batches announce a change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from carewatch.alerts.data_version import changes_reads
from carewatch.graphql.response_cache import (
    ResponseCache,
    cache_key,
    normalized_document,
    operation_kind,
)
from carewatch.pipeline.outcome import BatchOutcome
from carewatch.security.roles import Role, Viewer

PAGE = "query Page($after: String) { packages(first: 50, after: $after) { edges { node { id } } } }"
NOW = datetime(2026, 4, 9, 5, 0, tzinfo=UTC)
T = NOW.timestamp()
JSON = "application/json"
HEADERS = ((b"content-type", b"application/json"),)


def key(
    viewer: Viewer,
    query: str = PAGE,
    variables: dict[str, object] | None = None,
    name: str | None = "Page",
    media: str = JSON,
) -> tuple[object, ...]:
    return cache_key(viewer, media, query, name, variables)


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def live_cache(ttl: float = 1.0, max_bytes: int = 1_000_000) -> tuple[ResponseCache, FakeTime]:
    clock = FakeTime()
    cache = ResponseCache(ttl, max_bytes, monotonic=clock)
    cache.live = True
    return cache, clock


def test_two_tokens_never_share_a_key_even_with_the_same_reach() -> None:
    a = Viewer(Role.COMMISSIONER, "LA-WIRRAL", token_id=1)
    b = Viewer(Role.COMMISSIONER, "LA-WIRRAL", token_id=2)
    other = Viewer(Role.COMMISSIONER, "LA-SEFTON", token_id=1)
    safeguarding = Viewer(Role.SAFEGUARDING, "LA-WIRRAL", token_id=1)
    keys = {key(a), key(b), key(other), key(safeguarding), key(Viewer(Role.ADMIN, None, token_id=1))}
    assert len(keys) == 5
    assert key(a) == key(Viewer(Role.COMMISSIONER, "LA-WIRRAL", token_id=1))


def test_the_key_ignores_spacing_and_variable_order_but_not_what_changes_the_answer() -> None:
    v = Viewer(Role.ADMIN, None, token_id=3)
    spaced = PAGE.replace(" { ", "  {\n   ")
    assert key(v, spaced) == key(v, PAGE)
    assert normalized_document(spaced) == normalized_document(PAGE)
    assert key(v, variables={"a": 1, "b": [1, 2]}) == key(v, variables={"b": [1, 2], "a": 1})
    assert key(v, variables=None) == key(v, variables={})
    base = key(v, variables={"after": "x"})
    assert base != key(v, variables={"after": "y"})
    assert base != key(v, variables={"after": "x"}, name=None)
    assert base != key(v, variables={"after": "x"}, media="application/graphql-response+json")
    assert key(v, PAGE.replace("first: 50", "first: 51")) != key(v)


def test_an_entry_serves_only_the_ttl_of_processing_time_after_its_request_started() -> None:
    cache, clock = live_cache(ttl=1.0)
    k = key(Viewer(Role.ADMIN, None, token_id=1))
    t = NOW.timestamp()
    assert cache.put(k, b"{}", HEADERS, generation=cache.generation, started=clock.t, now=t)
    assert cache.get(k, t) is not None
    assert cache.get(k, (NOW + timedelta(milliseconds=999)).timestamp()) is not None
    assert cache.get(k, (NOW + timedelta(seconds=1)).timestamp()) is None  # a moved or fast clock
    assert cache.get(k, (NOW + timedelta(minutes=5)).timestamp()) is None
    assert cache.get(k, (NOW - timedelta(seconds=1)).timestamp()) is None  # a clock set back
    assert cache.get(k, t) is not None  # the entry itself stays for its own moment


def test_only_a_single_query_operation_is_a_query() -> None:
    assert operation_kind(PAGE, None) == "query"
    assert operation_kind(PAGE, "Page") == "query"
    assert operation_kind(PAGE, "Other") is None
    assert operation_kind('mutation { resolveAlert(id: "1", note: "x") { id } }', None) == "mutation"
    assert operation_kind("subscription { alerts { id } }", None) == "subscription"
    two = 'query A { me { role } } mutation B { acknowledgeAlert(id: "1") { id } }'
    assert operation_kind(two, None) is None  # ambiguous: GraphQL refuses it
    assert operation_kind(two, "B") == "mutation"
    assert operation_kind("{ not closed", None) is None


def test_nothing_is_served_or_kept_until_the_cache_listens_for_changes() -> None:
    cache, clock = live_cache()
    cache.live = False
    k = key(Viewer(Role.ADMIN, None, token_id=1))
    assert not cache.put(k, b"{}", HEADERS, generation=cache.generation, started=clock.t, now=T)
    cache.live = True
    assert cache.put(k, b"{}", HEADERS, generation=cache.generation, started=clock.t, now=T)
    cache.live = False
    assert cache.get(k, T) is None


def test_an_entry_is_served_until_its_ttl_from_the_start_of_the_request_that_made_it() -> None:
    cache, clock = live_cache(ttl=1.0)
    k = key(Viewer(Role.ADMIN, None, token_id=1))
    started = clock.t
    clock.t += 0.3  # the run took 300 ms
    assert cache.put(k, b'{"data":1}', HEADERS, generation=cache.generation, started=started, now=T)
    clock.t = started + 0.999
    entry = cache.get(k, T)
    assert entry is not None and entry.body == b'{"data":1}' and entry.headers == HEADERS
    clock.t = started + 1.0
    assert cache.get(k, T) is None and len(cache) == 0 and cache.size == 0
    # A run slower than the TTL is not kept at all.
    assert not cache.put(k, b"{}", HEADERS, generation=cache.generation, started=clock.t - 1.5, now=T)


def test_invalidate_forgets_everything_and_refuses_responses_computed_before_it() -> None:
    cache, clock = live_cache()
    k1 = key(Viewer(Role.ADMIN, None, token_id=1))
    k2 = key(Viewer(Role.ADMIN, None, token_id=2))
    assert cache.put(k1, b"old", HEADERS, generation=cache.generation, started=clock.t, now=T)
    running = cache.generation  # a request for k2 started reading here ...
    cache.invalidate()  # ... a batch committed and was announced ...
    assert cache.get(k1, T) is None and cache.size == 0
    # ... so what it read may be stale: not kept.
    assert not cache.put(k2, b"maybe stale", HEADERS, generation=running, started=clock.t, now=T)
    assert cache.get(k2, T) is None
    assert cache.put(k2, b"new", HEADERS, generation=cache.generation, started=clock.t, now=T)


def test_memory_is_bounded_by_bytes_least_recently_used_first() -> None:
    cache, clock = live_cache(max_bytes=20_000)
    viewers = [Viewer(Role.PROVIDER, "PRV-1", token_id=i) for i in range(5)]
    keys = [key(v) for v in viewers]
    body = b"x" * 4_000
    for k in keys[:4]:
        assert cache.put(k, body, HEADERS, generation=cache.generation, started=clock.t, now=T)
    assert cache.get(keys[0], T) is not None  # used: now the most recent
    assert cache.put(keys[4], body, HEADERS, generation=cache.generation, started=clock.t, now=T)
    assert cache.size <= 20_000
    assert cache.get(keys[1], T) is None  # the least recently used went first
    assert cache.get(keys[0], T) is not None and cache.get(keys[4], T) is not None
    # One response larger than a quarter of the cache is never kept (it would empty it).
    assert not cache.put(keys[2], b"y" * 6_000, HEADERS, generation=cache.generation, started=clock.t, now=T)


def test_a_flight_is_shared_within_a_generation_and_landed_whatever_happened() -> None:
    async def scenario() -> None:
        cache, _ = live_cache()
        k = key(Viewer(Role.ADMIN, None, token_id=1))
        assert cache.flight(k) is None
        generation, future = cache.take_off(k)
        assert cache.flight(k) is future
        cache.invalidate()
        assert cache.flight(k) is None  # a request after a change does not wait for a stale run
        cache.land(k, generation, future)
        assert future.done()

    asyncio.run(scenario())


def test_a_batch_announces_a_change_only_when_it_changed_what_queries_read() -> None:
    assert changes_reads(BatchOutcome(applied=3))
    assert changes_reads(BatchOutcome(released=1))
    assert changes_reads(BatchOutcome(affected_shift_ids=("SH-1",)))
    assert not changes_reads(BatchOutcome(duplicates=40))
    assert not changes_reads(BatchOutcome(held=2, rejected=5))


def test_only_a_well_formed_single_operation_may_come_from_the_cache() -> None:
    from carewatch.graphql.cached_http import _well_formed

    assert _well_formed({"query": PAGE})
    assert _well_formed({"query": PAGE, "operationName": "Page", "variables": {"after": None}})
    assert _well_formed({"query": PAGE, "operationName": None, "variables": None, "extensions": {}})
    # What GraphQL refuses with a 400 must reach it, never be answered by an entry for the right shape.
    assert not _well_formed({"query": PAGE, "operationName": {}})
    assert not _well_formed({"query": PAGE, "variables": 3})
    assert not _well_formed({"query": PAGE, "variables": [1]})
    assert not _well_formed({"query": PAGE, "extensions": {"persistedQuery": {}}})
    assert not _well_formed({"query": 1})
    assert not _well_formed([{"query": PAGE}])
    assert not _well_formed({"query": PAGE, "other": 1})
    assert not _well_formed({"query": PAGE, "extensions": 0})
    assert not _well_formed({"query": PAGE, "extensions": False})


def test_the_worker_s_announcements_never_hold_a_batch_and_coalesce() -> None:
    from carewatch.alerts.data_version import BatchAnnouncer, DataVersion

    class SlowRedis(DataVersion):
        def __init__(self) -> None:
            self.sent = 0
            self.release = asyncio.Event()

        async def changed(self) -> None:
            await self.release.wait()
            self.sent += 1

    async def scenario() -> None:
        version = SlowRedis()
        announce = BatchAnnouncer(version)
        for _ in range(5):  # five batches commit while Redis is slow: none of them waits
            await asyncio.wait_for(announce(BatchOutcome(applied=1)), timeout=0.5)
        await announce(BatchOutcome(duplicates=9))  # changes nothing a query reads
        version.release.set()
        await announce.drain()
        assert version.sent == 2  # the one under way, then one for every batch committed meanwhile

    asyncio.run(scenario())


def test_a_stopping_worker_waits_for_its_last_announcement_only_so_long() -> None:
    from carewatch.alerts.data_version import BatchAnnouncer, DataVersion

    class StuckRedis(DataVersion):
        def __init__(self) -> None:
            self.never = asyncio.Event()

        async def changed(self) -> None:
            await self.never.wait()

    async def scenario() -> None:
        announce = BatchAnnouncer(StuckRedis())
        await announce(BatchOutcome(applied=1))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await announce.drain(timeout=0.05)
        assert loop.time() - started < 1.0
        await asyncio.sleep(0)
        assert announce._task is not None and announce._task.cancelled()

    asyncio.run(scenario())


def test_a_long_document_is_never_cached_but_still_told_apart() -> None:
    from carewatch.graphql.cached_http import _well_formed
    from carewatch.graphql.response_cache import MAX_CACHED_QUERY_CHARS, _operation_kind

    long_query = PAGE + " " * MAX_CACHED_QUERY_CHARS
    assert not _well_formed({"query": long_query})
    long_mutation = 'mutation { resolveAlert(id: "1", note: "x") { id } }' + " " * MAX_CACHED_QUERY_CHARS
    before = _operation_kind.cache_info().currsize
    assert operation_kind(long_mutation, None) == "mutation"  # a mutation still empties the caches
    assert _operation_kind.cache_info().currsize == before  # its text is not kept
