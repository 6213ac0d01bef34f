"""Who sees which alert: one rule (Viewer.reach / may_see) for SQL and for alerts from the bus, and which
commissioners a carer's or a provider's alert involves (domain/audience.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from psycopg import sql

from carewatch.alerts.bus import from_wire, to_wire
from carewatch.alerts.record import AlertRecord
from carewatch.domain.alert_rules import AlertDecision, AlertKind
from carewatch.domain.audience import Involvement, involvement, iso_week_bounds
from carewatch.graphql.resolvers.alerts import visible
from carewatch.security.roles import Role, Viewer
from carewatch.store.scope import scope_condition

NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


def _carer_alert(**more: object) -> AlertRecord:
    fields: dict[str, object] = dict(
        id=1, kind="DOUBLE_BOOKED_CARER", severity="warning", status="open", subject_type="carer",
        subject_id="CR-2", raised_at=NOW, resolved_at=None, updated_at=NOW, message="m", package_id=None,
        shift_id=None, carer_id="CR-2", provider_id="PRV-A", commissioner_id=None, caused_by_late_data=False,
        details={}, commissioner_ids=("LA-1", "LA-2"), provider_ids=("PRV-A",))
    fields.update(more)
    return AlertRecord(**fields)  # type: ignore[arg-type]


def test_a_carer_alert_reaches_each_commissioner_involved_and_only_its_provider() -> None:
    alert = from_wire(json.loads(json.dumps(to_wire(_carer_alert()))))  # as the API's subscriptions receive it
    assert visible(Viewer(Role.COMMISSIONER, "LA-1"), alert)
    assert visible(Viewer(Role.SAFEGUARDING, "LA-2"), alert)
    assert visible(Viewer(Role.PROVIDER, "PRV-A"), alert)
    assert visible(Viewer(Role.ADMIN, None), alert)
    assert not visible(Viewer(Role.COMMISSIONER, "LA-3"), alert)
    assert not visible(Viewer(Role.PROVIDER, "PRV-B"), alert)
    assert not visible(Viewer(Role.INGEST, "PRV-A"), alert)


def test_an_alert_without_lists_falls_back_to_its_own_commissioner_and_provider() -> None:
    alert = _carer_alert(commissioner_id="LA-9", commissioner_ids=(), provider_ids=())
    assert visible(Viewer(Role.COMMISSIONER, "LA-9"), alert)
    assert not visible(Viewer(Role.COMMISSIONER, "LA-1"), alert)


def test_the_sql_is_the_same_rule() -> None:
    def text(viewer: Viewer, arrays: bool) -> tuple[str, list[str]]:
        condition, params = scope_condition(viewer, "a.commissioner_ids", "a.provider_ids", arrays=arrays)
        return condition.as_string(None), params  # type: ignore[arg-type]

    assert text(Viewer(Role.COMMISSIONER, "LA-1"), True) == ('"a"."commissioner_ids" @> ARRAY[%s]::text[]', ["LA-1"])
    assert text(Viewer(Role.PROVIDER, "PRV-A"), False) == ('"a"."provider_ids" = %s', ["PRV-A"])
    assert text(Viewer(Role.ADMIN, None), True) == ("TRUE", [])
    assert text(Viewer(Role.INGEST, "PRV-A"), True) == ("FALSE", [])
    assert isinstance(scope_condition(Viewer(Role.ADMIN, None), "x", "y")[0], sql.Composable)


def test_what_a_carer_or_provider_alert_involves() -> None:
    booked = AlertDecision("raise", AlertKind.DOUBLE_BOOKED_CARER, "carer", "CR-2", carer_id="CR-2",
                           details={"shift_ids": ["SH-1", "SH-2"]})
    assert involvement(booked, NOW) == Involvement(carer_id="CR-2", shift_ids=("SH-1", "SH-2"))
    # ISO week 2026-W16 runs from Monday 13 April 00:00 BST (12 April 23:00 UTC) for 7 days.
    pay = AlertDecision("raise", AlertKind.PAY_BELOW_MINIMUM, "carer", "CR-3", carer_id="CR-3",
                        details={"week": "2026-W16"})
    start = datetime(2026, 4, 12, 23, 0, tzinfo=UTC)
    assert involvement(pay, NOW) == Involvement(carer_id="CR-3", start=start, end=start + timedelta(days=7))
    no_week = AlertDecision("raise", AlertKind.PAY_BELOW_MINIMUM, "carer", "CR-3", carer_id="CR-3")
    assert involvement(no_week, NOW) == Involvement(carer_id="CR-3", start=NOW - timedelta(days=7), end=NOW)
    pattern = AlertDecision("raise", AlertKind.PROVIDER_PATTERN, "provider", "PRV-A", provider_id="PRV-A")
    assert involvement(pattern, NOW) == Involvement(provider_id="PRV-A")
    # Resolutions and package alerts need nothing looked up.
    assert involvement(AlertDecision("resolve", AlertKind.PROVIDER_PATTERN, "provider", "PRV-A"), NOW) is None
    assert involvement(AlertDecision("raise", AlertKind.BUDGET_AT_RISK, "package", "PKG"), NOW) is None
    # A carer's part in one visit (LONE_WORKER_OVERDUE on CR-2@SH-1) reaches that visit's commissioner only.
    lone = AlertDecision("raise", AlertKind.LONE_WORKER_OVERDUE, "carer", "CR-2@SH-1", carer_id="CR-2",
                         package_id="PKG", commissioner_id="LA-1")
    assert involvement(lone, NOW) is None
    assert iso_week_bounds("not a week") is None
