"""`carewatch thresholds`: a commissioner's overrides of the global alert thresholds.

Writes the commissioner_thresholds table the sweeps and the worker read (package overrides, set
on the package itself, still win). Names are those of domain/thresholds.py; values must be
finite, non-negative numbers, checked here so that a typo is refused rather than silently ignored.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from carewatch.alerts.data_version import announce_now
from carewatch.domain.thresholds import THRESHOLD_NAMES
from carewatch.settings import Settings


class ThresholdError(ValueError):
    """An assignment that is not `name=number` with a known name and a usable number."""


def parse_assignments(pairs: Sequence[str]) -> dict[str, float]:
    """`["late_start_minutes=20", ...]` -> {"late_start_minutes": 20.0}; raises ThresholdError."""
    found: dict[str, float] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ThresholdError(f"{pair!r}: expected name=value, e.g. late_start_minutes=20")
        if name not in THRESHOLD_NAMES:
            raise ThresholdError(f"{name!r} is not a threshold; known: {', '.join(sorted(THRESHOLD_NAMES))}")
        try:
            value = float(raw)
        except ValueError as exc:
            raise ThresholdError(f"{name}: {raw!r} is not a number") from exc
        if not math.isfinite(value) or value < 0:
            raise ThresholdError(f"{name}: {raw!r} must be a finite number, zero or more")
        found[name] = value
    return found


def set_thresholds(
    conn: psycopg.Connection[Any], commissioner_id: str, values: Mapping[str, float], clear: Sequence[str] = ()
) -> dict[str, Any]:
    """Merge `values` into the commissioner's overrides (removing `clear`); return the overrides now."""
    row = conn.execute(
        """INSERT INTO commissioner_thresholds (commissioner_id, thresholds, updated_at)
           VALUES (%(c)s, %(v)s, now())
           ON CONFLICT (commissioner_id) DO UPDATE
           SET thresholds = (commissioner_thresholds.thresholds - %(clear)s::text[]) || %(v)s, updated_at = now()
           RETURNING thresholds""",
        {"c": commissioner_id, "v": Jsonb(dict(values)), "clear": list(clear)},
    ).fetchone()
    assert row is not None  # INSERT .. ON CONFLICT DO UPDATE always returns the row
    return dict(row[0])


def show_thresholds(conn: psycopg.Connection[Any], commissioner_id: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT thresholds FROM commissioner_thresholds WHERE commissioner_id = %s", (commissioner_id,)
    ).fetchone()
    return dict(row[0]) if row else {}


def run_thresholds_command(settings: Settings, args: argparse.Namespace) -> int:
    from carewatch.services import check_postgres

    check_postgres(settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        if args.thresholds_command == "show":
            print(json.dumps(show_thresholds(conn, args.commissioner), sort_keys=True))
            return 0
        try:
            values = parse_assignments(args.assignments)
        except ThresholdError as exc:
            print(f"carewatch thresholds: {exc}", file=sys.stderr)
            return 2
        clear = list(args.clear or [])
        unknown = [name for name in clear if name not in THRESHOLD_NAMES]
        if unknown:
            print(f"carewatch thresholds: unknown threshold(s) to clear: {', '.join(unknown)}", file=sys.stderr)
            return 2
        if not values and not clear:
            print("carewatch thresholds: nothing to set: give name=value pairs or --clear NAME", file=sys.stderr)
            return 2
        known = conn.execute(
            "SELECT 1 FROM commissioners WHERE commissioner_id = %s", (args.commissioner,)
        ).fetchone()
        now = set_thresholds(conn, args.commissioner, values, clear)
        conn.commit()
    announce_now(settings, "thresholds")  # shift statuses read the thresholds: API caches are emptied
    if known is None:
        # Allowed: thresholds may be agreed before the commissioner's first event arrives.
        print(f"note: commissioner {args.commissioner} has not been registered yet", file=sys.stderr)
    print(json.dumps(now, sort_keys=True))
    return 0
