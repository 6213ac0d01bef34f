"""Pieces of `carewatch api-load` that need no services: CPU from /proc, the wrk script, the queries' cost."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

from carewatch.graphql.schema import schema
from carewatch.load.generator import _LUA, _lua_string
from carewatch.load.queries import aliased_packages, portal_queries
from carewatch.load.run import cpu_seconds
from carewatch.security.query_cost import Operation, operation_cost
from carewatch.settings import Settings


def test_cpu_seconds_counts_this_process_and_ignores_gone_ones() -> None:
    before = cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    spent = cpu_seconds([os.getpid()]) - before
    assert 0.2 <= spent <= 2.0, spent
    assert cpu_seconds([2 ** 22 + 7]) == 0.0  # no such process


def test_the_wrk_script_carries_the_body_and_token_verbatim() -> None:
    body = json.dumps({"query": 'query { package(id: "P]]-1") { id } }'})
    script = _LUA % {"body": _lua_string(body), "authorization": _lua_string("Bearer s3cret")}
    assert f"wrk.body = [==[{body}]==]" in script
    assert 'wrk.headers["Authorization"] = [==[Bearer s3cret]==]' in script
    assert "WRKRESULT" in script and "latency:percentile(99)" in script


def test_the_portal_queries_pass_the_cost_limit_and_the_aliased_one_does_not() -> None:
    limit = Settings().max_query_cost
    now = datetime(2026, 4, 9, 5, 0, tzinfo=UTC)
    queries = portal_queries("PKG-1", now)
    assert [q.role for q in queries] == ["commissioner", "provider", "admin"]
    for q in queries:
        assert 0 < operation_cost(schema._schema, Operation(q.query, q.variables)) <= limit, q.name
    assert operation_cost(schema._schema, Operation(aliased_packages(), {})) > limit
    assert queries[2].variables["from"] == "2026-04-02T05:00:00+00:00"
