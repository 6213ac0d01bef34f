"""The pipeline's pure parts without any service: reference resolution, dead-letter records, visit state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from carewatch.domain.model import ClockEvent, Correction, Shift, ShiftFacts
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS
from carewatch.domain.visits import (
    CarerRecord,
    ClockArrival,
    arrival_decisions,
    registration_decisions,
    settled_unknown_carers,
    unregistered_clock_ins,
    visit_state,
)
from carewatch.pipeline.processor import dead_letter_record, rejection_key
from carewatch.pipeline.references import provides, references, resolve
from carewatch.schema.events import CareEvent, Rejection, validate_event
from support import contract_lines

T0 = datetime(2026, 4, 6, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Item:
    event: CareEvent


def events() -> dict[str, CareEvent]:
    found = {}
    for line in contract_lines("valid.jsonl"):
        e = validate_event(line)
        assert isinstance(e, CareEvent)
        found[e.event_id] = e
    return found


def test_references_and_what_events_provide() -> None:
    e = events()
    assert references(e["ex-7"]) == ("shift:SH-1",)
    assert references(e["ex-13"]) == ("package:PKG-100",)  # an activity naming a package waits for it
    assert provides(e["ex-6"]) == "shift:SH-1" and provides(e["ex-7"]) is None


def test_resolve_orders_dependencies_and_names_what_is_missing() -> None:
    e = events()
    # A clock-in, its shift and its package, in the worst order; the commissioner and provider exist.
    pending = [Item(e["ex-7"]), Item(e["ex-6"]), Item(e["ex-5"])]
    ready, waiting = resolve(pending, {"commissioner:LA-WIRRAL", "provider:PRV-ACORN"})
    assert [i.event.event_id for i in ready] == ["ex-5", "ex-6", "ex-7"] and waiting == []
    ready, waiting = resolve(pending, {"provider:PRV-ACORN"})
    assert ready == [] and [(i.event.event_id, ref) for i, ref in waiting] == [
        ("ex-7", "shift:SH-1"), ("ex-6", "package:PKG-100"), ("ex-5", "commissioner:LA-WIRRAL")]


def test_a_dead_letter_carries_the_reason_stage_and_raw_text_under_the_events_key() -> None:
    raw = contract_lines("valid.jsonl")[6]
    rejection = Rejection("provider_id: 'X' is not the provider", "scope", "ex-7", "visit.clock_in", raw)
    record = json.loads(dead_letter_record(rejection, "kafka", T0))
    assert record == {"reason": "provider_id: 'X' is not the provider", "stage": "scope", "event_id": "ex-7",
                      "source": "kafka", "raw": raw, "rejected_at": "2026-04-06T09:00:00Z"}
    assert rejection_key(rejection) == b"PKG-100"
    assert rejection_key(Rejection("not JSON", "decode", None, None, "{oops")) is None


def _facts(clocks: tuple[ClockEvent, ...], corrections: tuple[Correction, ...] = ()) -> ShiftFacts:
    shift = Shift("SH-1", "PKG-1", "PRV-1", T0, T0 + timedelta(hours=1), "personal_care", 2)
    return ShiftFacts(shift, (), None, "LA-1", None, {"late_start_minutes": 5}, {}, clocks, corrections)


def test_visit_state_reduces_clock_events_and_corrections_per_carer() -> None:
    clocks = (ClockEvent("i1", "SH-1", "CR-1", "in", T0, "nfc"),
              ClockEvent("o1", "SH-1", "CR-1", "out", T0 + timedelta(minutes=50), "nfc"),
              ClockEvent("i2", "SH-1", "CR-2", "in", T0 + timedelta(minutes=3), "nfc"))
    fix = Correction("c1", "SH-1", "CR-3", T0, T0 + timedelta(minutes=30), T0 + timedelta(hours=2), "forgot", "office")
    visit, th = visit_state(_facts(clocks, (fix,)), DEFAULT_THRESHOLDS)
    by_carer = {a.carer_id: a for a in visit.attendance}
    assert by_carer["CR-1"].open_since is None and by_carer["CR-1"].last_clock_out_at == T0 + timedelta(minutes=50)
    assert by_carer["CR-2"].open_since == T0 + timedelta(minutes=3)
    assert by_carer["CR-3"].first_clock_in_at == T0 and by_carer["CR-3"].open_since is None
    assert th.late_start_minutes == 5 and visit.commissioner_id == "LA-1"


def test_arrival_rules_on_clock_in_and_clock_out() -> None:
    visit = visit_state(_facts(()), DEFAULT_THRESHOLDS)
    carers = {"CR-1": CarerRecord("PRV-1", ())}
    decisions = arrival_decisions([ClockArrival("in", "SH-1", "CR-9"), ClockArrival("in", "SH-1", "CR-1"),
                                   ClockArrival("out", "SH-1", "CR-1")],
                                  {"SH-1": visit}, carers, {}, {("SH-1", "CR-1"): 600})
    # UNKNOWN_CARER is not decided on arrival: the clock-in waits for the registration's partition.
    assert [(d.kind.value, d.subject_id) for d in decisions] == [("SHORT_VISIT", "CR-1@SH-1")]
    waiting = unregistered_clock_ins([ClockArrival("in", "SH-1", "CR-9"), ClockArrival("in", "SH-1", "CR-1"),
                                      ClockArrival("out", "SH-1", "CR-8"), ClockArrival("in", "SH-GONE", "CR-7")],
                                     {"SH-1": visit}, carers)
    assert waiting == [("CR-9", "SH-1", "PRV-1")]


def test_a_settled_clock_in_raises_unknown_carer_unless_the_registration_came() -> None:
    visit, _ = visit_state(_facts(()), DEFAULT_THRESHOLDS)
    carers = {"CR-1": CarerRecord("PRV-1", ()), "CR-2": CarerRecord("PRV-OTHER", ())}
    decisions = settled_unknown_carers([("CR-1", "SH-1"), ("CR-2", "SH-1"), ("CR-3", "SH-1"), ("CR-3", "SH-GONE")],
                                       carers, {"SH-1": visit})
    assert [(d.action, d.kind.value, d.subject_id, d.details) for d in decisions] == [
        ("raise", "UNKNOWN_CARER", "CR-2@SH-1", {"registered_provider_id": "PRV-OTHER"}),
        ("raise", "UNKNOWN_CARER", "CR-3@SH-1", {"registered_provider_id": None})]


def test_a_clock_in_arriving_after_its_clock_out_still_judges_the_visit() -> None:
    """Another order of arrival gives the same alerts: the clock-out alone made no pair; the late
    clock-in closes it, and the 10 minutes of a 30-minute visit are a short visit."""
    visit = visit_state(_facts(()), DEFAULT_THRESHOLDS)
    carers = {"CR-1": CarerRecord("PRV-1", ())}
    alone = arrival_decisions([ClockArrival("out", "SH-1", "CR-1")], {"SH-1": visit}, carers, {}, {})
    assert alone == []
    late = arrival_decisions([ClockArrival("in", "SH-1", "CR-1")], {"SH-1": visit}, carers, {},
                             {("SH-1", "CR-1"): 600})
    assert [(d.kind.value, d.subject_id) for d in late] == [("SHORT_VISIT", "CR-1@SH-1")]


def test_a_late_registration_brings_the_competence_check_its_clock_in_missed() -> None:
    shift = Shift("SH-1", "PKG-1", "PRV-1", T0, T0 + timedelta(hours=1), "personal_care", 1,
                  required_competencies=("hoist", "peg_feeding"))
    facts = ShiftFacts(shift, (), None, "LA-1", None, {}, {}, (), ())
    visit, _ = visit_state(facts, DEFAULT_THRESHOLDS)
    registered = {"CR-1": CarerRecord("PRV-1", ("hoist",)), "CR-2": CarerRecord("PRV-1", ("hoist", "peg_feeding")),
                  "CR-4": CarerRecord("PRV-OTHER", ())}
    unknown = [("CR-1@SH-1", "CR-1", "PRV-1", "SH-1"), ("CR-2@SH-1", "CR-2", "PRV-1", "SH-1"),
               ("CR-3@SH-1", "CR-3", "PRV-1", "SH-1"), ("CR-1@SH-GONE", "CR-1", "PRV-1", "SH-GONE"),
               ("CR-4@SH-1", "CR-4", "PRV-1", "SH-1")]
    decisions = registration_decisions(registered, unknown, {"SH-1": visit})
    assert [(d.action, d.subject_id, d.late_data) for d in decisions if d.kind.value == "UNKNOWN_CARER"] == [
        ("resolve", "CR-1@SH-1", True), ("resolve", "CR-2@SH-1", True), ("resolve", "CR-1@SH-GONE", True)]
    assert [(d.kind.value, d.subject_id, d.details, d.commissioner_id) for d in decisions
            if d.kind.value != "UNKNOWN_CARER"] == [
        ("COMPETENCE_MISMATCH", "CR-1@SH-1", {"missing": ["peg_feeding"]}, "LA-1")]


def test_a_registration_judges_the_competences_of_the_clock_ins_waiting_for_it() -> None:
    """A clock-in still waiting raised no UNKNOWN_CARER, so nothing resolves; its competences are judged."""
    shift = Shift("SH-1", "PKG-1", "PRV-1", T0, T0 + timedelta(hours=1), "personal_care", 1,
                  required_competencies=("hoist",))
    visit, _ = visit_state(ShiftFacts(shift, (), None, "LA-1", None, {}, {}, (), ()), DEFAULT_THRESHOLDS)
    registered = {"CR-1": CarerRecord("PRV-1", ()), "CR-2": CarerRecord("PRV-1", ("hoist",))}
    waiting = [("CR-1", "SH-1", "PRV-1"), ("CR-2", "SH-1", "PRV-1"), ("CR-1", "SH-1", "PRV-OTHER")]
    decisions = registration_decisions(registered, [], {"SH-1": visit}, waiting)
    assert [(d.action, d.kind.value, d.subject_id) for d in decisions] == [
        ("raise", "COMPETENCE_MISMATCH", "CR-1@SH-1")]
    # With the alert open as well, it resolves, and the visit is judged once.
    both = registration_decisions(registered, [("CR-1@SH-1", "CR-1", "PRV-1", "SH-1")], {"SH-1": visit}, waiting)
    assert [(d.action, d.kind.value, d.subject_id) for d in both] == [
        ("resolve", "UNKNOWN_CARER", "CR-1@SH-1"), ("raise", "COMPETENCE_MISMATCH", "CR-1@SH-1")]
