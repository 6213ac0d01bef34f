"""Providers' invoices at the end of the window: most bill what was delivered, one bills the plan."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from carewatch.simulator.options import FeedOptions
from carewatch.simulator.visits import Timed, VisitRecord


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
        # The first invoice bills every call at its planned length, missed or short ones too, as
        # careless rosters do: the three-way match should dispute it. The others bill what was delivered.
        bills_plan = n == 0
        lines: list[dict[str, Any]] = []
        for record in by_package[package_id]:
            if record.cancelled_by:
                continue
            shift = record.shift
            seconds = shift.seconds * shift.visit.carers if bills_plan else record.payable_seconds
            if seconds <= 0:
                continue
            minutes = seconds // 60
            rate = shift.package.day_rate(shift.visit.service_type)
            lines.append({"shift_id": shift.shift_id, "service_type": shift.visit.service_type,
                          "minutes": minutes, "amount_pence": minutes * rate // 60})
        if not lines:
            continue
        package = by_package[package_id][0].shift.package
        found.append((billed_at + timedelta(minutes=n), {
            "type": "invoice.submitted", "invoice_id": f"INV-{package_id[4:]}-{first:%Y%m%d}",
            "package_id": package_id, "provider_id": package.provider.provider_id,
            "period_start": first.isoformat(), "period_end": last.isoformat(), "lines": lines,
            "total_pence": sum(line["amount_pence"] for line in lines)}))
    return found
