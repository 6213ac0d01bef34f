"""The processing clock, injectable so that tests and the demo can run a care day in minutes.

`system` is the wall clock. `accelerated:<sim start>@<real start>x<speed>` maps real
time to simulated time: now = sim_start + (real_now - real_start) * speed, so every
process started with the same setting agrees on "now".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class AcceleratedClock:
    sim_start: datetime
    real_start: datetime
    speed: float

    def now(self) -> datetime:
        real_elapsed = time.time() - self.real_start.timestamp()
        return self.sim_start + timedelta(seconds=real_elapsed * self.speed)

    def real_seconds(self, sim_seconds: float) -> float:
        """How many real seconds pass while `sim_seconds` pass on this clock."""
        return sim_seconds / self.speed

    def spec(self) -> str:
        return f"accelerated:{self.sim_start.isoformat()}@{self.real_start.isoformat()}x{self.speed:g}"


@dataclass
class FixedClock:
    """A clock that moves only when told to: for tests."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current = self.current + timedelta(seconds=seconds)


def parse_clock(spec: str) -> Clock:
    """Build a clock from its setting; raises ValueError with the expected form."""
    if spec in ("", "system"):
        return SystemClock()
    if spec.startswith("accelerated:"):
        body = spec.removeprefix("accelerated:")
        try:
            instants, speed = body.rsplit("x", 1)
            sim, real = instants.split("@", 1)
            return AcceleratedClock(
                datetime.fromisoformat(sim).astimezone(UTC),
                datetime.fromisoformat(real).astimezone(UTC),
                float(speed),
            )
        except ValueError as exc:
            raise ValueError(
                f"bad clock {spec!r}: expected accelerated:<sim start>@<real start>x<speed>"
            ) from exc
    if spec.startswith("fixed:"):
        return FixedClock(datetime.fromisoformat(spec.removeprefix("fixed:")).astimezone(UTC))
    raise ValueError(f"bad clock {spec!r}: expected system, fixed:<instant> or accelerated:...")
