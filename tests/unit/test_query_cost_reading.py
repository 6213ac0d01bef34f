"""The cost limit's quick reading of a document (security/query_cost.py) gives exactly the shape graphql-core's
parse gives, or leaves the document to graphql-core; and costing a document is linear in its size.

The quick reading lets a request over the limit be refused without graphql-core building a node per token
(7 ms of CPU for the issue's 15-alias request). It must never read a document differently: the shapes are
compared over generated documents and over random damage done to them.
"""

from __future__ import annotations

import time

import pytest
from graphql import GraphQLError, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carewatch.graphql.schema import schema
from carewatch.load.queries import ONE_PACKAGE, PACKAGES_PAGE, SHIFTS_PAGE, aliased_packages
from carewatch.security import query_cost
from carewatch.security.limits import MAX_QUERY_TOKENS
from carewatch.security.query_cost import Operation, operation_cost, quick_shape, shape_of


def _graphql_core(query: str) -> query_cost.Shape | None:
    try:
        return shape_of(parse(query, max_tokens=MAX_QUERY_TOKENS))
    except GraphQLError:
        return None


HAND_PICKED = [
    PACKAGES_PAGE,
    SHIFTS_PAGE,
    ONE_PACKAGE,
    aliased_packages(),
    "{ a }",
    "{}",
    "{ a {} }",
    "# a comment\n{ a, b, }",
    "subscription S { alerts { id } }",
    'query Q($n: Int = 3 @d(x: [1, {y: "}"}]), $m: [ID!]!) @d { p: packages(first: $n) { ...F } }'
    " fragment F on CarePackageConnection @x"
    " { edges { node { ... on CarePackage @skip(if: true) { id } ... { id } } } }",
    '{ a(first: 1.5) b(first: "x") c(first: null) d(first: ENUM) e(first: -0) f(first: true) g(first: [1]) }',
    '{ f(x: """a \\""" b { """, first: 2, first: 3) { g(first: $v) } }',
    '{ f(x: "esc \\" \\\\ \\/ \\b \\u00e9 \\n é") }',
    "fragment A on X { a } fragment A on Y { b } { ...A }",  # the last of a name wins, as a dict keeps it
    "query { a } mutation M { b } subscription { c }",
    "{ on: a(on: on) { on } ... on on { on } }",
]

NOT_QUICK = [
    '"described" query { a }',  # descriptions: graphql-core's
    "type T { a: Int }",  # type system definitions
    '{ a(x: "\\u{1F600}") }',  # variable-width escapes
    '{ a(x: "\\uD83D\\uDE00") }',  # surrogate pairs
    "{ a(x: 01) }",  # not numbers graphql-core accepts
    "{ a(x: 1.) }",
    "{ a(x: 1a) }",
    "{ a(x: $v) }  query($v: Int = $w) { a }",  # a variable in a constant
    "{ a ",
    "",
    "{ a(x: " + "[" * 100 + "]" * 100 + ") }",  # deeper than the quick reading goes
    "{ a } ?",
    "fragment on on X { a }",
    "{ a() }",
    "query($v: Int) { a(x: $v",
]


@pytest.mark.parametrize("query", HAND_PICKED)
def test_hand_picked_documents_read_alike(query: str) -> None:
    quick = quick_shape(query)
    assert quick is not None, "the quick reading should read this"
    assert quick == _graphql_core(query)


@pytest.mark.parametrize("query", NOT_QUICK)
def test_what_the_quick_reading_leaves_to_graphql_core(query: str) -> None:
    assert quick_shape(query) is None
    # and the shape then is graphql-core's (None when it does not parse)
    query_cost.shape.cache_clear()
    assert query_cost.shape(query) == _graphql_core(query)


def test_the_token_limit_counts_comments_as_graphql_core_does() -> None:
    fields = MAX_QUERY_TOKENS - 2 - 10  # the braces, and ten comment lines
    at_limit = "{ " + " ".join(f"f{i}" for i in range(fields)) + " }" + "\n# c" * 10
    assert quick_shape(at_limit) is not None and quick_shape(at_limit) == _graphql_core(at_limit)
    over = at_limit + "\n# one more"
    assert quick_shape(over) is None and _graphql_core(over) is None


# -- generated documents ------------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "first", "on", "query", "packages", "edges", "node", "id", "_x9", "fragment"])
SPACE = st.sampled_from([" ", "  ", "\n", ",", " , ", "\t", " # note {\n", "\ufeff"])


def _value(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.integers(-1000, 100_000).map(str),
        st.sampled_from(
            [
                "1.5",
                "-0.25e3",
                "2E7",
                "true",
                "false",
                "null",
                "ENUM_X",
                '"s { ( ) }"',
                '""',
                '"\\u00e9\\n"',
                '"""block { """',
                "$v",
                "$first",
            ]
        ),
    )
    if depth <= 0:
        return leaves
    inner = _value(depth - 1)
    return st.one_of(
        leaves,
        st.lists(inner, max_size=3).map(lambda xs: "[" + " ".join(xs) + "]"),
        st.lists(st.tuples(NAMES, inner), max_size=3).map(lambda kv: "{" + " ".join(f"{k}: {v}" for k, v in kv) + "}"),
    )


ARGUMENTS = st.lists(st.tuples(NAMES, _value(2)), min_size=1, max_size=3).map(
    lambda kv: "(" + ", ".join(f"{k}: {v}" for k, v in kv) + ")"
)
DIRECTIVES = st.lists(st.tuples(NAMES, st.none() | ARGUMENTS), max_size=2).map(
    lambda ds: "".join(f" @{n}{a or ''}" for n, a in ds)
)


def _selection_set(depth: int) -> st.SearchStrategy[str]:
    field = st.tuples(
        st.none() | NAMES,
        NAMES,
        st.none() | ARGUMENTS,
        DIRECTIVES,
        st.none() | (_selection_set(depth - 1) if depth > 0 else st.none()),
    ).map(lambda t: (f"{t[0]}: " if t[0] else "") + t[1] + (t[2] or "") + t[3] + (" " + t[4] if t[4] else ""))
    spread = st.tuples(st.sampled_from(["F", "G", "H"]), DIRECTIVES).map(lambda t: f"...{t[0]}{t[1]}")
    options = [field, spread]
    if depth > 0:
        options.append(
            st.tuples(st.none() | NAMES, DIRECTIVES, _selection_set(depth - 1)).map(
                lambda t: "..." + (f" on {t[0]}" if t[0] else "") + t[1] + " " + t[2]
            )
        )
    return st.lists(st.tuples(st.one_of(*options), SPACE), max_size=4).map(
        lambda items: "{" + "".join(f" {s}{sp}" for s, sp in items) + "}"
    )


VARIABLES = st.lists(
    st.tuples(
        NAMES,
        st.sampled_from(["Int", "[ID!]!", "String", "[[Int]]"]),
        st.none() | _value(1).filter(lambda v: "$" not in v),
    ),
    min_size=1,
    max_size=3,
).map(lambda vs: "(" + " ".join(f"${n}: {t}" + (f" = {d}" if d else "") for n, t, d in vs) + ")")
OPERATION = st.one_of(
    _selection_set(3),
    st.tuples(
        st.sampled_from(["query", "mutation", "subscription"]),
        st.none() | NAMES,
        st.none() | VARIABLES,
        DIRECTIVES,
        _selection_set(3),
    ).map(lambda t: t[0] + (f" {t[1]}" if t[1] else "") + (t[2] or "") + t[3] + " " + t[4]),
)
FRAGMENT = st.tuples(st.sampled_from(["F", "G", "H"]), NAMES, DIRECTIVES, _selection_set(2)).map(
    lambda t: f"fragment {t[0]} on {t[1]}{t[2]} {t[3]}"
)
DOCUMENTS = st.lists(st.one_of(OPERATION, FRAGMENT), min_size=1, max_size=3).map(" ".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_generated_documents_read_alike(query: str) -> None:
    reference = _graphql_core(query)
    quick = quick_shape(query)
    if quick is not None:
        assert quick == reference
    elif reference is not None:  # well formed: only the deep ones are left to graphql-core
        assert "\ufeff" in query or query.count("[") + query.count("{") > 30, query


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    DOCUMENTS,
    st.lists(
        st.tuples(
            st.integers(0, 10_000), st.integers(0, 3), st.sampled_from(list('{}()[]:$@!."#\\=,\n a1-_é\x01\ud800'))
        ),
        max_size=4,
    ),
)
def test_damaged_documents_are_never_read_differently(query: str, edits: list[tuple[int, int, str]]) -> None:
    for at, op, char in edits:
        i = at % (len(query) + 1)
        query = (
            query[:i] + char + query[i:]
            if op == 0
            else query[:i] + query[i + 1 :]
            if op == 1
            else query[:i] + char + query[i + 1 :]
            if op == 2
            else query[:i] + query[i : i + 5] + query[i:]
        )
    quick = quick_shape(query)
    if quick is not None:
        assert quick == _graphql_core(query), query


def test_fragments_spreading_fragments_cost_once_each() -> None:
    """Thirty fragments, each spreading the next twice: 2^30 walks before; one walk of each now."""
    n = 30
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    query = "{ ...F0 } " + fragments + f" fragment F{n} on Query {{ me {{ role }} }}"
    started = time.process_time()
    assert operation_cost(schema._schema, Operation(query, {})) == 2**n * 2
    assert time.process_time() - started < 1.0


def test_the_15_alias_request_is_read_quickly() -> None:
    assert quick_shape(aliased_packages()) is not None
