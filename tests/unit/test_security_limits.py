"""GraphQL limits (depth, tokens, aliases, introspection, masking), ingest scope and the rate rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError

from carewatch.schema.events import CareEvent, Rejection, validate_event
from carewatch.security.ingest_scope import apply_scope, scope_problem
from carewatch.security.limits import (
    MASKED_ERROR_MESSAGE,
    MAX_ALIASES,
    MAX_QUERY_DEPTH,
    MAX_QUERY_TOKENS,
    RefusedInput,
    graphql_extensions,
)
from carewatch.security.rate_limit import WINDOW_SECONDS, decide
from carewatch.security.roles import Role, Viewer


@strawberry.type
class Node:
    @strawberry.field
    def child(self) -> Node:
        return Node()

    @strawberry.field
    def name(self) -> str:
        return "n"

    @strawberry.field
    def secret_failure(self) -> str:
        raise RuntimeError('relation "packages" SELECT nhs_number FROM packages')

    @strawberry.field
    def total(self, values: list[int]) -> int:
        return sum(values)

    @strawberry.field
    def refused(self) -> str:
        raise RefusedInput("first must be at most 500")


@strawberry.type
class Query:
    @strawberry.field
    def root(self) -> Node:
        return Node()


def schema(production: bool) -> strawberry.Schema:
    return strawberry.Schema(Query, extensions=graphql_extensions(production))


def nested(depth: int) -> str:
    # root is depth 1, each child one more.
    inner = "name"
    for _ in range(depth - 1):
        inner = f"child {{ {inner} }}"
    return f"{{ root {{ {inner} }} }}"


async def errors_of(query: str, production: bool = False) -> list[str]:
    result = await schema(production).execute(query)
    return [e.message for e in result.errors or []]


async def test_depth_just_under_and_over() -> None:
    assert await errors_of(nested(MAX_QUERY_DEPTH)) == []
    messages = await errors_of(nested(MAX_QUERY_DEPTH + 1))
    assert messages and "exceeds maximum operation depth of 10" in messages[0]


def token_query(count: int) -> str:
    # "{ root { total ( values : [ ] ) } }" is 12 tokens, plus one per number in the list.
    return "{ root { total(values: [" + " ".join(["1"] * (count - 12)) + "]) } }"


async def test_tokens_just_under_and_over() -> None:
    assert await errors_of(token_query(MAX_QUERY_TOKENS)) == []
    messages = await errors_of(token_query(MAX_QUERY_TOKENS + 1))
    expected = f"Syntax Error: Document contains more than {MAX_QUERY_TOKENS} tokens. Parsing aborted."
    assert messages == [expected]


def alias_query(count: int) -> str:
    return "{ root { " + " ".join(f"a{i}: name" for i in range(count)) + " } }"


async def test_aliases_just_under_and_over() -> None:
    assert await errors_of(alias_query(MAX_ALIASES)) == []
    messages = await errors_of(alias_query(MAX_ALIASES + 1))
    assert messages == [f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"]


async def test_introspection_only_outside_production() -> None:
    assert await errors_of("{ __schema { types { name } } }", production=False) == []
    messages = await errors_of("{ __schema { types { name } } }", production=True)
    assert messages and "introspection" in messages[0].lower()


async def test_production_masks_internal_errors_but_not_refusals() -> None:
    dev = await errors_of("{ root { secretFailure } }", production=False)
    assert "SELECT" in dev[0]
    prod = await errors_of("{ root { secretFailure } }", production=True)
    assert prod == [MASKED_ERROR_MESSAGE]
    assert await errors_of("{ root { refused } }", production=True) == ["first must be at most 500"]
    # Validation errors are about the caller's query and stay readable.
    assert "Cannot query field" in (await errors_of("{ root { nope } }", production=True))[0]


def test_mask_rule_keeps_deliberate_graphql_errors() -> None:
    from carewatch.security.limits import should_mask_error
    assert not should_mask_error(GraphQLError("bad", original_error=GraphQLError("bad")))
    assert should_mask_error(GraphQLError("x", original_error=KeyError("x")))


def event(**fields: Any) -> CareEvent:
    base = {"event_id": "e1", "type": "activity.logged", "occurred_at": "2026-04-06T07:00:00Z",
            "carer_id": "CR-1", "provider_id": "PRV-A", "kind": "training", "minutes": 30}
    base.update(fields)
    import json
    result = validate_event(json.dumps(base))
    assert isinstance(result, CareEvent), result
    return result


INGEST_A = Viewer(Role.INGEST, "PRV-A", 1)


@pytest.mark.parametrize(("viewer", "item", "problem"), [
    (INGEST_A, lambda: event(), None),
    (INGEST_A, lambda: event(provider_id="PRV-B"),
     "provider_id: 'PRV-B' is not this token's provider 'PRV-A'"),
    (INGEST_A, lambda: event(type="commissioner.registered", commissioner_id="LA-1", name="x", kind="icb"),
     "commissioner.registered is a commissioner's event"),
    (Viewer(Role.ADMIN, None), lambda: event(provider_id="PRV-B"), None),
    (Viewer(Role.PROVIDER, "PRV-A"), lambda: event(), "a provider token may not post events"),
])
def test_scope_problem(viewer: Viewer, item: Callable[[], CareEvent], problem: str | None) -> None:
    found = scope_problem(viewer, item())
    assert found == problem if problem is None else (found is not None and found.startswith(problem))


def test_apply_scope_keeps_order_and_turns_foreign_events_into_scope_rejections() -> None:
    bad_json = validate_event("{")
    assert isinstance(bad_json, Rejection)
    items = [event(event_id="a"), event(event_id="b", provider_id="PRV-B"), bad_json]
    checked = apply_scope(INGEST_A, items)
    assert checked[0] is items[0] and checked[2] is bad_json
    rejected = checked[1]
    assert isinstance(rejected, Rejection) and rejected.stage == "scope" and rejected.event_id == "b"
    assert rejected.raw == items[1].raw


def test_rate_decision() -> None:
    assert decide(600, 600, now=1000.0, window_start=960.0).allowed
    refused = decide(601, 600, now=1000.0, window_start=960.0)
    assert not refused.allowed and refused.retry_after_seconds == 20
    assert decide(601, 600, now=960.0 + WINDOW_SECONDS - 0.1, window_start=960.0).retry_after_seconds == 1
