"""The raw events table: which events were seen, which references exist, and recording new ones."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from carewatch.schema.events import CareEvent
from carewatch.store.staging import stage_rows

_EXISTING_REFS = """
SELECT 'commissioner:' || commissioner_id FROM commissioners WHERE commissioner_id = ANY(%(commissioner)s)
UNION ALL SELECT 'provider:' || provider_id FROM providers WHERE provider_id = ANY(%(provider)s)
UNION ALL SELECT 'package:' || package_id FROM packages WHERE package_id = ANY(%(package)s)
UNION ALL SELECT 'shift:' || shift_id FROM shifts WHERE shift_id = ANY(%(shift)s)"""

# Bounded by the batch's event times as well as by id: a repeat carries its original occurred_at,
# and on TimescaleDB the bound spares decompressing every chunk of the events hypertable.
# Bounded by the batch's event times as well as by id: a repeat carries its original occurred_at,
# and on TimescaleDB the bound spares decompressing every chunk of the events hypertable.
_SEEN = """
SELECT event_id FROM events
WHERE event_id = ANY(%(ids)s) AND occurred_at BETWEEN %(earliest)s AND %(latest)s
UNION SELECT event_id FROM held_events WHERE event_id = ANY(%(ids)s)"""

# The raw events are staged by COPY (store/staging.py) and inserted from there in one statement:
# COPY sends the text as is, where an array parameter escapes every character of every payload.
_EVENT_COLUMNS = ("event_id", "occurred_at", "type", "key", "payload", "received_at")
_RECORD = """
INSERT INTO events (event_id, occurred_at, type, key, payload, received_at)
SELECT event_id, occurred_at, type, key, payload, received_at FROM staged_events
ON CONFLICT DO NOTHING
RETURNING event_id"""

_SHIFTS_OF = """
SELECT shift_id FROM shifts
WHERE package_id = ANY(%(packages)s)
   OR package_id IN (SELECT package_id FROM packages WHERE commissioner_id = ANY(%(commissioners)s))"""



async def existing_references(conn: AsyncConnection[Any], refs: Collection[str]) -> set[str]:
    """Which of these `kind:id` references (commissioner, provider, package, shift) are stored."""
    wanted: dict[str, list[str]] = {"commissioner": [], "provider": [], "package": [], "shift": []}
    for ref in refs:
        kind, _, ident = ref.partition(":")
        wanted[kind].append(ident)
    if not any(wanted.values()):
        return set()
    async with conn.cursor() as cur:
        await cur.execute(_EXISTING_REFS, wanted)
        return {str(r[0]) for r in await cur.fetchall()}


async def seen_event_ids(conn: AsyncConnection[Any], events: Sequence[CareEvent]) -> set[str]:
    """The ids of these events already stored (applied or held): repeats that change nothing."""
    if not events:
        return set()
    times = [e.occurred_at for e in events]
    async with conn.cursor() as cur:
        await cur.execute(_SEEN, {"ids": [e.event_id for e in events], "earliest": min(times),
                                  "latest": max(times)})
        return {str(r[0]) for r in await cur.fetchall()}


async def record_events(conn: AsyncConnection[Any], events: Sequence[CareEvent], now: datetime) -> set[str]:
    """Insert the raw events; return the ids that were new (a concurrent writer may have won)."""
    if not events:
        return set()
    async with conn.cursor() as cur:
        await stage_rows(cur, "staged_events", "events", _EVENT_COLUMNS,
                         ((e.event_id, e.occurred_at, e.type, e.key, e.raw, now) for e in events))
        await cur.execute(_RECORD)
        return {str(r[0]) for r in await cur.fetchall()}


async def shifts_of(conn: AsyncConnection[Any], package_ids: Collection[str],
                    commissioner_ids: Collection[str]) -> set[str]:
    """Every shift of these packages and of these commissioners' packages."""
    async with conn.cursor() as cur:
        await cur.execute(_SHIFTS_OF, {"packages": sorted(package_ids), "commissioners": sorted(commissioner_ids)})
        return {str(r[0]) for r in await cur.fetchall()}
