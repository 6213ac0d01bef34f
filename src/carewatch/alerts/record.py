"""An alert as the repository stores it and the bus carries it: the one record between the rules'
decisions (domain/alert_rules.AlertDecision) and the GraphQL type (graphql/types/alert.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AlertChange:
    status: str
    changed_at: datetime
    changed_by: str
    note: str | None
    severity: str | None = None  # set when the change was one of level (a graded kind)


@dataclass(frozen=True)
class AlertRecord:
    id: int
    kind: str
    severity: str
    status: str
    subject_type: str
    subject_id: str
    raised_at: datetime
    resolved_at: datetime | None
    updated_at: datetime
    message: str
    package_id: str | None
    shift_id: str | None
    carer_id: str | None
    provider_id: str | None
    commissioner_id: str | None
    caused_by_late_data: bool
    details: dict[str, Any]
    history: tuple[AlertChange, ...] = ()
    # Who the alert reaches (security/roles.Viewer.may_see): the commissioners and providers involved.
    commissioner_ids: tuple[str, ...] = ()
    provider_ids: tuple[str, ...] = ()
