"""Carers' registrations and people's homes, read for the alert rules of clock events."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.model import Location
from carewatch.domain.visits import CarerRecord


async def carer_records(conn: AsyncConnection[Any], carer_ids: Collection[str]) -> dict[str, CarerRecord]:
    cur = await conn.execute(
        "SELECT carer_id, provider_id, competencies FROM carers WHERE carer_id = ANY(%s)", (sorted(carer_ids),))
    return {c: CarerRecord(p, tuple(comps or ())) for c, p, comps in await cur.fetchall()}


async def homes(conn: AsyncConnection[Any], package_ids: Collection[str]) -> dict[str, Location]:
    """Where each package's person lives, where known."""
    cur = await conn.execute(
        "SELECT package_id, person_lat, person_lon FROM packages WHERE package_id = ANY(%s)"
        " AND person_lat IS NOT NULL AND person_lon IS NOT NULL", (sorted(package_ids),))
    return {p: Location(lat, lon) for p, lat, lon in await cur.fetchall()}
