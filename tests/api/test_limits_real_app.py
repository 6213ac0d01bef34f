"""The limits of hostile input, through the real app (create_app: the access gate, the real schema).

Each limit is tested just inside and just over, so a limit that moved either way fails. Then the
production mode: no introspection, no GraphiQL, unexpected errors masked; and the 401s.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from graphql.language import Lexer, Source, TokenKind
from starlette.testclient import TestClient
from tests.api.conftest import NOW, token_for

from carewatch.clock import FixedClock
from carewatch.security.limits import (
    MASKED_ERROR_MESSAGE,
    MAX_ALIASES,
    MAX_BATCH_OPERATIONS,
    MAX_BODY_BYTES,
    MAX_QUERY_DEPTH,
    MAX_QUERY_TOKENS,
)
from carewatch.settings import Settings
from carewatch.web import create_app

pytestmark = pytest.mark.services


def _app(settings: Settings, environment: str) -> Iterator[TestClient]:
    prod = dataclasses.replace(settings, environment=environment)
    headers = token_for(prod.database_url, "admin")
    with TestClient(create_app(prod, clock=FixedClock(NOW)), headers=headers) as client:
        yield client


@pytest.fixture()
def dev(api_settings: Settings) -> Iterator[TestClient]:
    yield from _app(api_settings, "development")


@pytest.fixture()
def prod(api_settings: Settings) -> Iterator[TestClient]:
    yield from _app(api_settings, "production")


def _errors(client: TestClient, query: str) -> list[str]:
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    return [e["message"] for e in response.json().get("errors", [])]


def _nested(depth: int) -> str:
    """A selection of depth `depth` (`{ a { b } }` is depth 1, as graphql-depth-limit counts). The
    schema has no cycle that deep, so the names are unknown fields; validation still runs the depth
    rule over the whole document, and that rule is what is measured here."""
    return "{ " + "a { " * depth + "b" + " }" * (depth + 1)


def test_query_depth_10_passes_the_limit_11_does_not(dev: TestClient) -> None:
    assert MAX_QUERY_DEPTH == 10
    inside = _errors(dev, _nested(MAX_QUERY_DEPTH))
    over = _errors(dev, _nested(MAX_QUERY_DEPTH + 1))
    assert not any("depth" in m for m in inside), inside
    assert any("exceeds maximum operation depth of 10" in m for m in over), over


def _tokens(n: int) -> str:
    """A valid query of exactly `n` tokens: 19 of structure around n - 19 strings in a list.

    (Commas are not tokens; many repeated fields would trip graphql-core's own overlap budget.)
    """
    kinds = " ".join(f'"K{i}"' for i in range(n - 19))
    return f"{{ alerts(filter: {{kinds: [{kinds}]}}) {{ pageInfo {{ hasNextPage }} }} }}"


def _count_tokens(query: str) -> int:
    lexer, n = Lexer(Source(query)), 0
    while lexer.advance().kind != TokenKind.EOF:
        n += 1
    return n


def test_2000_tokens_pass_2001_do_not(dev: TestClient) -> None:
    assert MAX_QUERY_TOKENS == 2000
    assert _count_tokens(_tokens(2000)) == 2000
    response = dev.post("/graphql", json={"query": _tokens(MAX_QUERY_TOKENS)})
    assert response.json() == {"data": {"alerts": {"pageInfo": {"hasNextPage": False}}}}
    over = _errors(dev, _tokens(MAX_QUERY_TOKENS + 1))
    assert over and "2000" in over[0] and "token" in over[0].lower(), over


def _aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


def test_15_aliases_pass_16_do_not(dev: TestClient) -> None:
    assert MAX_ALIASES == 15
    response = dev.post("/graphql", json={"query": _aliases(MAX_ALIASES)})
    assert response.json()["data"] == {f"a{i}": "Query" for i in range(15)}
    over = _errors(dev, _aliases(MAX_ALIASES + 1))
    assert over and "15" in over[0] and "alias" in over[0].lower(), over


def test_first_500_passes_501_does_not(dev: TestClient) -> None:
    for field in ("packages", "shifts", "alerts"):
        ok = dev.post("/graphql", json={"query": f"{{ {field}(first: 500) {{ pageInfo {{ hasNextPage }} }} }}"})
        assert "errors" not in ok.json(), ok.json()
        over = _errors(dev, f"{{ {field}(first: 501) {{ pageInfo {{ hasNextPage }} }} }}")
        assert over and "500" in over[0], (field, over)


def test_batch_of_10_operations_passes_11_do_not(dev: TestClient) -> None:
    assert MAX_BATCH_OPERATIONS == 10
    ops = [{"query": "{ package(id: \"PKG-100\") { id } }"}] * MAX_BATCH_OPERATIONS
    ok = dev.post("/graphql", json=ops)
    assert ok.status_code == 200, ok.text
    assert ok.json() == [{"data": {"package": {"id": "PKG-100"}}}] * 10
    over = dev.post("/graphql", json=[*ops, ops[0]])
    assert over.status_code == 400 and "too many operations" in over.json()["error"]


def _padded(size: int) -> bytes:
    """A valid GraphQL request body of exactly `size` bytes (padding in an unused variable)."""
    empty = json.dumps({"query": "{ __typename }", "variables": {"pad": ""}}).encode()
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * (size - len(empty))}}).encode()
    assert len(body) == size
    return body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "streamed"])
def test_body_of_1_mib_passes_one_byte_more_is_413(dev: TestClient, chunked: bool) -> None:
    def send(body: bytes) -> Any:
        headers = {"content-type": "application/json"}
        if not chunked:
            return dev.post("/graphql", content=body, headers=headers)

        def pieces() -> Iterator[bytes]:  # no Content-Length: the gate counts as it reads
            for i in range(0, len(body), 64 * 1024):
                yield body[i:i + 64 * 1024]
        return dev.post("/graphql", content=pieces(), headers=headers)

    inside = send(_padded(MAX_BODY_BYTES))
    assert inside.status_code == 200 and inside.json() == {"data": {"__typename": "Query"}}
    over = send(_padded(MAX_BODY_BYTES + 1))
    assert over.status_code == 413, over.text
    assert over.json()["limit_bytes"] == MAX_BODY_BYTES
    events_over = dev.post("/events", content=b"[" + b" " * MAX_BODY_BYTES + b"]")
    assert events_over.status_code == 413


# ---- production mode ------------------------------------------------------------------------------

INTROSPECTION = "{ __schema { queryType { name } types { name } } }"


def test_introspection_only_outside_production(dev: TestClient, prod: TestClient) -> None:
    assert dev.post("/graphql", json={"query": INTROSPECTION}).json()["data"]["__schema"]["queryType"] == {
        "name": "Query"}
    refused = prod.post("/graphql", json={"query": INTROSPECTION}).json()
    assert refused.get("data") is None and refused["errors"]
    assert "introspection" in refused["errors"][0]["message"].lower()
    assert "CarePackage" not in json.dumps(refused)
    typename = prod.post("/graphql", json={"query": "{ __type(name: \"CarePackage\") { fields { name } } }"})
    assert "budgetPence" not in typename.text


def test_graphiql_only_outside_production(dev: TestClient, prod: TestClient) -> None:
    page = dev.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    for headers in ({"accept": "text/html"}, {"accept": "text/html", "authorization": ""}):
        refused = prod.get("/graphql", headers=headers)
        assert "graphiql" not in refused.text.lower()
        assert not refused.headers.get("content-type", "").startswith("text/html")


# A NUL byte reaches PostgreSQL, which refuses it: an unexpected error from deep in the store.
NUL_QUERY = {"query": "query($id: ID!) { package(id: $id) { id } }", "variables": {"id": "PKG\u0000100"}}


def test_unexpected_errors_masked_in_production(dev: TestClient, prod: TestClient) -> None:
    detailed = dev.post("/graphql", json=NUL_QUERY).json()
    assert detailed["errors"] and MASKED_ERROR_MESSAGE not in detailed["errors"][0]["message"]

    masked = prod.post("/graphql", json=NUL_QUERY)
    assert masked.status_code == 200
    body = masked.json()
    assert [e["message"] for e in body["errors"]] == [MASKED_ERROR_MESSAGE]
    text = masked.text.lower()
    for leak in ("traceback", "psycopg", "select", "nul byte", "0x00", "packages", "file \"", "stacktrace"):
        assert leak not in text, (leak, masked.text)
    # The caller's own mistakes stay readable: they carry nothing internal.
    client_error = prod.post("/graphql", json={"query": "{ shifts(first: 501) { pageInfo { hasNextPage } } }"})
    assert "500" in client_error.json()["errors"][0]["message"]


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer cw_" + "A" * 43, "Bearer " + "x" * 5000,
], ids=["none", "empty", "no-secret", "short", "basic", "unknown", "huge"])
@pytest.mark.parametrize("path", ["/graphql", "/events"])
def test_no_or_bad_token_is_401_fast_without_detail(prod: TestClient, authorization: str | None,
                                                    path: str) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    started = time.monotonic()
    # Replace the client's admin header for this one request.
    request = prod.build_request("POST", path, json={"query": "{ packages { edges { node { id } } } }"})
    request.headers.pop("authorization", None)
    request.headers.update(headers)
    response = prod.send(request)
    elapsed = time.monotonic() - started
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert elapsed < 1.0, elapsed
