# mypy: disable-error-code="untyped-decorator"
"""The Alert GraphQL type, made from the repository's record (alerts/record.py)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from carewatch.alerts.record import AlertRecord


@strawberry.type
class AlertChange:
    status: str
    changed_at: datetime
    changed_by: str
    note: str | None
    severity: str | None = strawberry.field(
        default=None, description="The new severity, when the change was one of level (BUDGET_AT_RISK).")


@strawberry.type
class Alert:
    id: strawberry.ID
    kind: str
    severity: str
    status: str
    subject_type: str
    subject_id: str
    raised_at: datetime
    resolved_at: datetime | None
    message: str
    package_id: strawberry.ID | None
    shift_id: strawberry.ID | None
    carer_id: strawberry.ID | None
    provider_id: strawberry.ID | None
    commissioner_id: strawberry.ID | None
    caused_by_late_data: bool
    commissioner_ids: list[strawberry.ID] = strawberry.field(
        description="Every commissioner the alert involves: for a carer's or a provider's alert, those of the "
                    "packages concerned.")
    history: list[AlertChange]

    @staticmethod
    def from_record(a: AlertRecord) -> Alert:
        return Alert(
            id=strawberry.ID(str(a.id)),
            kind=a.kind,
            severity=a.severity,
            status=a.status,
            subject_type=a.subject_type,
            subject_id=a.subject_id,
            raised_at=a.raised_at,
            resolved_at=a.resolved_at,
            message=a.message,
            package_id=_id(a.package_id),
            shift_id=_id(a.shift_id),
            carer_id=_id(a.carer_id),
            provider_id=_id(a.provider_id),
            commissioner_id=_id(a.commissioner_id),
            caused_by_late_data=a.caused_by_late_data,
            commissioner_ids=[strawberry.ID(c) for c in a.commissioner_ids or
                              ((a.commissioner_id,) if a.commissioner_id else ())],
            history=[
                AlertChange(status=h.status, changed_at=h.changed_at, changed_by=h.changed_by, note=h.note,
                            severity=h.severity)
                for h in a.history
            ],
        )


def _id(value: str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(value)
