"""An event whose type is missing or unknown is rejected with one reason (the type), not with the
required fields of every event type the contract knows."""

from __future__ import annotations

import json

import pytest

from carewatch.schema.events import Rejection, validate_event


@pytest.mark.parametrize(("event", "reason"), [
    ({"event_id": "e-1", "occurred_at": "2026-04-06T07:00:00Z", "shift_id": "SH-1"}, "type: is required"),
    ({"event_id": "e-2", "type": "visit.teleport", "occurred_at": "2026-04-06T07:00:00Z"},
     "type: 'visit.teleport' is not a known event type"),
    ({"event_id": "e-3", "type": None, "occurred_at": "not a time", "carer_id": 5},
     "type: None is not a known event type"),
])
def test_one_reason_for_a_missing_or_unknown_type(event: dict[str, object], reason: str) -> None:
    rejected = validate_event(json.dumps(event))
    assert isinstance(rejected, Rejection) and rejected.stage == "schema"
    assert rejected.reason == reason


def test_a_known_type_still_gets_every_field_reason() -> None:
    rejected = validate_event(json.dumps({"event_id": "e-4", "type": "visit.clock_in",
                                          "occurred_at": "2026-04-06T07:00:00"}))
    assert isinstance(rejected, Rejection)
    assert "occurred_at:" in rejected.reason and "shift_id: is required" in rejected.reason
