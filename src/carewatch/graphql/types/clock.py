# mypy: disable-error-code="untyped-decorator"
"""ProcessingClock: the time the API works to, real or simulated, and today's bounds in the service's zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import strawberry

from carewatch.clock import AcceleratedClock, Clock, FixedClock


def clock_speed(clock: Clock) -> float:
    """Simulated seconds per real second: 1 on the wall clock, 0 on a clock that only moves when told."""
    if isinstance(clock, AcceleratedClock):
        return clock.speed
    if isinstance(clock, FixedClock):
        return 0.0
    return 1.0


def local_day(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the local calendar day holding `now`, in UTC (23 or 25 hours at a clock change)."""
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@strawberry.type(description="The processing clock the API works to: the wall clock, or a simulated one.")
class ProcessingClock:
    now: datetime
    speed: float = strawberry.field(
        description="Simulated seconds per real second: 1 on the wall clock, 0 on a fixed clock.")
    simulated: bool = strawberry.field(description="True unless this is the wall clock.")
    time_zone: str = strawberry.field(description="The service's time zone (CAREWATCH_TIMEZONE).")
    today_starts_at: datetime = strawberry.field(description="Local midnight that starts today, in UTC.")
    today_ends_at: datetime = strawberry.field(description="Local midnight that ends today, in UTC.")

    @classmethod
    def read(cls, clock: Clock, time_zone: str) -> ProcessingClock:
        now = clock.now()
        speed = clock_speed(clock)
        start, end = local_day(now, ZoneInfo(time_zone))
        return cls(now=now, speed=speed, simulated=isinstance(clock, (AcceleratedClock, FixedClock)),
                   time_zone=time_zone, today_starts_at=start, today_ends_at=end)
