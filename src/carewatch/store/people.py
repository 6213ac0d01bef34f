"""Carers' registrations and people's homes, read for the alert rules of clock events."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.model import Location
from carewatch.domain.visits import CarerRecord

# The first key of the carers' transaction-scoped advisory locks (the second is the carer id's hash).
CARER_LOCKS = 0x43570001
_LOCK_CARERS = """
SELECT pg_advisory_xact_lock(%s::integer, hashtext(c)) FROM unnest(%s::text[]) WITH ORDINALITY AS u(c, n) ORDER BY n"""


async def lock_carers(conn: AsyncConnection[Any], carer_ids: Collection[str]) -> None:
    """Hold these carers' advisory locks until the transaction ends, taken in carer id order (so two
    batches naming the same carers never wait on each other in a circle)."""
    if carer_ids:
        await conn.execute(_LOCK_CARERS, (CARER_LOCKS, sorted(carer_ids)))


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
