"""Providers' invoices at the end of the window, so that the three-way match has all its outcomes:
the first invoicing package bills every call 10 minutes over plan (overstated: disputed), then sends a
correction billing what was delivered (matched: the alert auto-resolves); the second bills what was
delivered plus a travel supplement naming no visit (unproven: it stays disputed); the rest bill what
was delivered (matched)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from carewatch.simulator.options import FeedOptions
from carewatch.simulator.visits import Timed, VisitRecord

OVERSTATED, UNPROVEN = 0, 1  # which of the chosen packages bills wrongly
PADDING_MINUTES = 10
CORRECTED_AFTER = timedelta(hours=2)


def _lines(records: list[VisitRecord], padded: bool) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for record in records:
        if record.cancelled_by:
            continue
        shift = record.shift
        seconds = (shift.seconds + PADDING_MINUTES * 60) * shift.visit.carers if padded else record.payable_seconds
        if seconds <= 0:
            continue
        minutes = seconds // 60
        rate = shift.package.day_rate(shift.visit.service_type)
        lines.append({"shift_id": shift.shift_id, "service_type": shift.visit.service_type,
                      "minutes": minutes, "amount_pence": minutes * rate // 60})
    return lines


def invoices(rng: random.Random, records: list[VisitRecord], options: FeedOptions) -> list[Timed]:
    by_package: dict[str, list[VisitRecord]] = {}
    for record in records:
        by_package.setdefault(record.shift.package.package_id, []).append(record)
    chosen = rng.sample(sorted(by_package), min(options.invoices, len(by_package)))
    # The invoice period runs over the local days on which the window's calls started.
    first = options.start.astimezone(options.tz).date()
    last = max((r.shift.starts_at for r in records), default=options.start).astimezone(options.tz).date()
    # Billed once the last call of the window is over and its record settled.
    billed_at = max((when for r in records for when, _ in r.events), default=options.end) + timedelta(hours=1)
    found: list[Timed] = []
    for n, package_id in enumerate(chosen):
        lines = _lines(by_package[package_id], padded=n == OVERSTATED)
        if n == UNPROVEN and lines:
            service = lines[0]["service_type"]
            rate = by_package[package_id][0].shift.package.day_rate(service)
            lines.append({"service_type": service, "minutes": 45, "amount_pence": 45 * rate // 60})
        if not lines:
            continue
        package = by_package[package_id][0].shift.package
        invoice = {"type": "invoice.submitted", "invoice_id": f"INV-{package_id[4:]}-{first:%Y%m%d}",
                   "package_id": package_id, "provider_id": package.provider.provider_id,
                   "period_start": first.isoformat(), "period_end": last.isoformat()}
        found.append((billed_at + timedelta(minutes=n), {
            **invoice, "lines": lines, "total_pence": sum(line["amount_pence"] for line in lines)}))
        if n == OVERSTATED:  # the provider's correction: the same invoice id, billing what was delivered
            corrected = _lines(by_package[package_id], padded=False)
            if corrected:
                found.append((billed_at + CORRECTED_AFTER, {
                    **invoice, "lines": corrected, "total_pence": sum(line["amount_pence"] for line in corrected)}))
    return found
