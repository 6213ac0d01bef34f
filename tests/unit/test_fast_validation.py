"""The fast schema check (jsonschema-rs) gives jsonschema's verdict on every example and mutation of one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from carewatch.schema.events import CareEvent, Rejection, _fast_validator, _validator, validate_event
from support import contract_objects

# Values that break one keyword or another: types, lengths, formats, bounds, enums, consts.
_REPLACEMENTS: tuple[Any, ...] = (
    None, "", "x", 0, -1, 1.5, 10**20, True, [], {}, ["a", 1], "2026-04-06T23:59:60Z", "2026-04-06T10:00:00",
    "2026-04-06t10:00:00z", "2026-02-30", "2024-02-29", "2026-04-06", "2026-04-06T10:00:00.123456789+01:00",
    {"lat": 91, "lon": 0}, {"lat": 51.5, "lon": -0.1, "accuracy_m": -1},
)


def _mutations(data: dict[str, Any]) -> Iterator[Any]:
    yield data
    for name in list(data):
        yield {k: v for k, v in data.items() if k != name}
        for value in _REPLACEMENTS:
            yield data | {name: value}
        if isinstance(data[name], dict):
            for inner in list(data[name]):
                for value in (None, "", -1, 1000, "2026-13-01"):
                    yield data | {name: data[name] | {inner: value}}
        if isinstance(data[name], list) and data[name] and isinstance(data[name][0], dict):
            for inner in list(data[name][0]):
                yield data | {name: [data[name][0] | {inner: None}]}
    yield data | {"schema_version": 2}
    yield data | {"unknown_extra": 1}


def test_fast_validator_agrees_with_jsonschema_on_examples_and_their_mutations() -> None:
    checked = 0
    for data in contract_objects("valid.jsonl", "invalid.jsonl"):
        for variant in _mutations(data):
            assert _fast_validator().is_valid(variant) == _validator().is_valid(variant), variant
            checked += 1
    assert checked > 1000


def test_a_leap_second_is_rejected_as_jsonschema_does_not_crashed_on() -> None:
    good = next(d for d in contract_objects("valid.jsonl") if d["type"] == "visit.clock_in")
    assert isinstance(validate_event(json.dumps(good)), CareEvent)
    result = validate_event(json.dumps(good | {"occurred_at": "2026-04-06T23:59:60Z"}))
    assert isinstance(result, Rejection) and result.stage == "schema"
    assert result.reason.startswith("occurred_at:")


@pytest.mark.parametrize("name", ["date-time", "date", "not-a-format"])
def test_format_checks_give_jsonschemas_verdicts(name: str) -> None:
    from jsonschema import Draft202012Validator

    from carewatch.schema.events import _format

    check, reference = _format(name), Draft202012Validator.FORMAT_CHECKER
    for value in ["2026-03-07T05:00:00Z", "2026-02-30T05:00:00Z", "2026-03-07T05:00:60Z", "2026-03-07t05:00:00z",
                  "2026-03-07T05:00:00.123456789+01:00", "0000-01-01T00:00:00Z", "2024-02-29", "2023-02-29",
                  "2026-13-01", "２０２６-03-07", "", "x", 5, None]:
        assert check(value) == reference.conforms(value, name), value
