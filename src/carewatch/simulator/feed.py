"""`generate_feed`: the whole simulated stream, contract-valid, in occurred_at order, from a seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from carewatch.simulator import people
from carewatch.simulator.invoices import invoices
from carewatch.simulator.options import FeedOptions
from carewatch.simulator.packages import CarePackage, make_package
from carewatch.simulator.rota import assign, due_shifts
from carewatch.simulator.visits import Timed, simulate_visit


def instant(dt: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second."""
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _registrations(rng: random.Random, options: FeedOptions
                   ) -> tuple[list[Timed], list[CarePackage], dict[str, list[people.Carer]]]:
    """Everything known before the day: commissioners, providers, carers, approved packages."""
    start = options.start
    commissioners = people.COMMISSIONERS[: 2 if options.packages < 4 else 3]
    providers = people.providers(rng, options.providers)
    share, extra = divmod(options.packages, options.providers)
    per_provider = [share + (1 if i < extra else 0) for i in range(options.providers)]
    events: list[Timed] = []
    for c in commissioners:
        events.append((start - timedelta(days=30), {"type": "commissioner.registered", "commissioner_id":
                       c.commissioner_id, "name": c.name, "kind": c.kind, "timezone": options.timezone}))
    carers: dict[str, list[people.Carer]] = {}
    for provider, count in zip(providers, per_provider, strict=True):
        events.append((start - timedelta(days=21), {"type": "provider.registered",
                       "provider_id": provider.provider_id, "name": provider.name}))
        carers[provider.provider_id] = people.carers(rng, provider, count, start.date())
        for carer in carers[provider.provider_id]:
            events.append((start - timedelta(days=14), {
                "type": "carer.registered", "carer_id": carer.carer_id, "provider_id": carer.provider_id,
                **({"ni_number": carer.ni_number} if carer.ni_number else {}),
                "date_of_birth": carer.date_of_birth.isoformat(), "competencies": list(carer.competencies),
                "pay_pence_per_hour": carer.pay_pence_per_hour}))
    packages = []
    spacing = min(timedelta(minutes=1), timedelta(hours=18) / max(1, options.packages))
    for n in range(options.packages):
        package = make_package(rng, n + 1, commissioners[n % len(commissioners)],
                               providers[n % len(providers)], start.astimezone(options.tz).date())
        packages.append(package)
        # Approved the day before: the 7-day delivery rules need 7 active days of history, which a
        # first simulated day does not have, so they must not judge it. A minute apart, or closer
        # when there are more than 18 hours' worth: every approval then precedes the first shift
        # announcements (up to 4 hours before the day), so no prefix of the feed names an unknown package.
        events.append((start - timedelta(days=1) + n * spacing, {
            "type": "package.approved", "package_id": package.package_id,
            "commissioner_id": package.commissioner.commissioner_id,
            "provider_id": package.provider.provider_id, "mechanism": package.mechanism,
            "person": {"person_id": package.person_id, "nhs_number": package.nhs_number,
                       "location": {"lat": package.lat, "lon": package.lon}},
            "period_start": package.period_start.isoformat(), "period_end": package.period_end.isoformat(),
            "budget_pence": package.budget_pence, "contingency_pence": package.contingency_pence,
            "plan": package.plan(),
            "rates": [{"service_type": s, "band": b, "pence_per_hour": p} for s, b, p in package.rates]}))
    return events, packages, carers


def generate_feed(options: FeedOptions) -> list[dict[str, Any]]:
    """The feed for `options`: the same options always give the same list, byte for byte when dumped."""
    rng = random.Random(options.seed)
    timed, packages, carers = _registrations(rng, options)
    shifts = assign(rng, due_shifts(packages, options.start, options.end, options.tz), carers)
    records = [simulate_visit(rng, shift, options) for shift in shifts]
    for record in records:
        timed.extend(record.events)
    if options.invoices:
        timed.extend(invoices(rng, records, options))
    # Stable sort: events at the same instant keep the order they were made in (a clock-in before its
    # clock-out, a shift before its changes).
    order = sorted(range(len(timed)), key=lambda i: timed[i][0].replace(microsecond=0))
    feed = []
    for n, i in enumerate(order, start=1):
        when, body = timed[i]
        feed.append({"event_id": f"sim{options.seed}-{n:07d}", "type": body["type"],
                     "occurred_at": instant(when), "source": "carewatch-simulator", "schema_version": 1,
                     **{k: v for k, v in body.items() if k != "type"}})
    return feed
