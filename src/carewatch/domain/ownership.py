"""Ownership (DOMAIN.md "Ownership and plausible input"): who may write which care.

A package belongs to the provider of its latest approval; a shift to the package and provider of
its first announcement by event time (occurred_at, then event id), for good. Shifts, attendance,
activities and invoices naming another provider than the package's, or another package or
provider than the shift's, are refused. Since announcements from two packages travel on two
partitions, the first may arrive second: it then takes the shift over (`Takeover`), and what the
other owner had written on the shift is withdrawn, so the outcome never depends on arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SHIFT_EVENTS = frozenset({"shift.scheduled", "shift.updated"})
ON_A_SHIFT = frozenset({"shift.cancelled", "visit.clock_in", "visit.clock_out", "visit.corrected"})


@dataclass(frozen=True)
class PackageOwner:
    provider_id: str
    approved_at: datetime


@dataclass(frozen=True)
class ShiftOwner:
    package_id: str
    provider_id: str
    announced_at: datetime | None = None  # the first announcement's occurred_at (None: unknown, never beaten)
    announced_by: str = ""  # and its event id, which breaks a tie

    def owns(self, package_id: Any, provider_id: Any) -> bool:
        return (self.package_id, self.provider_id) == (package_id, provider_id)


@dataclass(frozen=True)
class Takeover:
    """An earlier announcement from another package arrived after the shift's first owner's."""

    shift_id: str
    previous: ShiftOwner
    owner: ShiftOwner

    @property
    def reason(self) -> str:
        """Why the previous owner's events on the shift are withdrawn (a `scope` rejection)."""
        return (f"shift {self.shift_id!r} was first announced for package {self.owner.package_id!r} of "
                f"provider {self.owner.provider_id!r} (at {self.owner.announced_at}); this event names "
                f"package {self.previous.package_id!r} of provider {self.previous.provider_id!r}")


@dataclass
class Owners:
    """What is known of packages and shifts; `judge` adds what each accepted event establishes."""

    packages: dict[str, PackageOwner] = field(default_factory=dict)
    shifts: dict[str, ShiftOwner] = field(default_factory=dict)
    takeovers: list[Takeover] = field(default_factory=list)

    def judge(self, kind: str, payload: Mapping[str, Any], occurred_at: datetime,
              event_id: str = "") -> str | None:
        """Why this event may not be applied (its scope problem), or None; learns from accepted ones."""
        if kind == "package.approved":
            known = self.packages.get(payload["package_id"])
            if known is None or known.approved_at < occurred_at:
                self.packages[payload["package_id"]] = PackageOwner(payload["provider_id"], occurred_at)
            return None
        package_id, provider_id = payload.get("package_id"), payload.get("provider_id")
        if kind == "activity.logged" and package_id is None:
            return None
        problem = self._package_problem(package_id, provider_id)
        if problem is not None:
            return problem
        shift_id = payload.get("shift_id")
        if kind in SHIFT_EVENTS or kind in ON_A_SHIFT:
            assert isinstance(shift_id, str)  # the schema requires it for these types
            owner = self.shifts.get(shift_id)
            announcing = ShiftOwner(str(package_id), str(provider_id), occurred_at, event_id)
            if owner is None:
                if kind in SHIFT_EVENTS:  # the first announcement makes the owner
                    self.shifts[shift_id] = announcing
                return None
            earlier = kind in SHIFT_EVENTS and _before(announcing, owner)
            if owner.owns(package_id, provider_id):
                if earlier:  # the same owner's earlier announcement: it is now the first
                    self.shifts[shift_id] = announcing
                return None
            if earlier:
                self.shifts[shift_id] = announcing
                self.takeovers.append(Takeover(shift_id, owner, announcing))
                return None
            return (f"shift {shift_id!r} belongs to package {owner.package_id!r} of provider "
                    f"{owner.provider_id!r}; this event names package {package_id!r} of provider "
                    f"{provider_id!r}")
        return None

    def _package_problem(self, package_id: Any, provider_id: Any) -> str | None:
        owner = self.packages.get(package_id) if isinstance(package_id, str) else None
        if owner is None or owner.provider_id == provider_id:
            return None  # an unknown package is a reference to wait for, not a scope problem
        return (f"provider_id: {provider_id!r} is not the provider of package {package_id!r} "
                f"({owner.provider_id!r})")


def _before(a: ShiftOwner, b: ShiftOwner) -> bool:
    """Whether announcement `a` came before `b` by event time (occurred_at, then event id)."""
    if a.announced_at is None or b.announced_at is None:
        return False
    return (a.announced_at, a.announced_by) < (b.announced_at, b.announced_by)


def named_packages(events: Iterable[tuple[str, Mapping[str, Any]]]) -> set[str]:
    return {p["package_id"] for _, p in events if isinstance(p.get("package_id"), str)}


def named_shifts(events: Iterable[tuple[str, Mapping[str, Any]]]) -> set[str]:
    return {p["shift_id"] for kind, p in events
            if (kind in SHIFT_EVENTS or kind in ON_A_SHIFT) and isinstance(p.get("shift_id"), str)}
