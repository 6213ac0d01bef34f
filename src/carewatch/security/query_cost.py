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
import re
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


# -- The shape of a document as the cost rule reads it ---------------------------------------------------
# Fields with the `first` they were given, inline fragments, fragment spreads; operations; fragments by name.


@dataclass(frozen=True, slots=True)
class Var:
    """`first: $name`."""

    name: str


class _Other:
    """`first` given as something else than an integer literal or a variable (the default applies)."""

    def __repr__(self) -> str:
        return "OTHER"


OTHER = _Other()
First = int | Var | _Other | None  # None: no `first` argument


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    first: First
    selections: tuple[Selection, ...] | None


@dataclass(frozen=True, slots=True)
class Inline:
    type_condition: str | None
    selections: tuple[Selection, ...]


@dataclass(frozen=True, slots=True)
class Spread:
    name: str


Selection = Field | Inline | Spread


@dataclass(frozen=True, slots=True)
class OperationShape:
    kind: str  # query, mutation or subscription
    name: str | None
    selections: tuple[Selection, ...]


@dataclass(frozen=True)
class Shape:
    operations: tuple[OperationShape, ...]
    fragments: Mapping[str, tuple[str, tuple[Selection, ...]]]  # name -> (type condition, selections); the last wins


def shape_of(document: DocumentNode) -> Shape:
    """The shape of a document graphql-core parsed."""
    operations, fragments = [], {}
    for d in document.definitions:
        if isinstance(d, OperationDefinitionNode):
            operations.append(OperationShape(d.operation.value, d.name.value if d.name else None,
                                             _selections(d.selection_set)))
        elif isinstance(d, FragmentDefinitionNode):
            fragments[d.name.value] = (d.type_condition.name.value, _selections(d.selection_set))
    return Shape(tuple(operations), fragments)


def _selections(selection_set: SelectionSetNode) -> tuple[Selection, ...]:
    out: list[Selection] = []
    for node in selection_set.selections:
        if isinstance(node, FieldNode):
            given = next((a for a in node.arguments or () if a.name.value == "first"), None)
            first: First = None
            if given is not None:
                value = given.value
                first = (int(value.value) if isinstance(value, IntValueNode)
                         else Var(value.name.value) if isinstance(value, VariableNode) else OTHER)
            out.append(Field(node.name.value, first,
                             None if node.selection_set is None else _selections(node.selection_set)))
        elif isinstance(node, InlineFragmentNode):
            out.append(Inline(node.type_condition.name.value if node.type_condition else None,
                              _selections(node.selection_set)))
        elif isinstance(node, FragmentSpreadNode):
            out.append(Spread(node.name.value))
    return tuple(out)


# -- The quick reading ----------------------------------------------------------------------------------
# graphql-core's parser builds a node with its location for every token: about 7 ms of CPU for the issue's
# 15-alias request on this machine, 25 ms for a document at the token limit, spent before a request over
# the limit could be refused. The quick reading tokenises with one regular expression and builds only the
# shape: about a fifth of that. It reads the usual executable documents; anything else (descriptions,
# type definitions, \u{...} escapes, very deep nesting, a character or a construct it does not know)
# makes it give up and graphql-core reads the document instead, so both always give the same shape
# (tests/unit/test_query_cost_reading.py compares them over generated documents).

_TOKEN = re.compile(
    r"(?P<skip>[\t \n\r,\ufeff]+)"
    r"|(?P<comment>#[\t\x20-\ud7ff\ue000-\U0010ffff]*)"
    r"|(?P<punct>\.\.\.|[!$&():=@\[\]{|}])"
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
    r"|(?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?![._A-Za-z0-9])"
    r'|(?P<block>"""(?:\\"""|[^"\\\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]|"(?!"")|\\)*""")'
    r'|(?P<string>"(?:[^"\\\x00-\x08\x0a-\x1f\ud800-\udfff]'
    r'|\\[\\"/bfnrt]|\\u(?:[0-9A-Ca-cE-Fe-f][0-9A-Fa-f]{3}|[dD][0-7][0-9A-Fa-f]{2}))*")'
    r"|(?P<bad>.)",
    re.DOTALL,
)
_DEPTH = 64  # deeper selections, lists, objects or types than this: graphql-core reads it
_OPERATIONS = ("query", "mutation", "subscription")


class _GiveUp(Exception):
    """The quick reading does not read this document; graphql-core will."""


_END = ("", "")


class _Reader:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else _END

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is _END:
            raise _GiveUp
        self.i += 1
        return token

    def expect(self, kind: str, value: str | None = None) -> str:
        k, v = self.take()
        if k != kind or (value is not None and v != value):
            raise _GiveUp
        return v

    def at(self, kind: str, value: str | None = None) -> bool:
        k, v = self.peek()
        return k == kind and (value is None or v == value)

    def nest(self) -> None:
        self.depth += 1
        if self.depth > _DEPTH:
            raise _GiveUp

    def document(self) -> Shape:
        operations: list[OperationShape] = []
        fragments: dict[str, tuple[str, tuple[Selection, ...]]] = {}
        if self.i >= len(self.tokens):
            raise _GiveUp  # an empty document is a syntax error: graphql-core says so
        while self.i < len(self.tokens):
            kind, value = self.peek()
            if kind == "punct" and value == "{":
                operations.append(OperationShape("query", None, self.selection_set()))
            elif kind == "name" and value in _OPERATIONS:
                self.i += 1
                name = self.take()[1] if self.at("name") else None
                if self.at("punct", "("):
                    self.variable_definitions()
                self.directives(const=False)
                operations.append(OperationShape(value, name, self.selection_set()))
            elif kind == "name" and value == "fragment":
                self.i += 1
                name = self.expect("name")
                if name == "on":
                    raise _GiveUp
                self.expect("name", "on")
                condition = self.expect("name")
                self.directives(const=False)
                fragments[name] = (condition, self.selection_set())
            else:
                raise _GiveUp
        return Shape(tuple(operations), fragments)

    def variable_definitions(self) -> None:
        self.expect("punct", "(")
        while True:
            self.expect("punct", "$")
            self.expect("name")
            self.expect("punct", ":")
            self.type_reference()
            if self.at("punct", "="):
                self.i += 1
                self.value(const=True)
            self.directives(const=True)
            if self.at("punct", ")"):
                self.i += 1
                return

    def type_reference(self) -> None:
        if self.at("punct", "["):
            self.i += 1
            self.nest()
            self.type_reference()
            self.depth -= 1
            self.expect("punct", "]")
        else:
            self.expect("name")
        if self.at("punct", "!"):
            self.i += 1

    def selection_set(self) -> tuple[Selection, ...]:
        self.expect("punct", "{")
        self.nest()
        out: list[Selection] = []
        while not self.at("punct", "}"):
            out.append(self.selection())
        self.i += 1
        self.depth -= 1
        return tuple(out)

    def selection(self) -> Selection:
        kind, value = self.take()
        if kind == "punct" and value == "...":
            if self.at("name", "on"):
                self.i += 1
                condition: str | None = self.expect("name")
            elif self.at("name"):
                spread = self.take()[1]
                self.directives(const=False)
                return Spread(spread)
            else:
                condition = None
            self.directives(const=False)
            return Inline(condition, self.selection_set())
        if kind != "name":
            raise _GiveUp
        name = value
        if self.at("punct", ":"):
            self.i += 1
            name = self.expect("name")
        first: First = None
        if self.at("punct", "("):
            first = self.arguments(const=False)
        self.directives(const=False)
        return Field(name, first, self.selection_set() if self.at("punct", "{") else None)

    def arguments(self, const: bool) -> First:
        """The arguments, and what the first one named `first` was given."""
        self.expect("punct", "(")
        first: First = None
        found = False
        while True:
            name = self.expect("name")
            self.expect("punct", ":")
            value = self.value(const)
            if name == "first" and not found:
                first, found = value, True
            if self.at("punct", ")"):
                self.i += 1
                return first

    def value(self, const: bool) -> First:
        kind, value = self.take()
        if kind == "number":
            return OTHER if "." in value or "e" in value or "E" in value else int(value)
        if kind in ("string", "block", "name"):
            return OTHER
        if kind != "punct":
            raise _GiveUp
        if value == "$":
            if const:
                raise _GiveUp
            return Var(self.expect("name"))
        if value == "[":
            self.nest()
            while not self.at("punct", "]"):
                self.value(const)
            self.i += 1
            self.depth -= 1
            return OTHER
        if value == "{":
            self.nest()
            while not self.at("punct", "}"):
                self.expect("name")
                self.expect("punct", ":")
                self.value(const)
            self.i += 1
            self.depth -= 1
            return OTHER
        raise _GiveUp

    def directives(self, const: bool) -> None:
        while self.at("punct", "@"):
            self.i += 1
            self.expect("name")
            if self.at("punct", "("):
                self.arguments(const)


def quick_shape(query: str) -> Shape | None:
    """The document's shape by the quick reading; None when it leaves the document to graphql-core."""
    tokens: list[tuple[str, str]] = []
    comments = 0
    for match in _TOKEN.finditer(query):
        kind = match.lastgroup
        if kind == "skip":
            continue
        if kind == "comment":
            comments += 1  # graphql-core counts comments towards its token limit too
            continue
        if kind == "bad":
            return None
        tokens.append((kind or "", match.group()))
    if len(tokens) + comments > MAX_QUERY_TOKENS:
        return None
    try:
        return _Reader(tokens).document()
    except _GiveUp:
        return None


@lru_cache(maxsize=512)
def shape(query: str) -> Shape | None:
    """The document's shape, read once per distinct text; None when it does not parse (GraphQL says why later)."""
    quick = quick_shape(query)
    if quick is not None:
        return quick
    document = parsed(query)
    return shape_of(document) if document is not None else None


@lru_cache(maxsize=512)
def parsed(query: str) -> DocumentNode | None:
    """The document, parsed once per distinct text; None when it does not parse (GraphQL says why later)."""
    try:
        return parse(query, max_tokens=MAX_QUERY_TOKENS)
    except GraphQLError:
        return None


class _Costing:
    def __init__(self, schema: GraphQLSchema | None, document: Shape, variables: Mapping[str, Any]) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = document.fragments
        # A fragment's cost depends on nothing but the fragment (its type condition is its own): worked out
        # once. Without this, fragments each spreading the next twice cost 2^n walks before any validation:
        # a 200-byte request held the event loop for 20 s.
        self.spread_costs: dict[str, int] = {}

    def _type(self, name: str | None) -> GraphQLNamedType | None:
        return self.schema.get_type(name) if self.schema is not None and name else None

    def _first(self, node: Field, definition: GraphQLField | None) -> int | None:
        """The page size this field asks for, or None when it takes no `first`."""
        declared = definition.args.get("first") if definition is not None else None
        given = node.first
        if declared is None and given is None:
            return None
        value: Any = None
        if isinstance(given, int):
            value = given
        elif isinstance(given, Var):
            value = self.variables.get(given.name)
        if value is None and declared is not None and isinstance(declared.default_value, int):
            value = declared.default_value
        if not isinstance(value, int) or isinstance(value, bool):
            return DEFAULT_PAGE_SIZE
        # Past the page cap the resolver refuses `first` itself, with a clearer message than a cost.
        return min(max(value, 0), MAX_PAGE_SIZE)

    def selection(self, selections: tuple[Selection, ...] | None, parent: GraphQLNamedType | None,
                  seen: frozenset[str] = frozenset()) -> int:
        if selections is None:
            return 0
        total = 0
        for node in selections:
            if isinstance(node, Field):
                total += self.field(node, parent, seen)
            elif isinstance(node, Inline):
                condition = self._type(node.type_condition) if node.type_condition else parent
                total += self.selection(node.selections, condition, seen)
            else:
                total += self.spread(node.name, seen)
        return total

    def spread(self, name: str, seen: frozenset[str]) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in seen:  # a cycle is a validation error, not a cost
            return 0
        cost = self.spread_costs.get(name)
        if cost is None:
            condition, selections = fragment
            cost = self.spread_costs[name] = self.selection(selections, self._type(condition), seen | {name})
        return cost

    def field(self, node: Field, parent: GraphQLNamedType | None, seen: frozenset[str]) -> int:
        definition = None
        if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            definition = parent.fields.get(node.name)
        child = get_named_type(definition.type) if definition is not None else None
        inner = self.selection(node.selections, child, seen)
        first = self._first(node, definition)
        return 1 + (inner if first is None else first * inner)

    def operation(self, op: OperationShape) -> int:
        root_attr = _ROOTS.get(op.kind, "query_type")
        root = getattr(self.schema, root_attr) if self.schema is not None else None
        return self.selection(op.selections, root)


def operation_cost(schema: GraphQLSchema | None, operation: Operation) -> int:
    """The cost of the operation that would run (the most costly one when the name does not pick one)."""
    document = shape(operation.query)
    if document is None:
        return 0
    costing = _Costing(schema, document, operation.variables)
    ops = list(document.operations)
    if operation.operation_name is not None:
        ops = [d for d in ops if d.name == operation.operation_name]
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
