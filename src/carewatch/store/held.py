"""Valid events that name something not seen yet: held, released when it arrives, or expired.

`waiting_for` is `<kind>:<id>` (kind is commissioner, provider, package or shift); ids may
themselves contain ':', so the kind is everything before the first one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from carewatch.schema.events import CareEvent, Rejection, message_key
from carewatch.store.rejects import record_rejections


@dataclass(frozen=True)
class HeldEvent:
    event: CareEvent
    held_at: datetime  # processing time it was first held: the hold limit counts from here


_HOLD = """
INSERT INTO held_events (event_id, occurred_at, type, waiting_for, payload, raw, held_at)
VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT (event_id) DO NOTHING"""

_RETURNING = "RETURNING event_id, occurred_at, type, payload, raw, held_at"

_TAKE_WAITING_FOR = f"DELETE FROM held_events WHERE waiting_for = ANY(%s) {_RETURNING}"

_REF_ID = "substr(h.waiting_for, strpos(h.waiting_for, ':') + 1)"
_RESOLVABLE = f"""
    ((h.waiting_for LIKE 'commissioner:%%'
      AND EXISTS (SELECT 1 FROM commissioners x WHERE x.commissioner_id = {_REF_ID}))
  OR (h.waiting_for LIKE 'provider:%%' AND EXISTS (SELECT 1 FROM providers x WHERE x.provider_id = {_REF_ID}))
  OR (h.waiting_for LIKE 'package:%%' AND EXISTS (SELECT 1 FROM packages x WHERE x.package_id = {_REF_ID}))
  OR (h.waiting_for LIKE 'shift:%%' AND EXISTS (SELECT 1 FROM shifts x WHERE x.shift_id = {_REF_ID})))"""
_RESOLVABLE_IDS = f"SELECT h.event_id FROM held_events h WHERE {_RESOLVABLE} ORDER BY h.held_at, h.event_id"
_TAKE_RESOLVABLE = f"DELETE FROM held_events h WHERE {_RESOLVABLE} {_RETURNING}"
_TAKE_RESOLVABLE_OF = f"DELETE FROM held_events h WHERE {_RESOLVABLE} AND h.event_id = ANY(%s) {_RETURNING}"
_TAKE = f"DELETE FROM held_events WHERE event_id = ANY(%s) {_RETURNING}"

_EXPIRE = """
DELETE FROM held_events WHERE held_at < %s
RETURNING event_id, type, waiting_for, raw, held_at"""


def _held(row: tuple[Any, ...]) -> HeldEvent:
    event_id, occurred_at, kind, payload, raw, held_at = row
    event = CareEvent(event_id, kind, occurred_at.astimezone(UTC), message_key(payload), payload, raw)
    return HeldEvent(event, held_at)


async def hold(conn: AsyncConnection[Any], items: Sequence[tuple[HeldEvent, str]]) -> None:
    """Store each event with the reference it waits for."""
    if not items:
        return
    params = [(h.event.event_id, h.event.occurred_at, h.event.type, waiting_for, h.event.raw, h.event.raw,
               h.held_at) for h, waiting_for in items]
    async with conn.cursor() as cur:
        await cur.executemany(_HOLD, params)


async def take_waiting_for(conn: AsyncConnection[Any], refs: Collection[str]) -> list[HeldEvent]:
    """Remove and return the events held for any of `refs` (which have just arrived)."""
    if not refs:
        return []
    async with conn.cursor() as cur:
        await cur.execute(_TAKE_WAITING_FOR, (sorted(refs),))
        return [_held(r) for r in await cur.fetchall()]


async def resolvable_ids(conn: AsyncConnection[Any]) -> list[str]:
    """The held events whose reference now exists in the database, oldest held first."""
    async with conn.cursor() as cur:
        await cur.execute(_RESOLVABLE_IDS)
        return [str(r[0]) for r in await cur.fetchall()]


async def take_resolvable(conn: AsyncConnection[Any], event_ids: Collection[str] | None = None) -> list[HeldEvent]:
    """Remove and return every held event (or those of `event_ids`) whose reference now exists."""
    async with conn.cursor() as cur:
        if event_ids is None:
            await cur.execute(_TAKE_RESOLVABLE)
        else:
            await cur.execute(_TAKE_RESOLVABLE_OF, (sorted(event_ids),))
        return [_held(r) for r in await cur.fetchall()]


async def take_held(conn: AsyncConnection[Any], event_ids: Collection[str]) -> list[HeldEvent]:
    """Remove and return these held events, whatever they wait for."""
    async with conn.cursor() as cur:
        await cur.execute(_TAKE, (sorted(event_ids),))
        return [_held(r) for r in await cur.fetchall()]


def unresolved_reason(waiting_for: str, limit_seconds: int) -> str:
    kind, _, ref = waiting_for.partition(":")
    return f"{kind} {ref} was never seen within {limit_seconds} s"


async def expire_held(conn: AsyncConnection[Any], now: datetime, limit_seconds: int,
                      source: str = "kafka") -> list[Rejection]:
    """Move events held longer than the limit (processing time) to rejected_events; return them.

    Runs in the caller's transaction when there is one, else in its own.
    """
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(_EXPIRE, (now - timedelta(seconds=limit_seconds),))
        rows = await cur.fetchall()
        rejections = [
            Rejection(unresolved_reason(waiting_for, limit_seconds), "unresolved", event_id, kind, raw)
            for event_id, kind, waiting_for, raw, _held_at in rows
        ]
        await record_rejections(conn, rejections, source, now)
    return rejections
