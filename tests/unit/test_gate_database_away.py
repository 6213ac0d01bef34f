"""When the database is away, a request whose token must be checked gets a 503 saying so (not a 500 with
a traceback per request), and the outage is logged once when it starts and once when it ends."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from carewatch.security.gate import AccessGate, Authenticator
from carewatch.security.rate_limit import IngestRateLimiter
from carewatch.security.roles import Role, Viewer
from carewatch.security.tokens import TokenCache

SECRET = "cw_" + "a" * 43


class AwayPool:
    """A pool whose database does not answer, until `back` is set."""

    def __init__(self) -> None:
        self.back = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        if not self.back:
            raise psycopg.OperationalError("connection failed: Connection refused")
        yield object()


async def _call(gate: AccessGate, pool: AwayPool) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/graphql", "method": "POST", "query_string": b"",
             "headers": [(b"authorization", f"Bearer {SECRET}".encode())], "state": {"pool": pool, "redis": None}}
    await gate(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


async def test_a_token_check_without_the_database_is_a_503_and_the_outage_is_said_once(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the request must not reach the app")

    authenticator = Authenticator(TokenCache(5))
    gate = AccessGate(app, production=False, metrics_token_required=False, authenticator=authenticator,
                      rate_limiter=IngestRateLimiter(0, namespace="test"))
    pool = AwayPool()
    with caplog.at_level(logging.INFO, logger="carewatch.security.gate"):
        for _ in range(5):
            status, body = await _call(gate, pool)
            assert status == 503 and "the database did not answer" in body["error"]

        async def known(conn: Any, authorization: str | None, cache: Any) -> Viewer:
            return Viewer(Role.ADMIN, None, 1)

        monkeypatch.setattr("carewatch.security.gate.authenticate", known)
        pool.back = True
        assert await authenticator.viewer(pool, f"Bearer {SECRET}") == Viewer(Role.ADMIN, None, 1)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert said[0].startswith("PostgreSQL (checking tokens) unavailable (OperationalError: ")
    assert said[1].startswith("PostgreSQL (checking tokens) available again after ")
    assert all(r.exc_info is None for r in caplog.records)
