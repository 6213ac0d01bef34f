"""Purchase to pay after a batch's ledgers are rebuilt: invoices matched, budgets judged, alerts decided.

An invoice is matched when it arrives and again whenever the delivery behind it may have changed (a
shift of its package starting in its period was rebuilt, or the package's plan was approved again).
Several new versions of one invoice in a batch are judged one after another, in event-time order, so
that the alerts are the same whether they came in one batch or in several; a version older than one
already stored is kept in history and judged never. BUDGET_AT_RISK is judged for every package whose
spend or plan the batch may have changed (alerts/budgets.py, which also holds the scheduler's daily check).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from carewatch.alerts.budgets import REFRESH, judge_budgets
from carewatch.alerts.record import AlertRecord
from carewatch.alerts.repository import apply_decisions
from carewatch.domain.alert_rules import AlertDecision
from carewatch.domain.calendar import period_bounds, zone
from carewatch.domain.invoice_match import (
    Invoice,
    InvoiceLineInput,
    InvoiceMatch,
    exact_minutes,
    invoice_from_payload,
    match_against_ledgers,
)
from carewatch.domain.model import Package, ShiftLedger
from carewatch.domain.purchase_alerts import invoice_disputed
from carewatch.schema.events import CareEvent
from carewatch.store import invoices as store
from carewatch.store.rows import InvoiceRecord


def _value(record: InvoiceRecord) -> Invoice:
    return Invoice(record.invoice_id, record.package_id, record.provider_id, record.period_start,
                   record.period_end, record.total_pence,
                   tuple(InvoiceLineInput(exact_minutes(line.minutes), line.amount_pence, line.shift_id,
                                          line.service_type) for line in record.lines))


def _window(package: Package, invoice: Invoice, default_zone: ZoneInfo | None) -> store.Window:
    start, end = period_bounds(invoice.period_start, invoice.period_end, zone(package.timezone, default_zone))
    return invoice.package_id, start, end


def _covers(window: store.Window, starts: Collection[datetime]) -> bool:
    return any(window[1] <= at < window[2] for at in starts)


async def _invoice_alerts(conn: AsyncConnection[Any], applied: Sequence[CareEvent], replanned: set[str],
                          starts: Mapping[str, list[datetime]], packages: Mapping[str, Package], now: datetime,
                          default_zone: ZoneInfo | None) -> list[AlertRecord]:
    submitted = sorted((e for e in applied if e.type == "invoice.submitted"),
                       key=lambda e: (e.occurred_at, e.event_id))
    before = await store.latest_before(conn, {e.payload["invoice_id"] for e in submitted},
                                       {e.event_id for e in submitted})
    # The batch's versions newer than every version stored before it, in event-time order.
    sequence: list[Invoice] = []
    for e in submitted:
        kept = before.get(e.payload["invoice_id"])
        if kept is None or (e.occurred_at, e.event_id) > (kept.submitted_at, kept.event_id):
            sequence.append(invoice_from_payload(e.payload))
            before[e.payload["invoice_id"]] = store.VersionKey(e.occurred_at, e.event_id)
    judged = {i.invoice_id for i in sequence}
    current = {r.invoice_id: _value(r) for r in await store.invoices_of(conn, set(packages))
               if r.package_id in packages}
    for invoice in current.values():
        window = _window(packages[invoice.package_id], invoice, default_zone)
        if invoice.invoice_id not in judged and (invoice.package_id in replanned
                                                 or _covers(window, starts.get(invoice.package_id, ()))):
            sequence.append(invoice)
    sequence = [i for i in sequence if i.package_id in packages]
    if not sequence:
        return []
    windows = [_window(packages[i.package_id], i, default_zone) for i in sequence]
    delivered = await store.ledgers_in(conn, windows)
    decisions: list[AlertDecision] = []
    latest: dict[str, InvoiceMatch] = {}
    for invoice, window in zip(sequence, windows, strict=True):
        package = packages[invoice.package_id]
        match = match_against_ledgers(package, invoice, delivered[window])
        decisions.append(invoice_disputed(invoice, match, package.commissioner_id))
        if invoice.invoice_id in current:
            latest[invoice.invoice_id] = match
    await store.save_matches(conn, list(latest.values()), now)
    # Not filtered by what is open now: a raise and a resolve of one invoice may follow each other here.
    return await apply_decisions(conn, decisions, now)


async def purchase_to_pay(conn: AsyncConnection[Any], applied: Sequence[CareEvent],
                          ledgers: Mapping[str, ShiftLedger], now: datetime,
                          default_zone: ZoneInfo | None = None,
                          spend_moved: Collection[str] | None = None) -> list[AlertRecord]:
    """The batch's invoices matched and budgets judged, after its ledgers were rebuilt and saved;
    returns the alerts that changed (to publish after the commit).

    `spend_moved` (from store/ledgers.save_ledgers) names the packages whose spend the batch moved:
    a budget is judged on a change of spend or plan (DOMAIN.md "Budget at risk"), so a package whose
    shifts were rebuilt without moving its spend (a shift announced, a clock-in) is judged again only
    when its last check is older than an hour (the scheduler's daily sweep covers the rest). None
    judges every package whose ledgers were rebuilt (a time-zone change moves every period)."""
    replanned = {e.payload["package_id"] for e in applied if e.type == "package.approved"}
    starts: dict[str, list[datetime]] = {}
    for lg in ledgers.values():
        starts.setdefault(lg.package_id, []).append(lg.starts_at)
    invoiced = {e.payload["package_id"] for e in applied if e.type == "invoice.submitted"}
    wanted = set(starts) | replanned | invoiced
    if not wanted:
        return []
    if spend_moved is None:
        judged = set(starts) | replanned
        packages, invoiced_before = await store.packages(conn, wanted)
    else:
        invoiced_before, fresh = await store.purchase_flags(conn, wanted, now - REFRESH)
        judged = replanned | {pid for pid in starts if pid in spend_moved or pid not in fresh}
        packages, _ = await store.packages(conn, judged | invoiced | invoiced_before)
    changed: list[AlertRecord] = []
    if invoiced or invoiced_before:  # most batches touch no package with an invoice
        invoicing = {pid: p for pid, p in packages.items() if pid in invoiced or pid in invoiced_before}
        changed = await _invoice_alerts(conn, applied, replanned, starts, invoicing, now, default_zone)
    spend_or_plan = {pid: p for pid, p in packages.items() if pid in judged}
    return changed + await judge_budgets(conn, spend_or_plan, now, default_zone)
