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
