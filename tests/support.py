"""Helpers shared by the test modules (import them from here: several folders have a conftest.py)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import psycopg

from carewatch.schema.events import CareEvent, validate_event
from carewatch.schema.migrate import ensure_database, migrate, with_database

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLES = ROOT / "tests" / "fixtures" / "contracts"

ADMIN_URL = os.environ.get("CAREWATCH_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CAREWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")

CREATED_DATABASES: list[str] = []


def make_database() -> str:
    """A new, migrated database with a unique name; dropped at the end of the session."""
    name = f"carewatch_test_{uuid.uuid4().hex[:10]}"
    url = with_database(ADMIN_URL, name)
    ensure_database(url)
    migrate(url)
    CREATED_DATABASES.append(name)
    return url


def drop_created_databases() -> None:
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            for name in CREATED_DATABASES:
                conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)))
    except psycopg.Error:
        pass


def contract_lines(name: str) -> list[str]:
    """The lines of a contract example file: ../shared/contracts when present, else the copy in tests."""
    shared = SHARED / "contracts" / "examples" / name
    path = shared if shared.exists() else EXAMPLES / name
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def contract_objects(*names: str) -> list[Any]:
    """The lines of these example files that are JSON (invalid.jsonl has some that are not), decoded."""
    found = []
    for name in names:
        for line in contract_lines(name):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def care_event(n: str, event_type: str, at: str, **payload: Any) -> CareEvent:
    """A valid care event with id `n`, of `event_type`, occurring at `at` (fails the test if invalid)."""
    e = validate_event(json.dumps({"event_id": n, "type": event_type, "occurred_at": at, **payload}))
    assert isinstance(e, CareEvent), e
    return e
