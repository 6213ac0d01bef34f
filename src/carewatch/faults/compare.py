"""What a fault run leaves behind, read the same way after each run, and the comparison of two runs.

Rows are compared without their processing-time columns (updated_at, received_at, raised_at...) and
without generated ids; alerts as a multiset of (kind, subject, status, severity).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Table = dict[str, Any]  # one comparison's rows by key (a multiset is key -> count)


@dataclass(frozen=True)
class Snapshot:
    """Everything compared between runs, by comparison name."""

    tables: Mapping[str, Table]

    def to_json(self) -> str:
        return json.dumps(self.tables, sort_keys=True, indent=1, default=str)


@dataclass(frozen=True)
class Comparison:
    name: str
    equal: int
    total: int
    differences: tuple[str, ...] = field(default=())  # the first few, described
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.equal == self.total

    def line(self) -> str:
        mark = "ok  " if self.ok else "DIFF"
        note = f"  ({self.note})" if self.note else ""
        return f"{mark} {self.name:<34} {self.equal:>6} of {self.total:<6} equal{note}"


def _short(value: Any, width: int = 240) -> str:
    text = "(absent)" if value is None else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _field_diff(a: Any, b: Any) -> str:
    """For two dicts, only the fields that differ; else both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        return "; ".join(f"{k}: {_short(a.get(k), 100)} -> {_short(b.get(k), 100)}" for k in keys)
    return f"{_short(a)} -> {_short(b)}"


def compare_tables(name: str, first: Table, second: Table, show: int = 5,
                   note: Callable[[Table, Table], str] | None = None) -> Comparison:
    """K of N keys whose values are equal, N being the keys of either run."""
    keys = sorted(set(first) | set(second))
    differing = [k for k in keys if first.get(k) != second.get(k)]
    shown = tuple(f"{k}: {_field_diff(first.get(k), second.get(k))}" for k in differing[:show])
    return Comparison(name, len(keys) - len(differing), len(keys), shown, note(first, second) if note else "")


def kind_counts(alerts: Table) -> Counter[str]:
    """Alerts of each kind (any status) in a multiset keyed `kind|subject|status|severity`."""
    counts: Counter[str] = Counter()
    for key, n in alerts.items():
        counts[key.split("|", 1)[0]] += int(n)
    return counts


def alert_note(first: Table, second: Table) -> str:
    a, b = kind_counts(first), kind_counts(second)
    different = [k for k in sorted(set(a) | set(b)) if a[k] != b[k]]
    return "; ".join(f"{k} {a[k]} vs {b[k]}" for k in different)


def compare(first: Snapshot, second: Snapshot) -> list[Comparison]:
    return [compare_tables(name, first.tables.get(name, {}), second.tables.get(name, {}),
                           note=alert_note if name == "alerts (multiset)" else None)
            for name in sorted(set(first.tables) | set(second.tables))]


def alert_table(first: Table, second: Table) -> str:
    """Alerts of each kind in each run, DOUBLE_BOOKED_CARER and the absence kinds among them."""
    a, b = kind_counts(first), kind_counts(second)
    lines = [f"    {'kind':<22}{'run 1':>7}{'run 2':>7}"]
    for kind in sorted(set(a) | set(b)):
        lines.append(f"    {kind:<22}{a[kind]:>7}{b[kind]:>7}{'' if a[kind] == b[kind] else '   <-'}")
    return "\n".join(lines)
