"""Query cost analysis (OWASP GraphQL cheat sheet): refuse a request that would cost too much, before it runs.

The cost of a request is the sum over its operations (a batch counts whole) of:
- every field selected costs 1 (the API's CPU goes field by field, scalars included);
- a field that takes `first` costs 1 + first x the cost of what it selects (`first` as asked, from a
  literal or a variable, else the argument's default, else the default page size; at most the page
  cap of 500, above which the resolver refuses `first` itself);
- other list fields (edges, attendance, history, lines) are bounded by their parent and cost what they select;
- fragments cost what they select, aliases each cost in full.

Only the document and the schema's shape are read: nothing touches the database. Parsed documents are
kept in a small cache, so a portal's repeated operations are parsed once per process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    parse,
)
from prometheus_client import Counter

from carewatch.security.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_QUERY_TOKENS

REFUSED_FOR_COST = Counter("carewatch_query_cost_refused_total",
                           "GraphQL requests refused before execution because their cost was over the limit")

_ROOTS = {"query": "query_type", "mutation": "mutation_type", "subscription": "subscription_type"}


@dataclass(frozen=True)
class Operation:
    """One GraphQL operation of a request, as sent."""

    query: str
    variables: Mapping[str, Any]
    operation_name: str | None = None


@lru_cache(maxsize=512)
def parsed(query: str) -> DocumentNode | None:
    """The document, parsed once per distinct text; None when it does not parse (GraphQL says why later)."""
    try:
        return parse(query, max_tokens=MAX_QUERY_TOKENS)
    except GraphQLError:
        return None


class _Costing:
    def __init__(self, schema: GraphQLSchema | None, document: DocumentNode,
                 variables: Mapping[str, Any]) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {d.name.value: d for d in document.definitions
                          if isinstance(d, FragmentDefinitionNode)}

    def _type(self, name: str | None) -> GraphQLNamedType | None:
        return self.schema.get_type(name) if self.schema is not None and name else None

    def _first(self, node: FieldNode, definition: GraphQLField | None) -> int | None:
        """The page size this field asks for, or None when it takes no `first`."""
        declared = definition.args.get("first") if definition is not None else None
        given = next((a for a in node.arguments or () if a.name.value == "first"), None)
        if declared is None and given is None:
            return None
        value: Any = None
        if given is not None:
            if isinstance(given.value, IntValueNode):
                value = int(given.value.value)
            elif isinstance(given.value, VariableNode):
                value = self.variables.get(given.value.name.value)
        if value is None and declared is not None and isinstance(declared.default_value, int):
            value = declared.default_value
        if not isinstance(value, int) or isinstance(value, bool):
            return DEFAULT_PAGE_SIZE
        # Past the page cap the resolver refuses `first` itself, with a clearer message than a cost.
        return min(max(value, 0), MAX_PAGE_SIZE)

    def selection(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None,
                  seen: frozenset[str] = frozenset()) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                total += self.field(node, parent, seen)
            elif isinstance(node, InlineFragmentNode):
                condition = self._type(node.type_condition.name.value) if node.type_condition else parent
                total += self.selection(node.selection_set, condition, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:  # a cycle is a validation error, not a cost
                    total += self.selection(fragment.selection_set,
                                            self._type(fragment.type_condition.name.value), seen | {name})
        return total

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, seen: frozenset[str]) -> int:
        definition = None
        if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            definition = parent.fields.get(node.name.value)
        child = get_named_type(definition.type) if definition is not None else None
        inner = self.selection(node.selection_set, child, seen)
        first = self._first(node, definition)
        return 1 + (inner if first is None else first * inner)

    def operation(self, op: OperationDefinitionNode) -> int:
        root_attr = _ROOTS.get(op.operation.value, "query_type")
        root = getattr(self.schema, root_attr) if self.schema is not None else None
        return self.selection(op.selection_set, root)


def operation_cost(schema: GraphQLSchema | None, operation: Operation) -> int:
    """The cost of the operation that would run (the most costly one when the name does not pick one)."""
    document = parsed(operation.query)
    if document is None:
        return 0
    costing = _Costing(schema, document, operation.variables)
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation.operation_name is not None:
        ops = [d for d in ops if d.name is not None and d.name.value == operation.operation_name]
    return max((costing.operation(op) for op in ops), default=0)


# Costs kept per (schema, document, operation name, variables): portals send the same few operations
# all day, and walking a page's document cost about a tenth of a cached page's CPU. Small requests only.
_MEMO_LIMIT_CHARS = 16_384


@lru_cache(maxsize=1024)
def _memo_cost(schema: GraphQLSchema | None, query: str, operation_name: str | None, variables: bytes) -> int:
    return operation_cost(schema, Operation(query, orjson.loads(variables), operation_name))


def request_cost(schema: GraphQLSchema | None, operations: Sequence[Operation]) -> int:
    """The cost of a whole request: every operation of a batch counts."""
    total = 0
    for op in operations:
        try:
            variables = orjson.dumps(op.variables, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON orjson can write (an integer past 64 bits): costed afresh
            variables = b""
        if variables and len(op.query) + len(variables) <= _MEMO_LIMIT_CHARS:
            total += _memo_cost(schema, op.query, op.operation_name, variables)
        else:
            total += operation_cost(schema, op)
    return total


def body_json(body: bytes) -> Any:
    """A request body's JSON (orjson, else the standard library for what orjson refuses); None if not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _operation(data: Any) -> Operation | None:
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return None
    variables = data.get("variables")
    name = data.get("operationName")
    return Operation(data["query"], variables if isinstance(variables, dict) else {},
                     name if isinstance(name, str) else None)


def operations_of_body(body: bytes) -> list[Operation]:
    """The operations of a POST body (one, or a batch); none when it is not GraphQL's JSON shape."""
    return operations_of_data(body_json(body))


def operations_of_data(data: Any) -> list[Operation]:
    """The operations of a POST body's JSON (one, or a batch); none when it is not GraphQL's shape."""
    if data is None:
        return []
    items = data if isinstance(data, list) else [data]
    return [op for op in map(_operation, items) if op is not None]


def operations_of_query_string(query_string: bytes) -> list[Operation]:
    """The operation of a GET request's query string (query, variables, operationName)."""
    params = parse_qs(query_string.decode("utf-8", "replace"))
    data: dict[str, Any] = {k: v[0] for k, v in params.items() if v}
    if isinstance(data.get("variables"), str):
        try:
            data["variables"] = json.loads(data["variables"])
        except ValueError:
            data["variables"] = {}
    op = _operation(data)
    return [op] if op is not None else []


def refusal_message(cost: int, limit: int) -> str:
    return (f"query cost {cost:,} is over the limit of {limit:,} (each list field costs its `first` times "
            f"what it selects, summed over aliases and batched operations): ask for smaller pages")
