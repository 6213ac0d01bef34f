"""`carewatch faults`: the same feed twice, cleanly and under faults, each on services of its own; every
ledger row, GraphQL figure, event, rejection and alert must come out the same."""

from __future__ import annotations

import argparse
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from carewatch.faults.compare import Comparison, alert_table, compare
from carewatch.faults.feed import FeedShape, build_feed
from carewatch.faults.run import FAULTS, Plan, RunResult, run_once, say

SHORT_FAULTS = ("kill-worker", "postgres-stop", "redis-restart", "broker-restart")


@dataclass
class SuiteResult:
    comparisons: list[Comparison] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.comparisons) and all(c.ok for c in self.comparisons) and \
            not any(r.problems for r in self.runs)


def plan_from_args(args: argparse.Namespace) -> tuple[Plan, tuple[str, ...]]:
    short = bool(getattr(args, "short", False))
    shape = FeedShape(seed=args.seed, packages=args.packages or (48 if short else 360),
                      providers=args.providers or (4 if short else 6),
                      overlaps=args.overlaps if args.overlaps is not None else (8 if short else 30),
                      hostile=not args.no_hostile)
    faults = SHORT_FAULTS if short else FAULTS
    home = Path(args.home) if args.home else \
        Path.cwd() / ".carewatch" / "faults" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    outage = args.postgres_outage if args.postgres_outage is not None else (8.0 if short else 30.0)
    plan = Plan(build_feed(shape), home, rate=args.rate, postgres_outage=outage, chunks=len(faults) + 1,
                stall_seconds=args.stall_seconds)
    return plan, faults


def run_suite(plan: Plan, faults: tuple[str, ...]) -> SuiteResult:
    result = SuiteResult()
    say(f"feed: {plan.feed.describe()}")
    say(f"run 2 faults, one in the middle of each chunk of the feed: {', '.join(faults)}")
    for label, run_faults in (("run 1", ()), ("run 2", faults)):
        say(f"{label}: {'under faults' if run_faults else 'clean'}; everything under {plan.home}")
        try:
            run = run_once(label, plan, run_faults)
        except Exception as exc:  # a run that cannot finish is a failed suite, reported like the rest
            run = RunResult(label, None, problems=[f"the run failed: {type(exc).__name__}: {exc}"])
            say(f"{label}: FAILED: {type(exc).__name__}: {exc}")
        result.runs.append(run)
        say(f"{label}: finished in {run.seconds:.0f} s")
    first, second = (r.snapshot for r in result.runs)
    if first is None or second is None:
        return result
    result.comparisons = compare(first, second)
    return result


def report(result: SuiteResult, plan: Plan) -> str:
    lines = ["", "fault suite: run 2's faults"]
    for run in result.runs:
        lines += [f"  {f.line()}" for f in run.faults]
    problems = [f"  {r.label}: {p}" for r in result.runs for p in r.problems]
    if problems:
        lines += ["fault suite: problems", *problems]
    lines.append("fault suite: run 1 (clean) against run 2 (faults)")
    for c in result.comparisons:
        lines.append(f"  {c.line()}")
        lines += [f"      {d}" for d in c.differences]
    alerts = [r.snapshot.tables.get("alerts (multiset)", {}) if r.snapshot else {} for r in result.runs]
    if len(alerts) == 2:
        counts = plan.feed.counts
        lines += ["fault suite: alerts by kind", alert_table(alerts[0], alerts[1]),
                  f"    (by event time the feed has {counts['overlapping_pairs']} pairs of overlapping visits of "
                  f"{counts['double_booked_carers']} carers: the DOUBLE_BOOKED_CARER cases)"]
    equal = sum(c.ok for c in result.comparisons)
    lines.append(f"fault suite: {equal} of {len(result.comparisons)} comparisons equal"
                 f"{'' if result.ok else ' -- FAILED'}")
    return "\n".join(lines)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_faults(args: argparse.Namespace) -> int:
    plan, faults = plan_from_args(args)
    plan.home.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM stops the services like Ctrl-C does
    started = time.monotonic()
    try:
        result = run_suite(plan, faults)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(report(result, plan), flush=True)
    say(f"took {time.monotonic() - started:.0f} s; logs and snapshots in {plan.home}")
    return 0 if result.ok else 1
