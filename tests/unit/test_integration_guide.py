"""docs/integration.md is the roster vendors' contract: its rejection catalogue must hold every stage and
every reason the code can give (and nothing it cannot), and its limits must be the code's."""

from __future__ import annotations

import json
import re
import typing
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import psycopg
import pytest

from carewatch.domain.ownership import Owners
from carewatch.ingest_http import MAX_BODY_BYTES, MAX_ITEMS
from carewatch.pipeline.processor import culprit_rejection
from carewatch.schema.events import CareEvent, Rejection, RejectionStage, schema_text, validate_event
from carewatch.security.ingest_scope import scope_problem
from carewatch.security.roles import Role, Viewer
from carewatch.settings import Settings
from carewatch.store.held import unresolved_reason
from support import contract_lines

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "integration.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| `(\w+)` \| `(.+)` \| .+ \|$")
GENERIC = "<field>: <message>"

CLOCK_IN = {"event_id": "e-1", "type": "visit.clock_in", "occurred_at": "2026-04-06T07:02:10Z",
            "shift_id": "SH-1", "package_id": "PKG-1", "provider_id": "PRV-A", "carer_id": "CR-1", "method": "nfc"}
CARER = {"event_id": "e-2", "type": "carer.registered", "occurred_at": "2026-04-06T07:02:10Z", "carer_id": "CR-1",
         "provider_id": "PRV-A", "pay_pence_per_hour": 1200}
PACKAGE = {"event_id": "e-3", "type": "package.approved", "occurred_at": "2026-04-06T07:02:10Z",
           "package_id": "PKG-1", "commissioner_id": "LA-1", "provider_id": "PRV-A",
           "person": {"person_id": "P-1", "nhs_number": "9434765919"}, "period_start": "2026-04-01",
           "period_end": "2027-03-31", "budget_pence": 100000,
           "plan": [{"service_type": "personal_care", "minutes_per_week": 60}],
           "rates": [{"service_type": "personal_care", "band": "day", "pence_per_hour": 3214}]}


def catalogue() -> list[tuple[str, str]]:
    rows = [m.groups() for line in GUIDE.splitlines() if (m := ROW.match(line))]
    assert len(rows) > 20, "the catalogue table was not found"
    return [(stage, reason) for stage, reason in rows]


def pattern(reason: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"<[^>]+>", ".+", re.escape(reason).replace(r"\ ", " ")) + "$")


def produced_reasons() -> list[tuple[str, str]]:
    """(stage, reason) for input crafted to reach every rejection the code builds."""
    raw: list[str | bytes] = [*contract_lines("invalid.jsonl"), b"\xff\xfe not utf-8", "[1, 2]"]
    for change in ({"type": None}, {"method": "telepathy"}, {"carer_id": 5}, {"shift_id": "has space"},
                   {"shift_id": "x" * 70}, {"location": {"lat": 123, "lon": 0}}, {"schema_version": 2},
                   {"location": {"lat": 1}}, {"occurred_at": "2026-04-06T07:02:10"}):
        raw.append(json.dumps({**CLOCK_IN, **change}))
    raw.append(json.dumps({k: v for k, v in CLOCK_IN.items() if k != "type"}))
    raw.append(json.dumps({**CARER, "date_of_birth": "1990-02-30"}))
    raw.append(json.dumps({**CARER, "ni_number": "QQ123456C"}))
    raw.append(json.dumps({**PACKAGE, "plan": [], "budget_pence": 1.5}))
    raw.append(json.dumps({**PACKAGE, "period_end": "2026-03-01"}))
    raw.append(json.dumps({"event_id": "e-4", "type": "commissioner.registered", "occurred_at": "2026-04-06T07:02:10Z",
                           "commissioner_id": "LA-1", "name": "X", "timezone": "Mars/Olympus"}))
    found: list[tuple[str, str]] = []
    events: list[CareEvent] = []
    for item in raw:
        result = validate_event(item)
        if isinstance(result, Rejection):
            parts = result.reason.split("; ") if result.stage == "schema" else [result.reason]
            found += [(result.stage, part) for part in parts]
        else:
            events.append(result)
    found.append(("unresolved", unresolved_reason("shift:SH-9", 3600)))
    ingest = Viewer(Role.INGEST, "PRV-B")
    clock_in = validate_event(json.dumps(CLOCK_IN))
    package = validate_event(json.dumps(PACKAGE))
    assert isinstance(clock_in, CareEvent) and isinstance(package, CareEvent)
    for viewer, event in ((ingest, clock_in), (ingest, package), (Viewer(Role.PROVIDER, "PRV-A"), clock_in)):
        problem = scope_problem(viewer, event)
        assert problem is not None
        found.append(("scope", problem))
    shift_clock_in = {**CLOCK_IN, "occurred_at": "2026-04-06T07:10:00Z"}
    raw_more = [json.dumps({**CLOCK_IN, "occurred_at": "9999-12-31T23:59:00-01:00"}),
                json.dumps({**PACKAGE, "period_end": "2200-01-01"}),
                json.dumps({**CARER, "date_of_birth": "1850-01-01"})]
    for item in raw_more:
        result = validate_event(item)
        assert isinstance(result, Rejection), item
        found.append((result.stage, result.reason))
    owners = Owners()
    assert owners.judge("package.approved", PACKAGE, datetime(2026, 3, 1, tzinfo=UTC)) is None
    assert owners.judge("shift.scheduled", {"shift_id": "SH-1", "package_id": "PKG-1", "provider_id": "PRV-A"},
                        datetime(2026, 4, 1, tzinfo=UTC)) is None
    for payload in ({**shift_clock_in, "provider_id": "PRV-B"}, {**shift_clock_in, "package_id": "PKG-2"}):
        problem = owners.judge("visit.clock_in", payload, datetime(2026, 4, 6, tzinfo=UTC))
        assert problem is not None
        found.append(("scope", problem))
    earlier = {"shift_id": "SH-1", "package_id": "PKG-3", "provider_id": "PRV-A"}
    owners.judge("package.approved", {**PACKAGE, "package_id": "PKG-3"}, datetime(2026, 3, 1, tzinfo=UTC))
    assert owners.judge("shift.scheduled", earlier, datetime(2026, 3, 20, tzinfo=UTC)) is None
    found.append(("scope", owners.takeovers[-1].reason))  # an earlier announcement takes the shift over
    found.append(("semantic", culprit_rejection(clock_in, psycopg.DataError("integer out of range")).reason))
    found.append(("internal", culprit_rejection(clock_in, RuntimeError("a fault")).reason))
    with mock.patch("carewatch.schema.events._validate", side_effect=RuntimeError("a fault in a check")):
        failed = validate_event(json.dumps(CLOCK_IN))  # a check that itself fails costs only this event
    assert isinstance(failed, Rejection)
    found.append((failed.stage, failed.reason))
    return found


def test_every_stage_is_in_the_catalogue_and_no_other() -> None:
    assert {stage for stage, _ in catalogue()} == set(typing.get_args(RejectionStage))


def test_every_reason_the_code_gives_is_in_the_catalogue_by_a_specific_row() -> None:
    rows = [(stage, reason, pattern(reason)) for stage, reason in catalogue() if reason != GENERIC]
    used: set[str] = set()
    for stage, reason in produced_reasons():
        matching = [row for s, row, p in rows if s == stage and p.match(reason)]
        assert matching, f"{stage}: {reason!r} matches no row of the catalogue in docs/integration.md"
        used.update(matching)
    unused = {reason for _, reason, _ in rows} - used
    assert not unused, f"catalogue rows no input reached (stale, or untested): {unused}"


def test_the_code_builds_rejections_only_where_this_test_looks() -> None:
    """A new place that rejects input must be added to the catalogue (and to produced_reasons above)."""
    sites = {}
    for path in (ROOT / "src" / "carewatch").rglob("*.py"):
        count = len(re.findall(r"\bRejection\(", path.read_text(encoding="utf-8")))
        if count:
            sites[path.relative_to(ROOT / "src" / "carewatch").as_posix()] = count
    assert sites == {"schema/events.py": 6, "store/held.py": 1, "security/ingest_scope.py": 1,
                     "pipeline/batch.py": 3, "pipeline/processor.py": 2, "ingest_http.py": 1}, sites


def test_every_event_type_and_its_required_fields_are_in_the_guide() -> None:
    schema = json.loads(schema_text())
    for branch in schema["allOf"]:
        condition = branch["if"]["properties"]["type"]
        for kind in condition.get("enum", [condition.get("const")]):
            row = next((line for line in GUIDE.splitlines() if line.startswith(f"| `{kind}` |")), None)
            assert row is not None, kind
            required = branch["then"]["required"]
            if "as `shift.scheduled`" not in row:
                assert all(f"`{name}`" in row for name in required), (kind, required)


@pytest.mark.parametrize("figure", [
    f"{Settings().ingest_rate_per_minute} requests per minute per token", f"{MAX_ITEMS:,} events",
    f"{MAX_BODY_BYTES:,} bytes", f'"limit_bytes": {MAX_BODY_BYTES}', f"{Settings().hold_limit_seconds:,} s",
])
def test_the_limits_are_the_codes(figure: str) -> None:
    assert figure in GUIDE
