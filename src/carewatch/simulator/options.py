"""What a simulated feed looks like: the knobs of the `simulate`, `demo` and `bench` commands."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from carewatch.domain.model import DEFAULT_TIMEZONE


@dataclass(frozen=True)
class FeedOptions:
    start: datetime  # aware; the simulated instant the care day begins
    seed: int = 7
    packages: int = 36
    providers: int = 4
    days: float = 1.0
    late_rate: float = 0.10
    miss_rate: float = 0.03
    short_rate: float = 0.06
    cancel_rate: float = 0.04
    timezone: str = DEFAULT_TIMEZONE
    invoices: int = 3  # packages whose provider invoices at the end of the window

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def coming_monday(now: datetime, tz: ZoneInfo) -> datetime:
    """The next Monday 06:00 local (today, if it is Monday before 06:00), as an aware UTC instant."""
    local = now.astimezone(tz)
    monday = local.date() + timedelta(days=(7 - local.weekday()) % 7)
    candidate = datetime.combine(monday, time(6, 0), tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(monday + timedelta(days=7), time(6, 0), tzinfo=tz)
    return candidate.astimezone(UTC)


def parse_start(text: str | None, now: datetime, tz: ZoneInfo) -> datetime:
    """`--start` as an aware UTC instant; a bare local time means the given zone; none: coming Monday."""
    if not text:
        return coming_monday(now, tz)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def options_from_args(args: argparse.Namespace, start: datetime, timezone: str) -> FeedOptions:
    """The feed the command line asked for, starting at `start`."""
    return FeedOptions(
        start=start,
        seed=args.seed,
        packages=max(1, args.packages),
        providers=max(1, min(args.providers, args.packages)),
        days=args.days,
        late_rate=args.late_rate,
        miss_rate=args.miss_rate,
        short_rate=args.short_rate,
        cancel_rate=args.cancel_rate,
        timezone=timezone,
    )
