"""Which carer-weeks a batch's events may change (pipeline/pay.py): a day either side of each instant."""

from __future__ import annotations

import json
from datetime import date

from carewatch.pipeline.pay import touched_weeks
from carewatch.schema.events import CareEvent, validate_event


def _event(**fields: object) -> CareEvent:
    e = validate_event(json.dumps({"event_id": "E-1", **fields}))
    assert isinstance(e, CareEvent), e
    return e


def test_an_instant_names_the_weeks_of_the_days_around_it() -> None:
    # Monday 13 April 2026, 00:30Z: a visit of the Sunday before may be the shift; both weeks.
    travel = _event(type="activity.logged", occurred_at="2026-04-13T00:30:00Z", carer_id="CR-1",
                    provider_id="PRV", kind="travel", minutes=20)
    assert touched_weeks([travel]) == {("CR-1", date(2026, 4, 6)), ("CR-1", date(2026, 4, 13))}
    # Wednesday: its own week only.
    midweek = _event(type="activity.logged", occurred_at="2026-04-15T12:00:00Z", carer_id="CR-2",
                     provider_id="PRV", kind="travel", minutes=20)
    assert touched_weeks([midweek]) == {("CR-2", date(2026, 4, 13))}


def test_a_correction_names_the_weeks_of_the_stay_it_records() -> None:
    fixed = _event(type="visit.corrected", occurred_at="2026-04-22T09:00:00Z", shift_id="SH-1", package_id="P",
                   provider_id="PRV", carer_id="CR-1", clock_in_at="2026-04-15T09:00:00Z",
                   clock_out_at="2026-04-15T10:00:00Z", reason_code="device_fault", corrected_by="office")
    assert touched_weeks([fixed]) == {("CR-1", date(2026, 4, 13)), ("CR-1", date(2026, 4, 20))}


def test_events_without_a_carers_time_name_no_week() -> None:
    approved = _event(type="provider.registered", occurred_at="2026-04-13T00:30:00Z", provider_id="PRV", name="P")
    assert touched_weeks([approved]) == set()
