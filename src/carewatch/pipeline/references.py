"""What an event needs to exist before it can be applied, and what it makes exist (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from carewatch.schema.events import CareEvent


class Pending(Protocol):
    @property
    def event(self) -> CareEvent: ...


P = TypeVar("P", bound=Pending)


def references(event: CareEvent) -> tuple[str, ...]:
    """What must exist before `event` can be applied, as `kind:id`."""
    p = event.payload
    match event.type:
        case "carer.registered":
            return (f"provider:{p['provider_id']}",)
        case "package.approved":
            return (f"commissioner:{p['commissioner_id']}", f"provider:{p['provider_id']}")
        case "shift.scheduled" | "shift.updated" | "invoice.submitted":
            return (f"package:{p['package_id']}",)
        case "shift.cancelled" | "visit.clock_in" | "visit.clock_out" | "visit.corrected":
            # A cancellation changes a shift row, so it waits for the shift itself.
            return (f"shift:{p['shift_id']}",)
        case "activity.logged" if isinstance(p.get("package_id"), str):
            # Its provider is checked against the package's (ownership), so it waits for the package.
            return (f"package:{p['package_id']}",)
    return ()


def provides(event: CareEvent) -> str | None:
    """The reference `event` creates once applied, if any."""
    p = event.payload
    match event.type:
        case "commissioner.registered":
            return f"commissioner:{p['commissioner_id']}"
        case "provider.registered":
            return f"provider:{p['provider_id']}"
        case "package.approved":
            return f"package:{p['package_id']}"
        case "shift.scheduled" | "shift.updated":
            return f"shift:{p['shift_id']}"
    return None


def resolve(pending: Sequence[P], available: set[str]) -> tuple[list[P], list[tuple[P, str]]]:
    """Split into events whose references are all available (counting what earlier ready events
    provide) and events still waiting, each with the first reference it lacks."""
    ready: list[P] = []
    remaining = list(pending)
    progress = True
    while progress and remaining:
        progress = False
        still: list[P] = []
        for item in remaining:
            if all(ref in available for ref in references(item.event)):
                ready.append(item)
                made = provides(item.event)
                if made is not None and made not in available:
                    available.add(made)
                    progress = True
            else:
                still.append(item)
        remaining = still
    waiting = [(item, next(r for r in references(item.event) if r not in available)) for item in remaining]
    return ready, waiting
