"""Alert thresholds (DOMAIN.md "Alerts"): global defaults, overridable per commissioner and per package."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """The defaults of DOMAIN.md's alert table; minutes, percent, metres or counts as named."""

    late_start_minutes: float = 15
    missed_visit_minutes: float = 60
    partial_attendance_minutes: float = 15
    lone_worker_overdue_minutes: float = 30
    short_visit_percent: float = 75
    overrun_minutes: float = 30
    location_metres: float = 250
    under_delivery_percent: float = 90
    over_delivery_percent: float = 110
    provider_pattern_percent: float = 5
    provider_pattern_min_due: float = 20
    active_days_for_delivery: float = 7


DEFAULT_THRESHOLDS = Thresholds()
THRESHOLD_NAMES: frozenset[str] = frozenset(f.name for f in fields(Thresholds))


def usable_override(value: Any) -> float | None:
    """A finite, non-negative number, else None: a bad override must not switch an alert off."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0:
        return None
    return number


def apply_overrides(base: Thresholds, overrides: Mapping[str, Any] | None) -> Thresholds:
    """`base` with the known, well-formed names of `overrides` replaced; unknown names are ignored."""
    if not overrides:
        return base
    changes: dict[str, float] = {}
    for name, value in overrides.items():
        number = usable_override(value)
        if name in THRESHOLD_NAMES and number is not None:
            changes[name] = number
    return replace(base, **changes) if changes else base


def resolve_thresholds(
    global_thresholds: Thresholds,
    commissioner_overrides: Mapping[str, Any] | None,
    package_overrides: Mapping[str, Any] | None,
) -> Thresholds:
    """Package overrides win over the commissioner's, which win over the global settings."""
    return apply_overrides(apply_overrides(global_thresholds, commissioner_overrides), package_overrides)
