"""Client mistakes against the real app (bad query, a page too large, a mutation the role may not make,
a body that is not JSON) leave one line each in the log, never a traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from starlette.testclient import TestClient

from carewatch.clock import FixedClock
from carewatch.logs import setup_logging
from carewatch.settings import Settings
from carewatch.web import create_app

pytestmark = pytest.mark.services


@pytest.fixture()
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    setup_logging(Settings(), command="api", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_client_mistakes_are_one_line_each(api_settings: Settings, now: datetime, bearer: object,
                                           log_stream: io.StringIO) -> None:
    admin = bearer(api_settings.database_url, "admin", None)  # type: ignore[operator]
    commissioner = bearer(api_settings.database_url, "commissioner", "LA-WIRRAL")  # type: ignore[operator]
    with TestClient(create_app(api_settings, clock=FixedClock(now))) as c:
        mistakes = [
            c.post("/graphql", json={"query": "{ packages(first: 9000) { edges { node { id } } } }"}, headers=admin),
            c.post("/graphql", json={"query": "{ nope }"}, headers=admin),
            c.post("/graphql", json={"query": "{ packages { "}, headers=admin),
            c.post("/graphql", json={"query": 'mutation { acknowledgeAlert(id: "1") { id } }'}, headers=commissioner),
            c.post("/events", content=b"{not json", headers={**admin, "content-type": "application/json"}),
        ]
    assert all(r.status_code < 500 for r in mistakes) and mistakes[4].status_code == 400
    text = log_stream.getvalue()
    assert "Traceback" not in text, text
    refused = [line for line in text.splitlines() if "GraphQL request refused:" in line]
    assert len(refused) == 4, text
    assert all(" INFO strawberry.execution: " in line for line in refused)
