"""Reading who owns the packages and shifts a set of events names (domain/ownership.py judges)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.ownership import Owners, PackageOwner, ShiftOwner

_PACKAGES = "SELECT package_id, provider_id, approved_at FROM packages WHERE package_id = ANY(%s)"
_SHIFTS = "SELECT shift_id, package_id, provider_id FROM shifts WHERE shift_id = ANY(%s)"


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
            for shift_id, package_id, provider_id in await cur.fetchall():
                owners.shifts[shift_id] = ShiftOwner(package_id, provider_id)
    return owners
