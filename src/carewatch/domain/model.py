"""The care domain's values: small frozen dataclasses, no I/O (DOMAIN.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

# The default IANA time zone of local rules (DOMAIN.md "Time"); a deployment sets its own with
# CAREWATCH_TIMEZONE and a commissioner with its registration. Written nowhere else.
DEFAULT_TIMEZONE = "Europe/London"

Band = Literal["day", "night", "weekend", "bank_holiday"]
BANDS: tuple[Band, ...] = ("bank_holiday", "weekend", "night", "day")  # highest precedence first

Direction = Literal["in", "out"]


class ShiftStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    LATE = "LATE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    MISSED = "MISSED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Rate:
    service_type: str
    band: Band
    pence_per_hour: int


@dataclass(frozen=True)
class PlanLine:
    service_type: str
    minutes_per_week: int
    carers: int = 1


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    accuracy_m: float = 0.0


@dataclass(frozen=True)
class Package:
    package_id: str
    commissioner_id: str
    provider_id: str
    period_start: date
    period_end: date  # inclusive
    budget_pence: int
    contingency_pence: int
    plan: tuple[PlanLine, ...]
    rates: tuple[Rate, ...]
    timezone: str = DEFAULT_TIMEZONE
    mechanism: str = "commissioned"
    thresholds: tuple[tuple[str, float], ...] = ()
    person_location: Location | None = None


@dataclass(frozen=True)
class Shift:
    shift_id: str
    package_id: str
    provider_id: str
    starts_at: datetime  # aware, UTC
    ends_at: datetime
    service_type: str
    carers_required: int = 1
    carer_ids: tuple[str, ...] = ()
    required_competencies: tuple[str, ...] = ()
    cancelled_by: str | None = None  # person | provider | commissioner

    @property
    def duration_seconds(self) -> int:
        # Via UTC: Python subtracts two datetimes sharing one ZoneInfo by wall time, not instants.
        return int((self.ends_at.astimezone(UTC) - self.starts_at.astimezone(UTC)).total_seconds())


@dataclass(frozen=True)
class ClockEvent:
    """One carer's clock-in or clock-out on a shift; `at` is the event's occurred_at."""

    event_id: str
    shift_id: str
    carer_id: str
    direction: Direction
    at: datetime
    method: str
    location: Location | None = None


@dataclass(frozen=True)
class Correction:
    """A visit.corrected: replaces that carer's attendance on the shift with one pair."""

    event_id: str
    shift_id: str
    carer_id: str
    clock_in_at: datetime
    clock_out_at: datetime
    occurred_at: datetime
    reason_code: str = ""
    corrected_by: str = ""


@dataclass(frozen=True)
class AttendancePair:
    carer_id: str
    clock_in_at: datetime
    clock_out_at: datetime | None
    method: str
    verified: bool
    # Set when a visit.corrected made this pair: its reason code, who made it and when (occurred_at).
    reason_code: str | None = None
    corrected_by: str | None = None
    corrected_at: datetime | None = None

    @property
    def seconds(self) -> int:
        if self.clock_out_at is None:
            return 0
        elapsed = self.clock_out_at.astimezone(UTC) - self.clock_in_at.astimezone(UTC)
        return max(0, int(elapsed.total_seconds()))


@dataclass(frozen=True)
class ShiftLedger:
    """What one shift delivered, in carer-seconds, and what it costs, exactly."""

    shift_id: str
    package_id: str
    provider_id: str
    starts_at: datetime
    planned_seconds: int
    scheduled_seconds: int
    actual_seconds: int
    payable_seconds: int
    overrun_seconds: int
    unverified_seconds: int
    provider_cancelled_seconds: int
    band_seconds: dict[Band, int] = field(default_factory=dict)
    rate_seconds: int = 0  # sum of payable seconds x pence per hour: spend x 3600, exact
    first_clock_in_at: datetime | None = None
    open_attendances: int = 0
    distinct_carers: int = 0
    attendance: tuple[AttendancePair, ...] = ()


@dataclass(frozen=True)
class ShiftFacts:
    """Everything stored about one shift: what its ledger and its visit alert rules start from."""

    shift: Shift
    rates: tuple[Rate, ...]  # the package's
    timezone: str | None  # the commissioner's; None when unknown
    commissioner_id: str | None
    cancelled_at: datetime | None
    package_thresholds: Mapping[str, Any]
    commissioner_thresholds: Mapping[str, Any]
    clocks: tuple[ClockEvent, ...]
    corrections: tuple[Correction, ...]  # oldest first: the last one per carer is the one that counts
