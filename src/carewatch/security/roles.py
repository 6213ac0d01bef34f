"""Roles and scopes of API callers (contracts/GRAPHQL.md): pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Reach = Literal["everything", "nothing", "commissioner", "provider"]


class Role(StrEnum):
    ADMIN = "admin"
    COMMISSIONER = "commissioner"
    SAFEGUARDING = "safeguarding"
    PROVIDER = "provider"
    INGEST = "ingest"


# What each role's scope names; admin alone has none.
SCOPE_KIND: dict[Role, str | None] = {
    Role.ADMIN: None,
    Role.COMMISSIONER: "commissioner id",
    Role.SAFEGUARDING: "commissioner id",
    Role.PROVIDER: "provider id",
    Role.INGEST: "provider id",
}

_SCOPE_MAX_LENGTH = 128  # the contract's id limit


class TokenSpecError(ValueError):
    """A role/scope combination that no token may have; the message says what would be right."""


@dataclass(frozen=True)
class Viewer:
    """The caller behind a request: a role, its scope (None for admin), and the token it used."""

    role: Role
    scope: str | None
    token_id: int | None = None
    name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def may_read(self) -> bool:
        """Ingest tokens may only post events; every other role may query."""
        return self.role is not Role.INGEST

    @property
    def may_post_events(self) -> bool:
        return self.role in (Role.ADMIN, Role.INGEST)

    @property
    def commissioner_id(self) -> str | None:
        return self.scope if self.role in (Role.COMMISSIONER, Role.SAFEGUARDING) else None

    @property
    def provider_id(self) -> str | None:
        return self.scope if self.role in (Role.PROVIDER, Role.INGEST) else None

    @property
    def reach(self) -> tuple[Reach, str | None]:
        """The one read-scope rule (GRAPHQL.md): what this viewer may read, as (kind, id). Everything
        for admin; nothing for ingest; else the rows that involve its commissioner or its provider.
        store/scope.py writes it as SQL; may_see applies it to a record in hand (an alert on the bus)."""
        if self.is_admin:
            return "everything", None
        if not self.may_read:
            return "nothing", None
        if self.commissioner_id is not None:
            return "commissioner", self.commissioner_id
        if self.provider_id is not None:
            return "provider", self.provider_id
        return "nothing", None

    def may_see(self, commissioner_ids: Collection[str | None], provider_ids: Collection[str | None]) -> bool:
        """Whether a record involving these commissioners and providers exists for this viewer."""
        kind, party = self.reach
        if kind == "everything":
            return True
        if kind == "commissioner":
            return party in commissioner_ids
        if kind == "provider":
            return party in provider_ids
        return False


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise TokenSpecError(f"unknown role {text!r}: expected one of {known}") from None


def checked_role_scope(role: str, scope: str | None) -> tuple[Role, str | None]:
    """The role and scope if a token may have them, else TokenSpecError saying why."""
    parsed = parse_role(role)
    scope = scope.strip() if scope is not None else None
    kind = SCOPE_KIND[parsed]
    if kind is None:
        if scope:
            raise TokenSpecError("an admin token sees everything and takes no --scope")
        return parsed, None
    if not scope:
        raise TokenSpecError(f"a {parsed.value} token needs --scope <{kind}>")
    if len(scope) > _SCOPE_MAX_LENGTH or any(c.isspace() or not c.isprintable() for c in scope):
        raise TokenSpecError(
            f"--scope must be a {kind}: printable, no spaces, at most {_SCOPE_MAX_LENGTH} characters")
    return parsed, scope
