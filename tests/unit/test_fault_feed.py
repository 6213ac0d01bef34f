"""The fault suite's feed is the same for the same seed and holds what it promises; runs compare key by key."""

from __future__ import annotations

import json
from collections import Counter

from carewatch.faults.compare import Snapshot, alert_note, compare, compare_tables
from carewatch.faults.feed import FeedShape, build_feed, invalid_lines, overlapping_pairs
from carewatch.schema.events import CareEvent, validate_event

SHAPE = FeedShape(packages=24, providers=3, overlaps=6)


def test_the_same_shape_gives_the_same_messages_byte_for_byte() -> None:
    assert build_feed(SHAPE).messages == build_feed(SHAPE).messages
    assert build_feed(SHAPE).messages != build_feed(FeedShape(seed=12, packages=24, providers=3)).messages


def test_the_feed_has_repeats_invalid_lines_hostile_input_and_overlaps() -> None:
    feed = build_feed(SHAPE)
    values = Counter(m.value for m in feed.messages)
    assert sum(1 for n in values.values() if n == 3) == feed.counts["tripled"] > 0
    raw = {m.value.decode() for m in feed.messages}
    assert set(invalid_lines()) <= raw
    ids = [json.loads(m.value)["event_id"] for m in feed.messages if m.value.startswith(b"{")]
    assert {"flt11-range-1", "flt11-range-2", "flt11-scope-s", "flt11-scope-u"} <= set(ids)
    assert feed.counts["reordered"] > 0
    assert feed.counts["double_booked_carers"] >= SHAPE.overlaps


def test_the_injected_overlaps_are_valid_and_overlap_by_event_time() -> None:
    events = [validate_event(m.value) for m in build_feed(SHAPE).messages if b"-ovl-" in m.value]
    assert events and all(isinstance(e, CareEvent) for e in events)
    payloads = [e.payload for e in events if isinstance(e, CareEvent)]
    assert overlapping_pairs(payloads) == (0, 0)  # alone, each injected visit overlaps nothing...
    assert build_feed(SHAPE).counts["overlapping_pairs"] >= SHAPE.overlaps  # ...but the carer's other visit


def test_overlapping_pairs_counts_one_carers_simultaneous_visits() -> None:
    def clock(carer: str, shift: str, direction: str, at: str) -> dict[str, str]:
        return {"type": f"visit.clock_{direction}", "carer_id": carer, "shift_id": shift, "occurred_at": at}

    events = [clock("C1", "S1", "in", "2026-04-06T08:00:00Z"), clock("C1", "S1", "out", "2026-04-06T09:00:00Z"),
              clock("C1", "S2", "in", "2026-04-06T08:30:00Z"), clock("C1", "S2", "out", "2026-04-06T09:30:00Z"),
              clock("C1", "S3", "in", "2026-04-06T09:30:00Z"), clock("C1", "S3", "out", "2026-04-06T10:00:00Z"),
              clock("C2", "S4", "in", "2026-04-06T08:30:00Z"), clock("C2", "S4", "out", "2026-04-06T09:30:00Z")]
    assert overlapping_pairs(events) == (1, 1)


def test_comparisons_count_equal_keys_and_show_the_first_differences() -> None:
    first = {"a": {"x": 1, "y": 2}, "b": {"x": 1}, "c": {"x": 3}}
    second = {"a": {"x": 1, "y": 3}, "b": {"x": 1}, "d": {"x": 4}}
    result = compare_tables("t", first, second)
    assert (result.equal, result.total, result.ok) == (1, 4, False)
    assert result.differences[0] == "a: y: 2 -> 3"
    assert "c: " in result.differences[1] and "(absent)" in result.differences[1]
    alerts = {"DOUBLE_BOOKED_CARER|carer|C1|resolved|warning": 2}
    assert alert_note(alerts, {}) == "DOUBLE_BOOKED_CARER 2 vs 0"
    same = compare(Snapshot({"t": first}), Snapshot({"t": dict(first)}))
    assert [c.line().split()[0] for c in same] == ["ok"]
