"""Accept negotiation and request errors of GraphQL over HTTP (graphql/over_http.py)."""

from __future__ import annotations

import pytest
from graphql import GraphQLError
from strawberry.types import ExecutionResult

from carewatch.graphql.over_http import GRAPHQL_RESPONSE_JSON, JSON, is_request_error, negotiate


@pytest.mark.parametrize(("accept", "expected"), [
    (None, JSON),
    ("", JSON),
    ("*/*", JSON),
    ("application/*", JSON),
    ("application/json", JSON),
    ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
    ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
    ("application/json, application/graphql-response+json;q=0.5", JSON),
    ("application/graphql-response+json;q=0.5, */*", JSON),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),
    ("application/graphql-response+json, */*;q=0.1", GRAPHQL_RESPONSE_JSON),
    ("text/plain", None),
    ("application/json;q=0", None),
    ("application/json;q=nonsense, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
    ("*/*;q=0, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
])
def test_accept_negotiation(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_a_request_error_has_no_path_and_no_data() -> None:
    parse = ExecutionResult(data=None, errors=[GraphQLError("Syntax Error: Expected Name, found <EOF>.")])
    assert is_request_error(parse)
    field = ExecutionResult(data=None, errors=[GraphQLError("first must be at most 500", path=["shifts"])])
    assert not is_request_error(field)  # execution started: data stays (null), status stays 200
    partial = ExecutionResult(data={"a": None}, errors=[GraphQLError("x", path=["a"])])
    assert not is_request_error(partial)
    assert not is_request_error(ExecutionResult(data={"a": 1}, errors=None))
