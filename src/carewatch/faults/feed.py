"""The fault suite's one deterministic feed: a simulated care day, made hostile the way real feeds are.

From a seed: the simulator's day, plus carers clocked in on two visits at once (across packages and
providers, so DOUBLE_BOOKED_CARER has real cases), 5% of events moved later in the stream, some sent
three times, the contract's invalid examples mixed in, and (unless left out) the hostile input of
issue 8: instants out of range, and providers writing into another provider's package.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from carewatch.simulator.feed import generate_feed, instant
from carewatch.simulator.options import FeedOptions
from carewatch.simulator.sinks import encode, message_key

FAULT_START = datetime(2026, 4, 6, 5, 0, tzinfo=UTC)  # a fixed Monday, 06:00 in London
REPO = Path(__file__).resolve().parents[3]
INVALID_EXAMPLES = (REPO.parent / "shared" / "contracts" / "examples" / "invalid.jsonl",
                    REPO / "tests" / "fixtures" / "contracts" / "invalid.jsonl")


@dataclass(frozen=True)
class FeedShape:
    """The knobs of the feed; the same shape always gives the same messages, byte for byte."""

    seed: int = 11
    packages: int = 360
    providers: int = 6
    days: float = 1.0
    reorder_share: float = 0.05  # events moved later in the stream
    reorder_span: int = 40  # by up to this many messages
    triple_share: float = 0.02  # events sent three times
    overlaps: int = 30  # injected visits overlapping another visit of the same carer
    hostile: bool = True  # issue 8's out-of-range instants and cross-provider writes
    invalid_path: Path | None = None  # the contract's invalid examples; found beside the repo by default

    @property
    def start(self) -> datetime:
        return FAULT_START

    @property
    def end(self) -> datetime:
        return FAULT_START + timedelta(days=self.days)


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes

    def tracking_id(self) -> str:
        """What shows that this message was dealt with: its event_id, else its raw text."""
        try:
            data = json.loads(self.value)
        except ValueError:
            return "raw:" + self.value.decode("utf-8", "replace")
        event_id = data.get("event_id") if isinstance(data, dict) else None
        if isinstance(event_id, str) and event_id:
            return "id:" + event_id
        return "raw:" + self.value.decode("utf-8", "replace")


@dataclass(frozen=True)
class FaultFeed:
    shape: FeedShape
    messages: tuple[Message, ...]
    counts: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        c = self.counts
        return (f"{len(self.messages)} messages: {c['simulated']} simulated events, {c['overlap']} in "
                f"{self.shape.overlaps} injected overlapping visits, {c['reordered']} moved later, "
                f"{c['tripled']} sent three times, {c['invalid']} contract-invalid lines, {c['hostile']} hostile; "
                f"by event time {c['overlapping_pairs']} pairs of overlapping visits of "
                f"{c['double_booked_carers']} carers (DOUBLE_BOOKED_CARER cases)")


def invalid_lines(path: Path | None = None) -> list[str]:
    """The contract's invalid examples (shared/ beside the repo when there, else the tests' copy)."""
    for candidate in (path,) if path else INVALID_EXAMPLES:
        if candidate.exists():
            return [line for line in candidate.read_text(encoding="utf-8").splitlines() if line.strip()]
    raise FileNotFoundError(f"no invalid examples at {', '.join(str(p) for p in INVALID_EXAMPLES)}")


def _at(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00"))


def _local(dt: datetime) -> str:
    return instant(dt)


@dataclass(frozen=True)
class _Visit:
    shift_id: str
    package_id: str
    provider_id: str
    carer_id: str
    clock_in: datetime
    clock_out: datetime


def _visits(feed: Sequence[Mapping[str, Any]]) -> list[_Visit]:
    """Attended visits with one clock-in and one clock-out and no correction, in feed order."""
    ins: dict[tuple[str, str], Mapping[str, Any]] = {}
    outs: dict[tuple[str, str], Mapping[str, Any]] = {}
    corrected: set[tuple[str, str]] = set()
    for e in feed:
        if e["type"] in ("visit.clock_in", "visit.clock_out", "visit.corrected"):
            key = (str(e["shift_id"]), str(e["carer_id"]))
            {"visit.clock_in": ins, "visit.clock_out": outs}.get(str(e["type"]), {})[key] = e
            if e["type"] == "visit.corrected":
                corrected.add(key)
    found = []
    for key, cin in ins.items():
        cout = outs.get(key)
        if cout is None or key in corrected or _at(cout) - _at(cin) < timedelta(minutes=20):
            continue
        found.append(_Visit(key[0], str(cin["package_id"]), str(cin["provider_id"]), key[1], _at(cin),
                            _at(cout)))
    return found


def overlapping_pairs(events: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """By event time: pairs of one carer's visits (clock-in to clock-out) that overlap, and the carers."""
    spans: dict[tuple[str, str], list[datetime]] = {}
    for e in events:
        if e["type"] in ("visit.clock_in", "visit.clock_out"):
            spans.setdefault((str(e["carer_id"]), str(e["shift_id"])), []).append(_at(e))
    by_carer: dict[str, list[tuple[datetime, datetime]]] = {}
    for (carer, _shift), times in spans.items():
        by_carer.setdefault(carer, []).append((min(times), max(times)))
    pairs, carers = 0, 0
    for visits in by_carer.values():
        found = sum(1 for i, a in enumerate(visits) for b in visits[i + 1:] if a[0] < b[1] and b[0] < a[1])
        pairs += found
        carers += found > 0
    return pairs, carers


def _overlaps(rng: random.Random, feed: Sequence[Mapping[str, Any]], count: int,
              seed: int) -> list[dict[str, Any]]:
    """`count` extra visits, each by a carer already on another visit at the time, on another package
    (every third of another provider); each a shift.scheduled, a clock-in and a clock-out."""
    packages = [e for e in feed if e["type"] == "package.approved"]
    visits = _visits(feed)
    if count <= 0 or not visits or len(packages) < 2:
        return []
    events: list[dict[str, Any]] = []
    for n, visit in enumerate(rng.sample(visits, min(count, len(visits))), start=1):
        other_provider = n % 3 == 0
        choices = [p for p in packages if p["package_id"] != visit.package_id
                   and (p["provider_id"] != visit.provider_id) == other_provider]
        if not choices:
            continue
        package = rng.choice(choices)
        service = str(package["plan"][0]["service_type"])
        clock_in = visit.clock_in + (visit.clock_out - visit.clock_in) / 3
        clock_in = clock_in.replace(microsecond=0)
        starts = clock_in.replace(second=0) - timedelta(minutes=2)
        clock_out = clock_in + timedelta(minutes=rng.randint(10, 25))
        ids = {"shift_id": f"SH-OVL-{seed}-{n:03d}", "package_id": package["package_id"],
               "provider_id": package["provider_id"]}
        base = {"source": "carewatch-faults", "schema_version": 1}
        eid = f"flt{seed}-ovl-{n:03d}"
        events += [
            {"event_id": f"{eid}-s", "type": "shift.scheduled", "occurred_at": _local(starts - timedelta(hours=2)),
             **base, **ids, "starts_at": _local(starts), "ends_at": _local(starts + timedelta(minutes=30)),
             "service_type": service, "carers_required": 1, "carer_ids": [visit.carer_id],
             "required_competencies": []},
            {"event_id": f"{eid}-i", "type": "visit.clock_in", "occurred_at": _local(clock_in), **base, **ids,
             "carer_id": visit.carer_id, "method": "telephony"},
            {"event_id": f"{eid}-o", "type": "visit.clock_out", "occurred_at": _local(clock_out), **base, **ids,
             "carer_id": visit.carer_id, "method": "telephony"},
        ]
    return events


def _hostile(rng: random.Random, feed: Sequence[Mapping[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Issue 8's valid-looking but hostile input: instants far out of range, a provider announcing a
    shift (and attendance) in another provider's package, and one re-announcing another's shift."""
    clock_ins = [e for e in feed if e["type"] == "visit.clock_in"]
    scheduled = [e for e in feed if e["type"] == "shift.scheduled"]
    carers = [e for e in feed if e["type"] == "carer.registered"]
    packages = [e for e in feed if e["type"] == "package.approved"]
    found: list[dict[str, Any]] = []
    for n, when in enumerate(("9999-12-31T23:59:00-01:00", "0001-01-01T00:00:00+01:00"), start=1):
        found.append({**rng.choice(clock_ins), "event_id": f"flt{seed}-range-{n}", "occurred_at": when})
    victim = rng.choice(scheduled)
    intruder = next((c for c in carers if c["provider_id"] != victim["provider_id"]), None)
    if intruder is None:
        return found
    at = _at(victim)
    ids = {"shift_id": f"SH-SCOPE-{seed}-1", "package_id": victim["package_id"],
           "provider_id": intruder["provider_id"]}
    start = datetime.fromisoformat(str(victim["starts_at"])).astimezone(UTC)
    found += [
        {**victim, **ids, "event_id": f"flt{seed}-scope-s", "occurred_at": _local(at + timedelta(minutes=1)),
         "carer_ids": [intruder["carer_id"]]},
        {"event_id": f"flt{seed}-scope-i", "type": "visit.clock_in", "occurred_at": _local(start),
         "source": "carewatch-faults", "schema_version": 1, **ids, "carer_id": intruder["carer_id"],
         "method": "telephony"},
        {"event_id": f"flt{seed}-scope-o", "type": "visit.clock_out",
         "occurred_at": _local(start + timedelta(hours=8)), "source": "carewatch-faults", "schema_version": 1,
         **ids, "carer_id": intruder["carer_id"], "method": "telephony"},
    ]
    # Another provider re-announces the victim's shift in one of its own packages, later on.
    own = next((p for p in packages if p["provider_id"] == intruder["provider_id"]), None)
    if own is not None:
        found.append({**victim, "event_id": f"flt{seed}-scope-u", "type": "shift.updated",
                      "occurred_at": _local(at + timedelta(minutes=30)), "package_id": own["package_id"],
                      "provider_id": intruder["provider_id"]})
    return found


def build_feed(shape: FeedShape) -> FaultFeed:
    """The messages of `shape`, in the order they are produced."""
    rng = random.Random(f"faults-{shape.seed}")
    feed = generate_feed(FeedOptions(start=shape.start, seed=shape.seed, packages=shape.packages,
                                     providers=shape.providers, days=shape.days, invoices=3))
    overlap = _overlaps(rng, feed, shape.overlaps, shape.seed)
    valid = sorted([*feed, *overlap], key=_at)  # stable: the simulator's order kept at equal instants
    # Each event's place in the stream; a moved one goes a few places later, a repeat further on.
    placed: list[tuple[float, Message]] = []
    reordered = tripled = 0
    for i, event in enumerate(valid):
        message = Message(message_key(event).encode() or None, encode(event))
        place = float(i)
        if rng.random() < shape.reorder_share:
            place += rng.randint(1, shape.reorder_span) + 0.5
            reordered += 1
        placed.append((place, message))
        if rng.random() < shape.triple_share:
            placed += [(i + rng.randint(1, 300) + 0.25, message) for _ in range(2)]
            tripled += 1
    invalid = invalid_lines(shape.invalid_path)
    for line in invalid:
        placed.append((rng.uniform(0, len(valid)), Message(None, line.encode())))
    hostile = _hostile(rng, feed, shape.seed) if shape.hostile else []
    for event in hostile:
        # Out of range in the middle of the stream; the others after what they copy.
        place = rng.uniform(len(valid) * 0.3, len(valid) * 0.7) if "range" in str(event["event_id"]) else \
            next((i for i, e in enumerate(valid) if _at(e) > _at(event)), len(valid)) + 0.75
        placed.append((place, Message(message_key(event).encode() or None, encode(event))))
    placed.sort(key=lambda p: p[0])
    pairs, carers = overlapping_pairs(valid)
    counts = {"simulated": len(feed), "overlap": len(overlap), "reordered": reordered, "tripled": tripled,
              "invalid": len(invalid), "hostile": len(hostile), "overlapping_pairs": pairs,
              "double_booked_carers": carers}
    return FaultFeed(shape, tuple(m for _, m in placed), counts)
