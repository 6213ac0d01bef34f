"""What an operation selects under a root field, so a page loads only the figures it is asked for."""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from carewatch.graphql.context import Info


def _names(selections: Iterable[Selection], into: set[str]) -> set[str]:
    for s in selections:
        if isinstance(s, SelectedField):
            into.add(s.name)
        if isinstance(s, (SelectedField, FragmentSpread, InlineFragment)):
            _names(s.selections, into)
    return into


def selected_names(info: Info) -> set[str]:
    """Every field name selected anywhere under the field being resolved (as written: camelCase)."""
    return _names(info.selected_fields, set())
