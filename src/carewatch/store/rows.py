"""Database rows to the domain's frozen values: the one place that knows the column layout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from carewatch.domain.model import (
    DEFAULT_TIMEZONE,
    AttendancePair,
    Band,
    Location,
    Package,
    PlanLine,
    Rate,
    Shift,
    ShiftLedger,
)
from carewatch.domain.thresholds import usable_override

Row = dict[str, Any]


@dataclass(frozen=True)
class PackageRecord:
    """A package as the API shows it: the domain value plus the person it is for."""

    package: Package
    person_id: str
    nhs_number: str
    planned_minutes_per_week: Decimal
    # The commissioner's overrides of the alert thresholds, which the package's own override in turn.
    commissioner_thresholds: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class InvoiceLineRecord:
    shift_id: str | None
    service_type: str | None
    minutes: Decimal
    amount_pence: int


@dataclass(frozen=True)
class InvoiceRecord:
    invoice_id: str
    package_id: str
    provider_id: str
    period_start: date
    period_end: date  # inclusive
    total_pence: int
    lines: tuple[InvoiceLineRecord, ...]
    submitted_at: datetime
    event_id: str = ""  # the invoice.submitted that made this version
    status: str | None = None  # the stored match of the latest version (MATCHED, DISPUTED), None before one


def period_bounds(start: date, end_inclusive: date, tz: str) -> tuple[datetime, datetime]:
    """A period of local dates as UTC instants [first midnight, midnight after the last day)."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, time(0), zone).astimezone(UTC)
    hi = datetime.combine(end_inclusive + timedelta(days=1), time(0), zone).astimezone(UTC)
    return lo, hi


def package_from_row(row: Row) -> PackageRecord:
    plan = tuple(
        PlanLine(str(p["service_type"]), int(p["minutes_per_week"]), int(p.get("carers", 1)))
        for p in row["plan"]
    )
    rates = tuple(
        Rate(str(r["service_type"]), cast(Band, r["band"]), int(r["pence_per_hour"])) for r in row["rates"]
    )
    location = None
    if row.get("person_lat") is not None and row.get("person_lon") is not None:
        location = Location(float(row["person_lat"]), float(row["person_lon"]))
    package = Package(
        package_id=row["package_id"],
        commissioner_id=row["commissioner_id"],
        provider_id=row["provider_id"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        budget_pence=int(row["budget_pence"]),
        contingency_pence=int(row["contingency_pence"]),
        plan=plan,
        rates=rates,
        timezone=row.get("timezone") or DEFAULT_TIMEZONE,
        mechanism=row["mechanism"],
        thresholds=overrides(row.get("thresholds")),
        person_location=location,
    )
    return PackageRecord(package, row["person_id"], row["nhs_number"],
                         Decimal(row["planned_minutes_per_week"]), overrides(row.get("commissioner_thresholds")))


def overrides(raw: Any) -> tuple[tuple[str, float], ...]:
    """Threshold overrides as stored (jsonb): the well-formed numbers only, as domain/thresholds.py reads them."""
    if not isinstance(raw, dict):
        return ()
    return tuple(sorted((str(k), n) for k, v in raw.items() if (n := usable_override(v)) is not None))


def shift_from_row(row: Row) -> Shift:
    return Shift(
        shift_id=row["shift_id"],
        package_id=row["package_id"],
        provider_id=row["provider_id"],
        starts_at=row["starts_at"].astimezone(UTC),
        ends_at=row["ends_at"].astimezone(UTC),
        service_type=row["service_type"],
        carers_required=int(row["carers_required"]),
        carer_ids=tuple(row["carer_ids"] or ()),
        required_competencies=tuple(row["required_competencies"] or ()),
        cancelled_by=row["cancelled_by"],
    )


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def attendance_from_json(items: Any) -> tuple[AttendancePair, ...]:
    """The ledger's `attendance` column as store/ledgers.py writes it (camelCase keys)."""
    pairs = []
    for item in items or ():
        clock_in = _instant(item.get("clockInAt"))
        if clock_in is None:
            continue
        pairs.append(AttendancePair(
            carer_id=str(item["carerId"]),
            clock_in_at=clock_in,
            clock_out_at=_instant(item.get("clockOutAt")),
            method=str(item.get("method", "")),
            verified=bool(item.get("verified", True)),
            reason_code=item.get("reasonCode"),
            corrected_by=item.get("correctedBy"),
            corrected_at=_instant(item.get("correctedAt")),
        ))
    return tuple(pairs)


def ledger_from_row(row: Row) -> ShiftLedger:
    return ShiftLedger(
        shift_id=row["shift_id"],
        package_id=row["package_id"],
        provider_id=row["provider_id"],
        starts_at=row["starts_at"].astimezone(UTC),
        planned_seconds=int(row["planned_seconds"]),
        scheduled_seconds=int(row["scheduled_seconds"]),
        actual_seconds=int(row["actual_seconds"]),
        payable_seconds=int(row["payable_seconds"]),
        overrun_seconds=int(row["overrun_seconds"]),
        unverified_seconds=int(row["unverified_seconds"]),
        provider_cancelled_seconds=int(row["provider_cancelled_seconds"]),
        band_seconds={
            "day": int(row["day_seconds"]),
            "night": int(row["night_seconds"]),
            "weekend": int(row["weekend_seconds"]),
            "bank_holiday": int(row["bank_holiday_seconds"]),
        },
        rate_seconds=int(row["rate_seconds"]),
        first_clock_in_at=_instant(row["first_clock_in_at"]),
        open_attendances=int(row["open_attendances"]),
        distinct_carers=int(row["distinct_carers"]),
        attendance=attendance_from_json(row["attendance"]),
    )


def invoice_from_row(row: Row) -> InvoiceRecord:
    lines = tuple(
        InvoiceLineRecord(
            shift_id=line.get("shift_id"),
            service_type=line.get("service_type"),
            minutes=Decimal(str(line.get("minutes", 0))),
            amount_pence=int(line.get("amount_pence", 0)),
        )
        for line in row["lines"]
    )
    return InvoiceRecord(
        invoice_id=row["invoice_id"],
        package_id=row["package_id"],
        provider_id=row["provider_id"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        total_pence=int(row["total_pence"]),
        lines=lines,
        submitted_at=row["submitted_at"],
        event_id=str(row.get("event_id") or ""),
        status=row.get("status"),
    )
