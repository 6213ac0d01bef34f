"""DOUBLE_BOOKED_CARER by event time (domain/double_booking.py): order-free, settled or current."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from carewatch.domain.double_booking import RecordedOverlap, Stint, double_booking, overlaps

T0 = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_back_to_back_visits_do_not_overlap() -> None:
    assert overlaps([Stint("A", at(0), at(60)), Stint("B", at(60), at(120))]) == []


def test_a_finished_overlap_is_settled_with_its_span_and_shifts() -> None:
    [o] = overlaps([Stint("A", at(0), at(60)), Stint("B", at(30), at(90))])
    assert (o.start, o.end, o.shift_ids, o.settled) == (at(30), at(60), ("A", "B"), True)


def test_an_overlap_with_an_open_visit_is_current_and_not_settled() -> None:
    [o] = overlaps([Stint("A", at(0), None), Stint("B", at(30), None)])
    assert (o.start, o.end, o.settled) == (at(30), None, False)
    # Ended (B clocked out) while A is still open: over, but a clock-out in flight may undo it.
    [o] = overlaps([Stint("A", at(0), None), Stint("B", at(30), at(50))])
    assert (o.end, o.settled) == (at(50), False)


def test_two_separate_overlaps_and_a_third_visit_joining() -> None:
    found = overlaps([Stint("A", at(0), at(200)), Stint("B", at(10), at(20)), Stint("C", at(100), at(110)),
                      Stint("D", at(105), at(300))])
    assert [(o.start, o.end, o.shift_ids) for o in found] == [
        (at(10), at(20), ("A", "B")), (at(100), at(200), ("A", "C", "D"))]


@given(st.permutations(list(range(6))))
def test_the_order_of_the_intervals_changes_nothing(order: list[int]) -> None:
    stints = [Stint(f"S{i}", at(i * 25), at(i * 25 + 40)) for i in range(6)]
    assert overlaps([stints[i] for i in order]) == overlaps(stints)


def test_settled_overlap_never_alerted_is_recorded_raised_and_resolved() -> None:
    plan = double_booking("CR-1", "PRV-1", [Stint("A", at(0), at(60)), Stint("B", at(30), at(90))], [], at(500))
    assert plan.resolve is None and plan.raise_now is None
    [d] = plan.record
    assert d.action == "raise" and d.details["overlap_start"] == at(30).isoformat()
    assert "CR-1" in d.message and "A, B" in d.message
    # Recorded once: evaluating the same facts again records nothing more.
    again = double_booking("CR-1", "PRV-1", [Stint("A", at(0), at(60)), Stint("B", at(30), at(90))],
                           [RecordedOverlap(at(30), False)], at(500))
    assert again == type(again)()


def test_current_overlap_is_raised_only_once_it_has_begun_by_processing_time() -> None:
    stints = [Stint("A", at(0), None), Stint("B", at(30), None)]
    assert double_booking("CR-1", None, stints, [], at(29)).raise_now is None
    raised = double_booking("CR-1", None, stints, [], at(30)).raise_now
    assert raised is not None and raised.action == "raise"
    # Already open for it: nothing new.
    assert double_booking("CR-1", None, stints, [RecordedOverlap(at(30), True)], at(40)).raise_now is None


def test_an_open_alert_resolves_when_its_overlap_ends_and_as_late_data_when_it_proves_false() -> None:
    open_alert = [RecordedOverlap(at(30), True)]
    ended = double_booking("CR-1", None, [Stint("A", at(0), at(45)), Stint("B", at(30), None)], open_alert, at(50))
    assert ended.resolve is not None and not ended.resolve.late_data and ended.record == ()
    # A's clock-out arrives late and shows A ended before B began: there was no overlap.
    false = double_booking("CR-1", None, [Stint("A", at(0), at(20)), Stint("B", at(30), None)], open_alert, at(50))
    assert false.resolve is not None and false.resolve.late_data


def test_any_arrival_order_records_the_same_settled_overlaps() -> None:
    final = [Stint("A", at(0), at(60)), Stint("B", at(30), at(90)), Stint("C", at(200), at(260)),
             Stint("D", at(250), at(300))]
    for seed in range(20):
        arrival = random.Random(seed).sample(final, len(final))
        recorded: list[RecordedOverlap] = []
        for k in range(1, len(arrival) + 1):
            # The facts as they stand after each arrival: settled overlaps are recorded once each.
            plan = double_booking("CR-1", None, arrival[:k], recorded, at(-100))
            recorded += [RecordedOverlap(datetime.fromisoformat(d.details["overlap_start"]), False)
                         for d in plan.record]
        assert sorted(r.start for r in recorded if r.start) == [at(30), at(250)]
