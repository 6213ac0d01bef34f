"""Applying a batch of validated care events to the database in one transaction.

Events new to the events table are applied; repeats change nothing. An event whose reference (its
shift, package, provider or commissioner) is neither stored nor in the batch is held and applied
when the reference arrives; one outside its provider's ownership is refused (stage `scope`). Every
shift touched has its ledger rebuilt from all its stored facts, so the result does not depend on
arrival order; the event-driven alert rules run over the same facts, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from carewatch import metrics
from carewatch.alerts.record import AlertRecord
from carewatch.domain.attendance import shift_ledger
from carewatch.domain.calendar import zone
from carewatch.domain.model import ShiftFacts, ShiftLedger
from carewatch.domain.ownership import Takeover, named_packages, named_shifts
from carewatch.pipeline.alerts import batch_alerts
from carewatch.pipeline.outcome import BatchOutcome
from carewatch.pipeline.pay import TOUCHING, pay_waits
from carewatch.pipeline.purchase_to_pay import purchase_to_pay
from carewatch.pipeline.references import provides, references, resolve
from carewatch.schema.events import CareEvent, Rejection, validate_event
from carewatch.store.entities import write_entities
from carewatch.store.events import existing_references, record_events, seen_event_ids, shifts_of
from carewatch.store.held import HeldEvent, hold, take_resolvable, take_waiting_for
from carewatch.store.ledgers import save_ledgers
from carewatch.store.ownership import load_owners, refused_on_shift, withdraw_shift
from carewatch.store.people import lock_carers
from carewatch.store.shift_facts import load_shift_facts

# Written at the end of the batch, not with the other entities: an activity without a package adds to
# its provider's roll-up row (activity_day, activity_month), which batches of every partition update,
# so its row lock is held from this write to the commit. Nothing before pay_waits reads activities.
LATE_WRITES = frozenset({"activity.logged"})


def named_carers(events: Sequence[CareEvent]) -> set[str]:
    """The carers whose alerts or weeks the events may change: those registered, and those whose
    attendance or activities touch their weeks (pipeline/pay.TOUCHING, a superset of the clock events
    the alert rules read carers for)."""
    return {e.payload["carer_id"] for e in events if e.type in TOUCHING or e.type == "carer.registered"}


class LedgerRebuildError(RuntimeError):
    """A shift's stored facts could not be turned into its ledger."""


@dataclass
class _Tally:
    applied: list[CareEvent] = field(default_factory=list)
    held: int = 0
    released: int = 0
    shifts: set[str] = field(default_factory=set)
    packages: set[str] = field(default_factory=set)
    commissioners: set[str] = field(default_factory=set)
    alerts: list[AlertRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    now: datetime = datetime.min

async def _within_scope(conn: AsyncConnection[Any], ready: list[HeldEvent], existing: set[str],
                        tally: _Tally) -> tuple[list[HeldEvent], list[tuple[HeldEvent, str]], list[HeldEvent]]:
    """The ready events that respect ownership (domain/ownership.py), in order; those outside it are
    refused (stage `scope`), and those whose reference only a refused event would have made wait.
    Also what a takeover brings back: the new owner's events refused before, to be judged again."""
    named = [(h.event.type, h.event.payload) for h in ready]
    owners = await load_owners(conn, named_packages(named), named_shifts(named))
    available = set(existing)
    accepted: list[HeldEvent] = []
    waiting: list[tuple[HeldEvent, str]] = []
    reinstated: list[HeldEvent] = []
    for item in ready:
        e = item.event
        missing = next((r for r in references(e) if r not in available), None)
        if missing is not None:
            waiting.append((item, missing))
            continue
        before = len(owners.takeovers)
        problem = owners.judge(e.type, e.payload, e.occurred_at, e.event_id)
        if problem is not None:
            tally.rejections.append(Rejection(problem, "scope", e.event_id, e.type, e.raw))
            continue
        for takeover in owners.takeovers[before:]:
            accepted, back = await _take_over(conn, takeover, accepted, tally)
            reinstated += back
        accepted.append(item)
        if (made := provides(e)) is not None:
            available.add(made)
    return accepted, waiting, reinstated


def _on_shift(e: CareEvent, shift_id: str) -> bool:
    return e.type.startswith(("shift.", "visit.")) and e.payload.get("shift_id") == shift_id


async def _take_over(conn: AsyncConnection[Any], takeover: Takeover, accepted: list[HeldEvent],
                     tally: _Tally) -> tuple[list[HeldEvent], list[HeldEvent]]:
    """An earlier announcement from another package has arrived: withdraw what the shift's previous
    owner wrote on it (stored, or accepted earlier in this batch) as scope rejections, and bring back
    the new owner's events refused while the shift was the other's. Returns (accepted, brought back)."""
    shift_id, previous = takeover.shift_id, takeover.previous
    reason = takeover.reason
    kept = [h for h in accepted if not (_on_shift(h.event, shift_id) and previous.owns(
        h.event.payload.get("package_id"), h.event.payload.get("provider_id")))]
    dropped = [h.event for h in accepted if h not in kept]
    withdrawn = await withdraw_shift(conn, shift_id, previous.package_id)
    gone = {event_id for event_id, _, _ in withdrawn}
    tally.applied = [e for e in tally.applied if e.event_id not in gone]
    tally.rejections += [Rejection(reason, "scope", e.event_id, e.type, e.raw) for e in dropped]
    tally.rejections += [Rejection(reason, "scope", event_id, kind, raw) for event_id, kind, raw in withdrawn]
    # Refused for scope while the shift was the other's: in this batch, and in earlier ones.
    refused_here = [r for r in tally.rejections if r.stage == "scope" and r.reason != reason
                    and (v := validate_event(r.raw)) is not None and isinstance(v, CareEvent)
                    and _on_shift(v, shift_id)]
    tally.rejections = [r for r in tally.rejections if r not in refused_here]
    again = [validate_event(raw) for raw in [r.raw for r in refused_here] + await refused_on_shift(conn, shift_id)]
    return kept, [HeldEvent(e, tally.now) for e in again if isinstance(e, CareEvent)]


async def _apply_rounds(conn: AsyncConnection[Any], pending: list[HeldEvent], now: datetime,
                        tally: _Tally) -> None:
    """Apply what can be applied, hold the rest, and repeat with whatever the applied events release."""
    while pending:
        refs = {ref for item in pending for ref in references(item.event)}
        existing = await existing_references(conn, refs)
        ready, waiting = resolve(pending, set(existing))
        ready, unowned, reinstated = await _within_scope(conn, ready, existing, tally)
        waiting += unowned
        await hold(conn, waiting)
        tally.held += len(waiting)
        fresh = await record_events(conn, [item.event for item in ready], now)
        applied = [item.event for item in ready if item.event.event_id in fresh]
        await write_entities(conn, [e for e in applied if e.type not in LATE_WRITES])
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
        pending += reinstated


def rebuild_ledgers(facts: Collection[ShiftFacts], default_zone: ZoneInfo | None = None) -> dict[str, ShiftLedger]:
    """Each shift's ledger from its facts (domain/attendance.py); never left stale in silence: a shift
    that cannot be computed is counted and raised, so that the batch is split until the event that
    made its facts unusable is found and rejected (pipeline/processor.py)."""
    ledgers: dict[str, ShiftLedger] = {}
    for f in facts:
        try:
            ledgers[f.shift.shift_id] = shift_ledger(f.shift, f.clocks, f.corrections, f.rates,
                                                     zone(f.timezone, default_zone))
        except Exception as exc:
            metrics.LEDGER_REBUILD_FAILURES.inc()
            raise LedgerRebuildError(f"the ledger of shift {f.shift.shift_id} cannot be computed: "
                                     f"{type(exc).__name__}: {exc}") from exc
    return ledgers


async def _finish(conn: AsyncConnection[Any], tally: _Tally, now: datetime) -> tuple[str, ...]:
    """Rebuild the ledger of every shift touched, including all shifts of changed packages and time
    zones, then run the event alert rules over the same facts; return the shifts touched."""
    shifts = set(tally.shifts)
    if tally.packages or tally.commissioners:
        shifts |= await shifts_of(conn, tally.packages, tally.commissioners)
    # Locked (FOR UPDATE, in shift order) so that two workers rebuilding one shift take turns and
    # the later always reads the earlier's facts: an older ledger never overwrites a newer one.
    facts: Mapping[str, ShiftFacts] = await load_shift_facts(conn, shifts, lock=True)
    ledgers = rebuild_ledgers(facts.values())
    spend_moved = await save_ledgers(conn, ledgers.values(), now)
    # A time-zone change moves every period of the commissioner's packages: all are judged then.
    tally.alerts = await purchase_to_pay(conn, tally.applied, ledgers, now,
                                         spend_moved=None if tally.commissioners else spend_moved)
    # From here on the batch holds rows and locks that batches of other partitions (another lane or
    # worker) may want too: its carers' and a provider's activity roll-ups. Taken as late as they can
    # be, so that two batches overlap for as long as possible, and the carers' all at once, in carer id
    # order, so that two batches never wait for each other in a circle (the alert rules and the
    # carer weeks below take them again, which costs nothing once held).
    await lock_carers(conn, named_carers(tally.applied))
    tally.alerts += await batch_alerts(conn, tally.applied, now, facts, ledgers)
    await write_entities(conn, [e for e in tally.applied if e.type in LATE_WRITES])
    await pay_waits(conn, tally.applied, now)
    return tuple(sorted(shifts))


def _outcome(tally: _Tally, duplicates: int, affected: tuple[str, ...]) -> BatchOutcome:
    return BatchOutcome(len(tally.applied), duplicates, tally.held, tally.released, len(tally.rejections),
                        affected, tuple(tally.applied), tuple(tally.alerts), tuple(tally.rejections))


async def apply_batch(conn: AsyncConnection[Any], events: Sequence[CareEvent], now: datetime) -> BatchOutcome:
    """Apply one batch of validated events in one transaction; what it refuses (scope) is returned."""
    async with conn.transaction():
        unique: dict[str, CareEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        seen = await seen_event_ids(conn, list(unique.values()))
        pending = [HeldEvent(e, now) for eid, e in unique.items() if eid not in seen]
        tally = _Tally(now=now)
        await _apply_rounds(conn, pending, now, tally)
        affected = await _finish(conn, tally, now)
    return _outcome(tally, len(events) - len(pending), affected)


async def release_held(conn: AsyncConnection[Any], now: datetime,
                       event_ids: Sequence[str] | None = None) -> BatchOutcome:
    """Apply the held events (all, or those of `event_ids`) whose reference now exists."""
    async with conn.transaction():
        pending = await take_resolvable(conn, event_ids)
        tally = _Tally(released=len(pending), now=now)
        await _apply_rounds(conn, pending, now, tally)
        affected = await _finish(conn, tally, now)
    return _outcome(tally, 0, affected)
