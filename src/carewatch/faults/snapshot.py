"""Reading a finished run: its tables from PostgreSQL, its figures from the real API over HTTP."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import psycopg

from carewatch.faults.compare import Snapshot, Table

# Each comparison's rows as JSON keyed by its natural key, minus processing-time columns.
_SQL: dict[str, str] = {
    "shift_ledger rows": "SELECT shift_id, to_jsonb(l) - 'updated_at' FROM shift_ledger l",
    "shifts": "SELECT shift_id, to_jsonb(s) FROM shifts s",
    "events (id, type, occurred_at, payload)":
        "SELECT event_id, jsonb_build_object('type', type, 'occurred_at', occurred_at, 'payload', payload) "
        "FROM events",
    "held_events": "SELECT event_id, to_jsonb(waiting_for) FROM held_events",
}
# Rejections by event (or, with no event_id, by raw text) and stage; present or not.
_REJECTED = """SELECT DISTINCT CASE WHEN coalesce(event_id, '') = '' THEN 'raw:' || raw ELSE 'id:' || event_id END,
                      stage FROM rejected_events"""
_ALERTS = "SELECT kind, subject_type, subject_id, status, severity FROM alerts"

PACKAGES = """
query Packages($first: Int!, $after: String, $from: DateTime!, $to: DateTime!) {
  packages(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id commissionerId providerId budgetPence contingencyPence plannedMinutesPerWeek
      delivery(from: $from, to: $to) { ...figures }
      rolling7Days { ...figures }
      budget { spentPence forecastSpendPence recoverableUnderspendPence contingencyPence budgetPence }
    } }
  }
}
fragment figures on Delivery {
  plannedMinutes scheduledMinutes actualMinutes payableMinutes overrunMinutes unverifiedMinutes
  providerCancelledMinutes spendPence varianceMinutes
}"""


def read_tables(database_url: str) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    with psycopg.connect(database_url) as conn:
        for name, sql in _SQL.items():
            tables[name] = {str(k): v for k, v in conn.execute(sql).fetchall()}
        rejected: Table = {}
        for key, stage in conn.execute(_REJECTED).fetchall():
            rejected[f"{key}|{stage}"] = True
        tables["rejected_events (event/raw, stage)"] = rejected
        alerts = Counter("|".join(str(c) for c in row) for row in conn.execute(_ALERTS).fetchall())
        tables["alerts (multiset)"] = dict(alerts)
    return tables


def _post(client: httpx.Client, variables: dict[str, Any], problems: list[str]) -> Any:
    """One page; a failed answer is noted (it is a finding) and asked again, three times at most."""
    for _ in range(3):
        response = client.post("/graphql", json={"query": PACKAGES, "variables": variables})
        try:
            body: Any = response.json()
        except ValueError:
            body = {"errors": [response.text[:200]]}
        if response.status_code == 200 and not body.get("errors"):
            return body
        problems.append(f"POST /graphql answered {response.status_code}: {json.dumps(body)[:300]}")
        time.sleep(1)
    raise RuntimeError(problems[-1])


def read_packages(base_url: str, token: str, start: datetime, end: datetime, problems: list[str]) -> Table:
    """Every package's delivery in the feed's window, its rolling 7 days and its budget, via GraphQL."""
    found: Table = {}
    after: str | None = None
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        while True:
            variables = {"first": 100, "after": after, "from": start.isoformat(), "to": end.isoformat()}
            page = _post(client, variables, problems)["data"]["packages"]
            for edge in page["edges"]:
                found[edge["node"]["id"]] = edge["node"]
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]


def take_snapshot(database_url: str, base_url: str, token: str, start: datetime, end: datetime,
                  problems: list[str]) -> Snapshot:
    tables = read_tables(database_url)
    tables["GraphQL package delivery and budget"] = read_packages(base_url, token, start, end, problems)
    return Snapshot(tables)
