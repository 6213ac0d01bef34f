"""Reading who owns the packages and shifts a set of events names (domain/ownership.py judges)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.ownership import Owners, PackageOwner, ShiftOwner

_PACKAGES = "SELECT package_id, provider_id, approved_at FROM packages WHERE package_id = ANY(%s)"
_SHIFTS = "SELECT shift_id, package_id, provider_id, announced_at, announced_by FROM shifts WHERE shift_id = ANY(%s)"


async def load_owners(conn: AsyncConnection[Any], package_ids: Collection[str],
                      shift_ids: Collection[str]) -> Owners:
    owners = Owners()
    async with conn.cursor() as cur:
        if package_ids:
            await cur.execute(_PACKAGES, (sorted(package_ids),))
            for package_id, provider_id, approved_at in await cur.fetchall():
                owners.packages[package_id] = PackageOwner(provider_id, approved_at.astimezone(UTC))
        if shift_ids:
            await cur.execute(_SHIFTS, (sorted(shift_ids),))
            for shift_id, package_id, provider_id, announced_at, announced_by in await cur.fetchall():
                owners.shifts[shift_id] = ShiftOwner(package_id, provider_id,
                                                     announced_at.astimezone(UTC) if announced_at else None,
                                                     announced_by)
    return owners


_SHIFT_EVENT_TYPES = ["shift.scheduled", "shift.updated", "shift.cancelled", "visit.clock_in", "visit.clock_out",
                      "visit.corrected"]
# The events stored for a shift all name its owner's package, which is their key.
_WITHDRAW = """
DELETE FROM events WHERE type = ANY(%(types)s) AND key = %(package)s AND payload ->> 'shift_id' = %(shift)s
RETURNING event_id, type, payload::text"""
_FORGET_SHIFT = (
    "DELETE FROM clock_events WHERE shift_id = %(shift)s",
    "DELETE FROM visit_corrections WHERE shift_id = %(shift)s",
    "DELETE FROM shift_ledger WHERE shift_id = %(shift)s",
    "DELETE FROM shifts WHERE shift_id = %(shift)s",
)
# Refused while the shift was another's: the shift's events refused for scope, to be judged again.
_REFUSED = """
DELETE FROM rejected_events
WHERE stage = 'scope' AND CASE WHEN stage = 'scope' AND raw LIKE '{%%'
                               THEN raw::jsonb ->> 'shift_id' END = %(shift)s
RETURNING raw"""


async def withdraw_shift(conn: AsyncConnection[Any], shift_id: str, package_id: str) -> list[tuple[str, str, str]]:
    """Take back everything written on a shift for the package that turned out not to own it: its
    events (returned as (event_id, type, payload text), to be rejected) and every fact derived from them."""
    params = {"types": _SHIFT_EVENT_TYPES, "package": package_id, "shift": shift_id}
    async with conn.cursor() as cur:
        await cur.execute(_WITHDRAW, params)
        withdrawn = [(str(i), str(t), str(p)) for i, t, p in await cur.fetchall()]
        for sql in _FORGET_SHIFT:
            await cur.execute(sql, params)
    return withdrawn


async def refused_on_shift(conn: AsyncConnection[Any], shift_id: str) -> list[str]:
    """Remove and return the raw text of the events refused for scope on this shift."""
    async with conn.cursor() as cur:
        await cur.execute(_REFUSED, {"shift": shift_id})
        return [str(r[0]) for r in await cur.fetchall()]
