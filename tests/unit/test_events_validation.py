"""validate_event against the contract examples and the semantic rules of DOMAIN.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from carewatch.schema.events import CareEvent, Rejection, message_key, validate_event
from support import contract_lines, contract_objects


def _good(kind: str) -> dict[str, object]:
    for line in contract_lines("valid.jsonl"):
        data = json.loads(line)
        if data["type"] == kind:
            return data
    raise AssertionError(kind)


@pytest.mark.parametrize("line", contract_lines("valid.jsonl"))
def test_every_valid_example_is_accepted(line: str) -> None:
    result = validate_event(line)
    assert isinstance(result, CareEvent), result
    assert result.occurred_at.tzinfo is not None and result.occurred_at.utcoffset().total_seconds() == 0
    assert result.raw == line
    assert result.key == message_key(result.payload) and result.key


@pytest.mark.parametrize("line", contract_lines("invalid.jsonl"))
def test_every_invalid_example_is_rejected_with_a_reason(line: str) -> None:
    result = validate_event(line.encode())
    assert isinstance(result, Rejection), result
    assert result.stage in ("decode", "schema", "semantic")
    assert len(result.reason) > 10
    assert result.raw == line


def _reason_of(line: str) -> Rejection:
    result = validate_event(line)
    assert isinstance(result, Rejection)
    return result


def test_reasons_name_the_field_and_the_rule() -> None:
    by_id = {}
    for line in contract_lines("invalid.jsonl"):
        r = _reason_of(line)
        by_id[r.event_id] = r
    assert by_id["bad-1"].reason == (
        "occurred_at: '2026-04-06T07:02:10' is not a valid RFC 3339 date-time with offset")
    assert by_id["bad-2"].reason.startswith("type: 'visit.teleport' is not a known event type")
    assert by_id[""].reason == "event_id: must not be empty"
    assert by_id["bad-4"].stage == "semantic"
    assert "person.nhs_number" in by_id["bad-4"].reason and "modulus 11" in by_id["bad-4"].reason
    assert by_id["bad-5"].stage == "semantic"
    assert by_id["bad-5"].reason.startswith("ends_at: '2026-04-06T08:00:00Z' must be after starts_at")
    assert by_id["bad-6"].reason.startswith("location.lat: 123 is greater than the maximum of 90")
    assert by_id["bad-8"].reason.startswith("pay_pence_per_hour:")
    decode = [r for r in by_id.values() if r.stage == "decode"]
    assert len(decode) == 1 and decode[0].event_id is None and "not JSON" in decode[0].reason


def test_occurred_at_is_converted_to_utc() -> None:
    data = _good("visit.clock_in") | {"occurred_at": "2026-04-06T08:02:10+01:00"}
    result = validate_event(json.dumps(data))
    assert isinstance(result, CareEvent)
    assert result.occurred_at == datetime(2026, 4, 6, 7, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "change", "field"),
    [
        ("carer.registered", {"ni_number": "QQ123456C"}, "ni_number"),
        ("commissioner.registered", {"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ("package.approved", {"period_end": "2026-03-31"}, "period_end"),
        ("invoice.submitted", {"period_end": "2026-03-01"}, "period_end"),
        ("shift.scheduled", {"ends_at": "2026-04-06T08:00:00+01:00"}, "ends_at"),
    ],
)
def test_semantic_rules(kind: str, change: dict[str, object], field: str) -> None:
    result = validate_event(json.dumps(_good(kind) | change))
    assert isinstance(result, Rejection)
    assert result.stage == "semantic" and result.reason.startswith(f"{field}:")


def test_valid_ni_number_passes_and_correction_order_is_checked() -> None:
    assert isinstance(validate_event(json.dumps(_good("carer.registered") | {"ni_number": "AB123456C"})),
                      CareEvent)
    zone = {"timezone": "Europe/London"}
    assert isinstance(validate_event(json.dumps(_good("commissioner.registered") | zone)), CareEvent)
    corrected = {
        "event_id": "c-1", "type": "visit.corrected", "occurred_at": "2026-04-06T10:00:00Z",
        "shift_id": "SH-1", "package_id": "PKG-100", "provider_id": "PRV-ACORN", "carer_id": "CR-001",
        "clock_in_at": "2026-04-06T07:00:00Z", "clock_out_at": "2026-04-06T07:30:00Z",
        "reason_code": "device_failure", "corrected_by": "coordinator-1",
    }
    assert isinstance(validate_event(json.dumps(corrected)), CareEvent)
    bad = validate_event(json.dumps(corrected | {"clock_out_at": "2026-04-06T06:59:00Z"}))
    assert isinstance(bad, Rejection) and bad.reason.startswith("clock_out_at:")


def test_date_format_and_missing_fields() -> None:
    bad = validate_event(json.dumps(_good("invoice.submitted") | {"period_start": "2026-02-30"}))
    assert isinstance(bad, Rejection)
    assert bad.reason.startswith("period_start: '2026-02-30' is not a valid date")
    data = _good("visit.clock_in")
    del data["shift_id"]
    missing = validate_event(json.dumps(data))
    assert isinstance(missing, Rejection) and missing.reason == "shift_id: is required"


def test_non_object_and_non_utf8_are_decode_rejections() -> None:
    assert _reason_of("[1, 2]").stage == "decode"
    result = validate_event(b"\xff\xfe{")
    assert isinstance(result, Rejection) and result.stage == "decode"


def test_specialised_validators_agree_with_the_whole_schema() -> None:
    from carewatch.schema.events import _schema_errors, _validator, _validators_by_type

    assert len(_validators_by_type()) == 12  # one per event type in the contract
    for data in contract_objects("valid.jsonl", "invalid.jsonl"):
        variants = [data, data | {"type": "visit.clock_out"}, data | {"type": "package.approved"}]
        for variant in variants:
            whole = sorted(e.message for e in _validator().iter_errors(variant))
            assert sorted(e.message for e in _schema_errors(variant)) == whole


@pytest.mark.parametrize(("kind", "field", "value"), [
    ("shift.scheduled", "occurred_at", "9999-12-31T23:59:00-01:00"),  # overflowed converting to UTC
    ("shift.scheduled", "occurred_at", "0001-01-01T00:00:00+01:00"),
    ("shift.scheduled", "occurred_at", "1999-12-31T23:59:59Z"),
    ("shift.scheduled", "occurred_at", "2000-01-01T00:30:00+01:00"),  # 1999-12-31T23:30Z
    ("shift.scheduled", "occurred_at", "2100-01-01T00:00:00Z"),
    ("shift.scheduled", "ends_at", "9999-12-31T23:59:59+14:00"),
    ("shift.scheduled", "starts_at", "1970-01-01T00:00:00Z"),
    ("package.approved", "period_end", "9999-12-31"),
    ("invoice.submitted", "period_start", "1999-12-31"),
])
def test_instants_and_dates_outside_2000_to_2100_are_rejected_with_the_field(kind: str, field: str,
                                                                             value: str) -> None:
    result = validate_event(json.dumps(_good(kind) | {field: value}))
    assert isinstance(result, Rejection) and result.stage == "semantic"
    assert result.reason.startswith(f"{field}: {value!r} is outside")


def test_the_range_bounds_are_inclusive_below_and_exclusive_above() -> None:
    assert isinstance(validate_event(json.dumps(_good("visit.clock_in") | {"occurred_at": "2000-01-01T00:00:00Z"})),
                      CareEvent)
    assert isinstance(validate_event(json.dumps(_good("visit.clock_in") | {"occurred_at": "2099-12-31T23:59:59Z"})),
                      CareEvent)


def test_a_carers_date_of_birth_may_be_before_2000_but_not_absurd() -> None:
    assert isinstance(validate_event(json.dumps(_good("carer.registered") | {"date_of_birth": "1961-02-03"})),
                      CareEvent)
    result = validate_event(json.dumps(_good("carer.registered") | {"date_of_birth": "0001-01-01"}))
    assert isinstance(result, Rejection) and result.reason.startswith("date_of_birth:")


def test_validation_never_raises_even_when_a_check_does(monkeypatch: pytest.MonkeyPatch) -> None:
    import carewatch.schema.events as events

    def broken(data: object) -> list[str]:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(events, "semantic_problems", broken)
    result = validate_event(contract_lines("valid.jsonl")[0])
    assert isinstance(result, Rejection) and result.stage == "internal"
    assert result.reason == "could not be checked: OverflowError: date value out of range"
