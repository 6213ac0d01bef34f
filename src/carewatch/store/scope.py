"""The SQL condition that limits every read to what the viewer may see (GRAPHQL.md)."""

from __future__ import annotations

from psycopg import sql

from carewatch.security.roles import Role, Viewer

__all__ = ["ADMIN", "Role", "Viewer", "scope_condition"]

ADMIN = Viewer(Role.ADMIN, None)


def scope_condition(
    viewer: Viewer, commissioner_col: str, provider_col: str
) -> tuple[sql.Composable, list[str]]:
    """A WHERE condition (and its parameters) keeping only rows this viewer may read.

    Columns are `alias.column` names written in the caller's SQL, never taken from input.
    What the role may not read gives FALSE, so it is simply absent, never an error.
    """
    if viewer.is_admin:
        return sql.SQL("TRUE"), []
    if not viewer.may_read:
        return sql.SQL("FALSE"), []  # ingest tokens only post events
    if viewer.commissioner_id is not None:
        return sql.SQL("{} = %s").format(_column(commissioner_col)), [viewer.commissioner_id]
    if viewer.provider_id is not None:
        return sql.SQL("{} = %s").format(_column(provider_col)), [viewer.provider_id]
    return sql.SQL("FALSE"), []


def _column(name: str) -> sql.Composable:
    return sql.Identifier(*name.split("."))
