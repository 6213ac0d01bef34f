"""The SQL condition that limits every read to what the viewer may see (GRAPHQL.md)."""

from __future__ import annotations

from psycopg import sql

from carewatch.security.roles import Role, Viewer

__all__ = ["ADMIN", "Role", "Viewer", "scope_condition"]

ADMIN = Viewer(Role.ADMIN, None)


def scope_condition(
    viewer: Viewer, commissioner_col: str, provider_col: str, *, arrays: bool = False
) -> tuple[sql.Composable, list[str]]:
    """A WHERE condition (and its parameters) keeping only rows this viewer may read: Viewer.reach,
    the same rule Viewer.may_see applies in Python. With `arrays`, the columns hold every commissioner
    and provider involved (text[], as alerts do) rather than one.

    Columns are `alias.column` names written in the caller's SQL, never taken from input.
    What the role may not read gives FALSE, so it is simply absent, never an error.
    """
    kind, party = viewer.reach
    if kind == "everything":
        return sql.SQL("TRUE"), []
    if party is None or kind == "nothing":
        return sql.SQL("FALSE"), []  # ingest tokens only post events
    column = _column(commissioner_col if kind == "commissioner" else provider_col)
    if arrays:
        return sql.SQL("{} @> ARRAY[%s]::text[]").format(column), [party]
    return sql.SQL("{} = %s").format(column), [party]


def _column(name: str) -> sql.Composable:
    return sql.Identifier(*name.split("."))
