"""The packaged JSON Schema is the contract's, byte for byte (contracts/README.md)."""

from __future__ import annotations

import json

import pytest

from carewatch.schema.events import schema_text
from support import SHARED


def test_packaged_schema_equals_the_contract() -> None:
    contract = SHARED / "contracts" / "care-event.schema.json"
    if not contract.exists():
        pytest.skip("../shared/contracts is not beside the repo")
    assert schema_text() == contract.read_text(encoding="utf-8")


def test_packaged_schema_is_json_schema_2020_12() -> None:
    assert json.loads(schema_text())["$schema"] == "https://json-schema.org/draft/2020-12/schema"
