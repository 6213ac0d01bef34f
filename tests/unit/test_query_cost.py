"""The query cost rule (security/query_cost.py) over the real schema, worked by hand, and the default limit.

Every field costs 1; a field taking `first` costs 1 + first x what it selects; aliases and batched
operations each count in full.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from graphql import GraphQLEnumType, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, get_named_type, parse, validate

from carewatch.graphql.schema import schema
from carewatch.security.query_cost import (
    Operation,
    operation_cost,
    operations_of_body,
    operations_of_query_string,
    request_cost,
)
from carewatch.settings import Settings

SCHEMA: GraphQLSchema = schema._schema
LIMIT = Settings().max_query_cost

# The core operations of contracts/GRAPHQL.md (the Query root); those another branch adds are costed once here.
CONTRACT_ROOTS = ("package", "packages", "shift", "shifts", "alerts", "invoice", "invoices", "statement",
                  "statements")

_LITERALS = {"ID": '"X-1"', "String": '"x"', "Int": "1", "Float": "1.0", "Boolean": "true",
             "Date": '"2026-04-01"', "DateTime": '"2026-04-06T00:00:00+01:00"'}


def _arguments(args: dict[str, Any], first: int) -> str:
    """Every required argument with a plausible literal, and `first` where the field takes it."""
    given = []
    for name, arg in args.items():
        if name == "first":
            given.append(f"first: {first}")
        elif isinstance(arg.type, GraphQLNonNull):
            named = get_named_type(arg.type)
            literal = named.values and next(iter(named.values)) if isinstance(named, GraphQLEnumType) else (
                _LITERALS[named.name])
            given.append(f"{name}: {literal}")
    return f"({', '.join(given)})" if given else ""


def _everything(type_: Any, first: int, depth: int = 0) -> str:
    """A selection of every field of the type, nested (the heaviest thing a portal could ask)."""
    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType):
        return ""
    parts = []
    for name, field in named.fields.items():
        inner = get_named_type(field.type)
        if isinstance(inner, GraphQLObjectType):
            selection = _everything(inner, first, depth + 1) if depth < 4 else ""
            if selection:
                parts.append(f"{name}{_arguments(field.args, first)} {{ {selection} }}")
        else:
            parts.append(f"{name}{_arguments(field.args, first)}")
    return " ".join(parts)


def contract_operation(root: str, first: int = 500) -> str:
    field = SCHEMA.query_type.fields[root]  # type: ignore[union-attr]
    return f"{{ {root}{_arguments(field.args, first)} {{ {_everything(field.type, first, 1)} }} }}"


def _cost(query: str, **variables: Any) -> int:
    return operation_cost(SCHEMA, Operation(query, variables))


def test_the_rule_by_hand() -> None:
    # packages 1 + 3 x (edges 1 + node (1 + id 1 + budget (1 + spentPence 1))) = 1 + 3 x 5
    assert _cost("{ packages(first: 3) { edges { node { id budget { spentPence } } } } }") == 16
    # no `first`: the contract's default page of 50
    assert _cost("{ packages { edges { node { id } } } }") == 1 + 50 * 3
    # from a variable, and through a fragment and an inline fragment
    assert _cost("query($n: Int) { packages(first: $n) { ...P } } fragment P on CarePackageConnection"
                 " { edges { node { ... on CarePackage { id } } } }", n=10) == 1 + 10 * 3
    # over the page cap `first` counts as 500: the resolver refuses it with its own message
    assert _cost("{ packages(first: 9000) { edges { cursor } } }") == 1 + 500 * 2
    # aliases each count in full
    assert _cost("{ a: packages(first: 3) { edges { node { id } } } b: packages(first: 3) { edges"
                 " { node { id } } } }") == 2 * (1 + 3 * 3)
    # attendance is a list bounded by its shift: what it selects, once
    assert _cost("{ shift(id: \"S\") { attendance { carerId method } } }") == 1 + 1 + 2


def test_every_contract_operation_at_first_500_passes_alone() -> None:
    present = [r for r in CONTRACT_ROOTS if r in SCHEMA.query_type.fields]  # type: ignore[union-attr]
    assert {"package", "packages", "shift", "shifts", "alerts", "invoice"} <= set(present)
    costs = {}
    for root in present:
        query = contract_operation(root)
        assert validate(SCHEMA, parse(query)) == [], query  # a real operation, every field of its type
        costs[root] = _cost(query)
    assert max(costs.values()) <= LIMIT, costs
    # the heaviest, every field of a package (three ledgers) at 500, is more than half the limit
    assert costs["packages"] > LIMIT // 2, costs


PORTAL_PACKAGES = ("packages(first: 500) { edges { node { id rolling7Days { actualMinutes spendPence } "
                   "budget { spentPence forecastSpendPence } } } }")
PORTAL_SHIFTS = "shifts(first: 500) { edges { node { id status attendance { carerId clockInAt } } } }"


def test_the_issues_15_aliases_and_batch_of_10_are_over_the_limit() -> None:
    one = _cost("{ " + PORTAL_PACKAGES + " }")
    assert one <= LIMIT
    aliased = "{ " + " ".join(f"a{i}: {PORTAL_PACKAGES}" for i in range(15)) + " }"
    assert _cost(aliased) == 15 * one > LIMIT
    aliased_shifts = "{ " + " ".join(f"a{i}: {PORTAL_SHIFTS}" for i in range(15)) + " }"
    assert _cost(aliased_shifts) > LIMIT
    batch = [Operation("{ " + PORTAL_PACKAGES + " }", {})] * 10
    assert request_cost(SCHEMA, batch) == 10 * one > LIMIT


def test_operations_are_read_from_post_bodies_and_query_strings() -> None:
    body = b'[{"query": "{ packages(first: 2) { edges { cursor } } }"}, {"query": "{ me { role } }"}]'
    assert request_cost(SCHEMA, operations_of_body(body)) == (1 + 2 * 2) + 2
    assert operations_of_body(b"not json") == []
    qs = urlencode({"query": "query($n: Int) { shifts(first: $n) { edges { cursor } } }",
                    "variables": '{"n": 7}'}).encode()
    assert request_cost(SCHEMA, operations_of_query_string(qs)) == 1 + 7 * 2
    assert _cost("{ not valid") == 0  # GraphQL itself answers a syntax error
