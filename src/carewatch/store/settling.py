"""The `settling` table (migration 008): judgements waiting for facts from other partitions.

The worker writes what waits (`wait_for_registration`, `wait_for_pay`) and takes back what a
registration settles (`registration_arrived`); the scheduler reads what is due (`due`) and deletes
exactly the rows it read (`settle`), so a write that lands while it decides is judged on the next tick.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

UNKNOWN_CARER = "UNKNOWN_CARER"
PAY = "PAY_BELOW_MINIMUM"


@dataclass(frozen=True)
class Waiting:
    """One row of `settling` as the sweep read it."""

    kind: str
    carer_id: str
    shift_id: str
    provider_id: str
    changes: int


_WAIT = """
INSERT INTO settling (kind, carer_id, shift_id, provider_id, since)
SELECT %(kind)s, c, s, p, %(now)s
FROM unnest(%(carers)s::text[], %(shifts)s::text[], %(providers)s::text[]) AS u(c, s, p)
ORDER BY c, s
ON CONFLICT (kind, carer_id, shift_id) DO UPDATE SET changes = settling.changes + 1"""


async def _wait(conn: AsyncConnection[Any], kind: str, rows: Sequence[tuple[str, str, str]], now: datetime) -> None:
    if rows:
        ordered = sorted(set(rows))
        await conn.execute(_WAIT, {"kind": kind, "now": now, "carers": [c for c, _, _ in ordered],
                                   "shifts": [s for _, s, _ in ordered], "providers": [p for _, _, p in ordered]})


async def wait_for_registration(conn: AsyncConnection[Any], clock_ins: Collection[tuple[str, str, str]],
                                now: datetime) -> None:
    """(carer, shift, the shift's provider) of clock-ins by carers not registered with that provider."""
    await _wait(conn, UNKNOWN_CARER, list(clock_ins), now)


async def wait_for_pay(conn: AsyncConnection[Any], carer_ids: Collection[str], now: datetime) -> None:
    """Carers whose weeks (or pay rate) moved: their PAY_BELOW_MINIMUM is decided once settled."""
    await _wait(conn, PAY, [(c, "", "") for c in carer_ids], now)


_ARRIVED = """
DELETE FROM settling s USING unnest(%s::text[], %s::text[]) AS r(carer_id, provider_id)
WHERE s.kind = 'UNKNOWN_CARER' AND s.carer_id = r.carer_id AND s.provider_id = r.provider_id
RETURNING s.carer_id, s.shift_id, s.provider_id"""


async def registration_arrived(conn: AsyncConnection[Any], registered: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """Registrations (carer -> provider) take back the clock-ins of theirs waiting on that provider:
    returns them as (carer, shift, provider), to judge what the registration brings."""
    if not registered:
        return []
    carers = sorted(registered)
    cur = await conn.execute(_ARRIVED, (carers, [registered[c] for c in carers]))
    return sorted(await cur.fetchall())


async def due(conn: AsyncConnection[Any], kind: str, before: datetime, limit: int = 2000) -> list[Waiting]:
    """The rows of this kind waiting since before `before`, oldest first."""
    cur = await conn.execute(
        "SELECT kind, carer_id, shift_id, provider_id, changes FROM settling WHERE kind = %s AND since <= %s"
        " ORDER BY since, carer_id, shift_id LIMIT %s", (kind, before, limit))
    return [Waiting(*row) for row in await cur.fetchall()]


_SETTLE = """
DELETE FROM settling s USING unnest(%s::text[], %s::text[], %s::integer[]) AS r(carer_id, shift_id, changes)
WHERE s.kind = %s AND s.carer_id = r.carer_id AND s.shift_id = r.shift_id AND s.changes = r.changes
RETURNING s.carer_id, s.shift_id"""


async def settle(conn: AsyncConnection[Any], rows: Sequence[Waiting]) -> set[tuple[str, str]]:
    """Delete these rows (all of one kind, as `due` returns them) if nobody wrote to them since they were
    read; returns the (carer, shift) deleted."""
    if not rows:
        return set()
    cur = await conn.execute(_SETTLE, ([r.carer_id for r in rows], [r.shift_id for r in rows],
                                       [r.changes for r in rows], rows[0].kind))
    return {(c, s) for c, s in await cur.fetchall()}
