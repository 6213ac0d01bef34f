"""Applying a batch of validated care events to the database in one transaction.

Events new to the events table are applied; repeats change nothing. An event whose
reference (its shift, package, provider or commissioner) is neither stored nor in the
batch is held and applied when the reference arrives. Every shift touched has its ledger
rebuilt from all its stored facts, so the result does not depend on arrival order; the
event-driven alert rules run over the same facts, in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from carewatch.alerts.event_alerts import apply_event_alerts
from carewatch.alerts.store import Alert
from carewatch.domain.ownership import named_packages, named_shifts
from carewatch.schema.events import CareEvent, Rejection
from carewatch.store.entities import write_entities
from carewatch.store.held import HeldEvent, expire_held, hold, take_resolvable, take_waiting_for
from carewatch.store.ledgers import recompute_ledgers
from carewatch.store.ownership import load_owners
from carewatch.store.shift_facts import load_shift_facts
from carewatch.store.staging import stage_rows

__all__ = ["BatchOutcome", "apply_batch", "expire_held", "provides", "references", "release_held"]


@dataclass(frozen=True)
class BatchOutcome:
    applied: int = 0
    duplicates: int = 0
    held: int = 0
    released: int = 0
    rejected: int = 0
    affected_shift_ids: tuple[str, ...] = ()
    applied_events: tuple[CareEvent, ...] = field(default=(), repr=False)
    alerts: tuple[Alert, ...] = field(default=(), repr=False)  # changed in this batch: publish after commit
    rejections: tuple[Rejection, ...] = field(default=(), repr=False)  # refused here (scope): to record

    def applied_by_type(self) -> Counter[str]:
        return Counter(e.type for e in self.applied_events)


def references(event: CareEvent) -> tuple[str, ...]:
    """What must exist before `event` can be applied, as `kind:id`."""
    p = event.payload
    match event.type:
        case "carer.registered":
            return (f"provider:{p['provider_id']}",)
        case "package.approved":
            return (f"commissioner:{p['commissioner_id']}", f"provider:{p['provider_id']}")
        case "shift.scheduled" | "shift.updated" | "invoice.submitted":
            return (f"package:{p['package_id']}",)
        case "shift.cancelled" | "visit.clock_in" | "visit.clock_out" | "visit.corrected":
            # A cancellation changes a shift row, so it waits for the shift itself.
            return (f"shift:{p['shift_id']}",)
        case "activity.logged" if isinstance(p.get("package_id"), str):
            # Its provider is checked against the package's (ownership), so it waits for the package.
            return (f"package:{p['package_id']}",)
    return ()


def provides(event: CareEvent) -> str | None:
    """The reference `event` creates once applied, if any."""
    p = event.payload
    match event.type:
        case "commissioner.registered":
            return f"commissioner:{p['commissioner_id']}"
        case "provider.registered":
            return f"provider:{p['provider_id']}"
        case "package.approved":
            return f"package:{p['package_id']}"
        case "shift.scheduled" | "shift.updated":
            return f"shift:{p['shift_id']}"
    return None


_EXISTING_REFS = """
SELECT 'commissioner:' || commissioner_id FROM commissioners WHERE commissioner_id = ANY(%(commissioner)s)
UNION ALL SELECT 'provider:' || provider_id FROM providers WHERE provider_id = ANY(%(provider)s)
UNION ALL SELECT 'package:' || package_id FROM packages WHERE package_id = ANY(%(package)s)
UNION ALL SELECT 'shift:' || shift_id FROM shifts WHERE shift_id = ANY(%(shift)s)"""

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


async def _existing(conn: AsyncConnection[Any], refs: set[str]) -> set[str]:
    wanted: dict[str, list[str]] = {"commissioner": [], "provider": [], "package": [], "shift": []}
    for ref in refs:
        kind, _, ident = ref.partition(":")
        wanted[kind].append(ident)
    if not any(wanted.values()):
        return set()
    async with conn.cursor() as cur:
        await cur.execute(_EXISTING_REFS, wanted)
        return {str(r[0]) for r in await cur.fetchall()}


def _resolve(pending: Sequence[HeldEvent],
             available: set[str]) -> tuple[list[HeldEvent], list[tuple[HeldEvent, str]]]:
    """Split into events whose references are all available (counting what earlier ready events
    provide) and events still waiting, each with the first reference it lacks."""
    ready: list[HeldEvent] = []
    remaining = list(pending)
    progress = True
    while progress and remaining:
        progress = False
        still: list[HeldEvent] = []
        for item in remaining:
            if all(ref in available for ref in references(item.event)):
                ready.append(item)
                made = provides(item.event)
                if made is not None and made not in available:
                    available.add(made)
                    progress = True
            else:
                still.append(item)
        remaining = still
    waiting = [(item, next(r for r in references(item.event) if r not in available)) for item in remaining]
    return ready, waiting


async def _record_events(conn: AsyncConnection[Any], events: Sequence[CareEvent], now: datetime) -> set[str]:
    """Insert the raw events; return the ids that were new (a concurrent writer may have won)."""
    if not events:
        return set()
    async with conn.cursor() as cur:
        await stage_rows(cur, "staged_events", "events", _EVENT_COLUMNS,
                         ((e.event_id, e.occurred_at, e.type, e.key, e.raw, now) for e in events))
        await cur.execute(_RECORD)
        return {str(r[0]) for r in await cur.fetchall()}


@dataclass
class _Tally:
    applied: list[CareEvent] = field(default_factory=list)
    held: int = 0
    released: int = 0
    shifts: set[str] = field(default_factory=set)
    packages: set[str] = field(default_factory=set)
    commissioners: set[str] = field(default_factory=set)
    alerts: list[Alert] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


async def _within_scope(conn: AsyncConnection[Any], ready: list[HeldEvent], existing: set[str],
                        tally: _Tally) -> tuple[list[HeldEvent], list[tuple[HeldEvent, str]]]:
    """The ready events that respect ownership (domain/ownership.py), in order; those outside it are
    refused (stage `scope`), and those whose reference only a refused event would have made wait."""
    named = [(h.event.type, h.event.payload) for h in ready]
    owners = await load_owners(conn, named_packages(named), named_shifts(named))
    available = set(existing)
    accepted: list[HeldEvent] = []
    waiting: list[tuple[HeldEvent, str]] = []
    for item in ready:
        e = item.event
        missing = next((r for r in references(e) if r not in available), None)
        if missing is not None:
            waiting.append((item, missing))
            continue
        problem = owners.judge(e.type, e.payload, e.occurred_at)
        if problem is not None:
            tally.rejections.append(Rejection(problem, "scope", e.event_id, e.type, e.raw))
            continue
        accepted.append(item)
        if (made := provides(e)) is not None:
            available.add(made)
    return accepted, waiting


async def _apply_rounds(conn: AsyncConnection[Any], pending: list[HeldEvent], now: datetime,
                        tally: _Tally) -> None:
    """Apply what can be applied, hold the rest, and repeat with whatever the applied events release."""
    while pending:
        refs = {ref for item in pending for ref in references(item.event)}
        existing = await _existing(conn, refs)
        ready, waiting = _resolve(pending, set(existing))
        ready, unowned = await _within_scope(conn, ready, existing, tally)
        waiting += unowned
        await hold(conn, waiting)
        tally.held += len(waiting)
        fresh = await _record_events(conn, [item.event for item in ready], now)
        applied = [item.event for item in ready if item.event.event_id in fresh]
        await write_entities(conn, applied)
        tally.applied.extend(applied)
        for e in applied:
            if e.type.startswith(("shift.", "visit.")):
                tally.shifts.add(e.payload["shift_id"])
            elif e.type == "package.approved":
                tally.packages.add(e.payload["package_id"])
            elif e.type == "commissioner.registered":
                tally.commissioners.add(e.payload["commissioner_id"])
        made = {ref for e in applied if (ref := provides(e)) is not None}
        pending = await take_waiting_for(conn, made)
        tally.released += len(pending)


async def _finish(conn: AsyncConnection[Any], tally: _Tally, now: datetime) -> tuple[str, ...]:
    """Rebuild the ledger of every shift touched, including all shifts of changed packages and time
    zones, then run the visit alert rules over the same facts; return the shifts touched."""
    shifts = set(tally.shifts)
    if tally.packages or tally.commissioners:
        async with conn.cursor() as cur:
            await cur.execute(_SHIFTS_OF, {"packages": sorted(tally.packages),
                                           "commissioners": sorted(tally.commissioners)})
            shifts.update(str(r[0]) for r in await cur.fetchall())
    # Locked (FOR UPDATE, in shift order) so that two workers rebuilding one shift take turns and
    # the later always reads the earlier's facts: an older ledger never overwrites a newer one.
    facts = await load_shift_facts(conn, shifts, lock=True)
    ledgers = await recompute_ledgers(conn, facts.values(), now)
    tally.alerts = await apply_event_alerts(conn, tally.applied, now, facts, ledgers)
    return tuple(sorted(shifts))


async def apply_batch(conn: AsyncConnection[Any], events: Sequence[CareEvent], now: datetime) -> BatchOutcome:
    """Apply one batch of validated events in one transaction; what it refuses (scope) is returned."""
    async with conn.transaction():
        unique: dict[str, CareEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        seen: set[str] = set()
        if unique:
            times = [e.occurred_at for e in unique.values()]
            async with conn.cursor() as cur:
                await cur.execute(_SEEN, {"ids": list(unique), "earliest": min(times), "latest": max(times)})
                seen = {str(r[0]) for r in await cur.fetchall()}
        pending = [HeldEvent(e, now) for eid, e in unique.items() if eid not in seen]
        tally = _Tally()
        await _apply_rounds(conn, pending, now, tally)
        affected = await _finish(conn, tally, now)
    return _outcome(tally, len(events) - len(pending), affected)


def _outcome(tally: _Tally, duplicates: int, affected: tuple[str, ...]) -> BatchOutcome:
    return BatchOutcome(len(tally.applied), duplicates, tally.held, tally.released, len(tally.rejections),
                        affected, tuple(tally.applied), tuple(tally.alerts), tuple(tally.rejections))


async def release_held(conn: AsyncConnection[Any], now: datetime,
                       event_ids: Sequence[str] | None = None) -> BatchOutcome:
    """Apply the held events (all, or those of `event_ids`) whose reference now exists."""
    async with conn.transaction():
        pending = await take_resolvable(conn, event_ids)
        tally = _Tally(released=len(pending))
        await _apply_rounds(conn, pending, now, tally)
        affected = await _finish(conn, tally, now)
    return _outcome(tally, 0, affected)
