"""Event-driven alerts raised and resolved by apply_batch, in the batch's transaction (real PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from carewatch.alerts.settled import sweep_settled
from carewatch.alerts.sweeps import SweepConfig, sweep_absences
from carewatch.pipeline.batch import apply_batch
from carewatch.schema.events import CareEvent, validate_event

pytestmark = pytest.mark.services

START = datetime(2026, 4, 7, 7, 0, tzinfo=UTC)  # 08:00 London, a Tuesday
HOME = {"lat": 53.4098, "lon": -3.0456}
_n = 0


def ev(type_: str, at: datetime, **fields: Any) -> CareEvent:
    global _n
    _n += 1
    body = {"event_id": f"t-{_n}", "type": type_, "occurred_at": at.isoformat(), **fields}
    result = validate_event(json.dumps(body))
    assert isinstance(result, CareEvent), result
    return result


def setup_events() -> list[CareEvent]:
    t0 = START - timedelta(days=30)
    return [
        ev("commissioner.registered", t0, commissioner_id="LA-1", name="Wirral"),
        ev("provider.registered", t0, provider_id="PRV-1", name="Acorn"),
        ev("provider.registered", t0, provider_id="PRV-2", name="Birch"),
        ev(
            "carer.registered",
            t0,
            carer_id="CR-1",
            provider_id="PRV-1",
            competencies=["medication"],
            pay_pence_per_hour=1300,
        ),
        ev("carer.registered", t0, carer_id="CR-2", provider_id="PRV-2", pay_pence_per_hour=1300),
        ev(
            "package.approved",
            t0,
            package_id="PKG-1",
            commissioner_id="LA-1",
            provider_id="PRV-1",
            person={"person_id": "P-1", "nhs_number": "9434765919", "location": HOME},
            period_start="2026-03-01",
            period_end="2027-02-28",
            budget_pence=1_000_000,
            plan=[{"service_type": "personal_care", "minutes_per_week": 420}],
            rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": 2400}],
        ),
        *[
            ev(
                "shift.scheduled",
                t0,
                shift_id=sid,
                package_id="PKG-1",
                provider_id="PRV-1",
                starts_at=START.isoformat(),
                ends_at=(START + timedelta(minutes=60)).isoformat(),
                service_type="personal_care",
                required_competencies=comps,
            )
            for sid, comps in (("SH-1", ["medication"]), ("SH-2", ["medication", "hoist"]))
        ],
    ]


def visit(kind: str, shift: str, carer: str, at: datetime, **extra: Any) -> CareEvent:
    return ev(
        f"visit.clock_{kind}",
        at,
        shift_id=shift,
        package_id="PKG-1",
        provider_id="PRV-1",
        carer_id=carer,
        method="gps",
        **extra,
    )


async def apply(url: str, events: list[CareEvent], now: datetime) -> Any:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await apply_batch(conn, events, now)


def rows(url: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return set(
            db.execute(
                "SELECT kind, subject_id, status, caused_by_late_data FROM alerts WHERE shift_id = 'SH-1'"
            ).fetchall()
        )


async def test_late_clock_in_resolves_absences_with_late_data_and_raises_visit_alerts(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    await apply(url, setup_events(), START - timedelta(days=1))
    now = START + timedelta(minutes=61)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        assert {a.kind for a in await sweep_absences(conn, now, SweepConfig())} == {
            "LATE_START",
            "MISSED_VISIT",
        }

    # Two hours late, the phone's events arrive: in at 08:05 from 1 km north, out at 08:20.
    far = {"lat": HOME["lat"] + 1000 / 111_195, "lon": HOME["lon"], "accuracy_m": 20}
    outcome = await apply(
        url,
        [
            visit("in", "SH-1", "CR-1", START + timedelta(minutes=5), location=far),
            visit("out", "SH-1", "CR-1", START + timedelta(minutes=20)),
        ],
        START + timedelta(hours=2),
    )
    assert {(a.kind, a.status) for a in outcome.alerts} == {
        ("LATE_START", "auto_resolved"),
        ("MISSED_VISIT", "auto_resolved"),
        ("LOCATION_MISMATCH", "open"),
        ("SHORT_VISIT", "open"),
    }
    assert rows(url) == {
        ("LATE_START", "SH-1", "auto_resolved", True),
        ("MISSED_VISIT", "SH-1", "auto_resolved", True),
        ("LOCATION_MISMATCH", "CR-1@SH-1", "open", False),
        ("SHORT_VISIT", "CR-1@SH-1", "open", False),
    }
    # The same events again (a replay) change nothing.
    again = await apply(
        url, [visit("in", "SH-1", "CR-1", START + timedelta(minutes=5))], START + timedelta(hours=3)
    )
    assert again.alerts == ()


async def test_unknown_carer_competence_and_double_booking(fresh_database_url: str) -> None:
    url = fresh_database_url
    await apply(url, setup_events(), START - timedelta(days=1))
    at = START + timedelta(minutes=1)
    first = await apply(
        url,
        [
            visit("in", "SH-1", "CR-1", at, location=HOME),
            visit("in", "SH-2", "CR-1", at, location=HOME),
            visit("in", "SH-2", "CR-2", at),
        ],
        at,
    )
    assert {(a.kind, a.subject_id) for a in first.alerts} == {
        ("COMPETENCE_MISMATCH", "CR-1@SH-2"),  # lacks the hoist
        ("COMPETENCE_MISMATCH", "CR-2@SH-2"),
        ("DOUBLE_BOOKED_CARER", "CR-1"),
    }
    # CR-2 is registered with PRV-2: UNKNOWN_CARER waits for a registration with PRV-1 to arrive from
    # its partition, and is raised once the wait (60 s by the processing clock) is over.
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        assert await sweep_settled(conn, at + timedelta(seconds=59), SweepConfig()) == []
        settled = await sweep_settled(conn, at + timedelta(seconds=60), SweepConfig())
    assert [(a.kind, a.subject_id, a.details) for a in settled] == [
        ("UNKNOWN_CARER", "CR-2@SH-2", {"registered_provider_id": "PRV-2"})]
    mismatch = next(a for a in first.alerts if a.kind == "COMPETENCE_MISMATCH")
    assert mismatch.details["missing"] == ["hoist"] and mismatch.commissioner_id == "LA-1"
    out = await apply(
        url, [visit("out", "SH-2", "CR-1", at + timedelta(minutes=50))], at + timedelta(minutes=50)
    )
    assert [(a.kind, a.status) for a in out.alerts] == [("DOUBLE_BOOKED_CARER", "auto_resolved")]
