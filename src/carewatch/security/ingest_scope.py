"""Which posted care events a token may send: an ingest token speaks only for its own provider."""

from __future__ import annotations

from collections.abc import Sequence

from carewatch.schema.events import CareEvent, Rejection
from carewatch.security.roles import Role, Viewer

# Events that are the commissioner's act, not the provider's: a provider's roster system
# must not approve its own package (and so set its own budget) or register a commissioner.
COMMISSIONER_EVENTS = frozenset({"commissioner.registered", "package.approved"})


def scope_problem(viewer: Viewer, event: CareEvent) -> str | None:
    """Why this token may not post this (already valid) event, or None if it may."""
    if viewer.role is Role.ADMIN:
        return None
    if viewer.role is not Role.INGEST:
        return f"a {viewer.role.value} token may not post events"
    if event.type in COMMISSIONER_EVENTS:
        return f"{event.type} is a commissioner's event; an ingest token for a provider may not post it"
    provider_id = event.payload.get("provider_id")
    if provider_id != viewer.scope:
        return f"provider_id: {provider_id!r} is not this token's provider {viewer.scope!r}"
    return None


def apply_scope(viewer: Viewer, items: Sequence[CareEvent | Rejection]) -> list[CareEvent | Rejection]:
    """The same items, in order, with each event outside the token's scope turned into a 'scope' rejection."""
    checked: list[CareEvent | Rejection] = []
    for item in items:
        if isinstance(item, CareEvent) and (problem := scope_problem(viewer, item)) is not None:
            checked.append(Rejection(problem, "scope", item.event_id, item.type, item.raw))
        else:
            checked.append(item)
    return checked
