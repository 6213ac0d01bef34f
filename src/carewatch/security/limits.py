"""Limits that keep hostile GraphQL and oversized requests from costing the service anything.

The GraphQL ones are strawberry schema extensions (validation rules run before any resolver);
the request-size and batch ones are enforced by `gate.AccessGate` before the body is parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)
from strawberry.schema.config import BatchingConfig

MAX_QUERY_DEPTH = 10
MAX_QUERY_TOKENS = 2_000
MAX_ALIASES = 15
MAX_BATCH_OPERATIONS = 10
MAX_BODY_BYTES = 1024 * 1024  # 1 MiB, for /graphql and POST /events alike
MAX_PAGE_SIZE = 500  # `first` is capped by the read models (contracts/GRAPHQL.md)
DEFAULT_PAGE_SIZE = 50  # `first` when a connection is asked without one (contracts/GRAPHQL.md)

MASKED_ERROR_MESSAGE = "Internal error; it has been logged."

BATCHING: BatchingConfig = {"max_operations": MAX_BATCH_OPERATIONS}

# Parsed and validated documents kept per process: portals send the same few operations all day.
DOCUMENT_CACHE_SIZE = 256

# The depth and alias rules are made once, not per request as strawberry's QueryDepthLimiter and
# MaxAliasesLimiter make them: the same rule classes let the validation cache recognise a document.
_LIMIT_RULES: list[type[ASTValidationRule]] = [query_depth_limiter.create_validator(MAX_QUERY_DEPTH, None),
                max_aliases.create_validator(MAX_ALIASES)]


class RefusedInput(Exception):
    """Raised by resolvers for bad caller input; its message is safe to show even in production."""

    client_mistake = True  # read by logs.ClientMistakes, which imports nothing of security/


def should_mask_error(error: GraphQLError) -> bool:
    """Mask errors that came from an unexpected exception (a bug, SQL, a stack), not deliberate refusals.

    Validation and syntax errors (depth, tokens, aliases, unknown fields) have no original
    error; resolvers refuse input with a GraphQLError or RefusedInput. Anything else could
    carry SQL or internals, so production shows a fixed message instead.
    """
    original = error.original_error
    if original is None:
        return False
    return not isinstance(original, (GraphQLError, RefusedInput))


def graphql_extensions(
    production: bool, mask: Callable[[GraphQLError], bool] = should_mask_error
) -> list[Callable[[], SchemaExtension]]:
    """Factories of the schema extensions every Carewatch schema runs with (one instance per request).

    `mask` decides which errors production hides; the GraphQL layer may pass its own rule.
    """
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(MaxTokensLimiter, max_token_count=MAX_QUERY_TOKENS),
        partial(AddValidationRules, _LIMIT_RULES),
    ]
    if production:
        extensions += [
            DisableIntrospection,
            partial(MaskErrors, should_mask_error=mask, error_message=MASKED_ERROR_MESSAGE),
        ]
    # Last, so that they see the parse options and every validation rule the others add.
    extensions += [partial(ParserCache, maxsize=DOCUMENT_CACHE_SIZE),
                   partial(ValidationCache, maxsize=DOCUMENT_CACHE_SIZE)]
    return extensions
