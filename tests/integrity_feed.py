"""A small hostile-but-valid feed for the integrity tests: two providers, two packages, one carer
who works for both, and events that try to cross the line between them."""

from __future__ import annotations

import json
from typing import Any

from support import contract_lines

BASE = [json.loads(line) for line in contract_lines("valid.jsonl")[:5]]  # commissioner .. PKG-100 (Acorn)


def event(event_id: str, type_: str, at: str, **payload: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "occurred_at": at, **payload}


def setup() -> list[dict[str, Any]]:
    """The contract's commissioner, Acorn, its carers and PKG-100, plus Birch and its package PKG-200."""
    pkg_b = dict(BASE[4], event_id="b-pkg", package_id="PKG-200", provider_id="PRV-BIRCH",
                 person={"person_id": "P-200", "nhs_number": "9434765919"})
    return [*BASE,
            event("b-prv", "provider.registered", "2026-03-01T09:00:00Z", provider_id="PRV-BIRCH", name="Birch Care"),
            pkg_b]


def shift(event_id: str, shift_id: str, package_id: str, provider_id: str, starts: str, ends: str,
          at: str = "2026-04-06T05:00:00Z", kind: str = "shift.scheduled") -> dict[str, Any]:
    return event(event_id, kind, at, shift_id=shift_id, package_id=package_id, provider_id=provider_id,
                 starts_at=starts, ends_at=ends, service_type="personal_care", carers_required=1)


def clock(event_id: str, direction: str, shift_id: str, package_id: str, provider_id: str, carer_id: str,
          at: str) -> dict[str, Any]:
    return event(event_id, f"visit.clock_{direction}", at, shift_id=shift_id, package_id=package_id,
                 provider_id=provider_id, carer_id=carer_id, method="nfc")


def lines(events: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(e) for e in events]
