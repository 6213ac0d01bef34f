"""The alert board (/board) and GraphiQL in a real headless Chromium, against the real worker and API.

Debian's chromium (/usr/bin/chromium) driven by Playwright's Python API; nothing downloads a browser.
A clock-out through Kafka gives SHORT_VISIT: it must be on the safeguarding lead's board within 2 s
of the event, acknowledging it there must change it in the API, another commissioner's board must
never show it, and no page may ask any host but the API for anything. A screenshot is kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import redis.asyncio as aioredis

from carewatch.alerts import repository as store
from carewatch.alerts.bus import AlertBus, Channels
from carewatch.domain.alert_rules import AlertDecision, AlertKind
from carewatch.services import Broker
from carewatch.settings import Settings
from procs import ROOT, api_server, create_token, graphql, produce, scalar, wait_for, worker

pytestmark = pytest.mark.services

CHROMIUM = Path(os.environ.get("CAREWATCH_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts"
OURS, OTHER, PROVIDER, PACKAGE = "LA-BOARD", "LA-ELSEWHERE", "PRV-BOARD", "PKG-BOARD"
SHIFT, CARER = "SH-BOARD", "CR-BOARD"
ALERT_QUERY = """query($f: AlertFilter) { alerts(filter: $f) { edges { node {
  id kind status history { status changedBy note } } } } }"""


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _event(event_type: str, at: datetime, **payload: Any) -> str:
    return json.dumps({"event_id": f"board-{uuid.uuid4().hex[:12]}", "type": event_type,
                       "occurred_at": _iso(at), **payload})


def _setup(now: datetime) -> list[str]:
    before = now - timedelta(days=1)
    start = now - timedelta(minutes=20)
    return [
        _event("commissioner.registered", before, commissioner_id=OURS, name="Board Council", kind="local_authority"),
        _event("commissioner.registered", before, commissioner_id=OTHER, name="Other Council",
               kind="local_authority"),
        _event("provider.registered", before, provider_id=PROVIDER, name="Board Care"),
        _event("carer.registered", before, carer_id=CARER, provider_id=PROVIDER, competencies=[],
               pay_pence_per_hour=1400),
        _event("package.approved", before, package_id=PACKAGE, commissioner_id=OURS, provider_id=PROVIDER,
               mechanism="ISF", person={"person_id": "P-BOARD", "nhs_number": "9434765919"},
               # A budget the plan's ~67,494p a week to the end of 2027 stays well within, so that no
               # BUDGET_AT_RISK joins the one critical alert this test raises.
               period_start="2026-01-01", period_end="2027-12-31", budget_pence=5000000, contingency_pence=150000,
               plan=[{"service_type": "personal_care", "minutes_per_week": 1260, "carers": 1}],
               rates=[{"service_type": "personal_care", "band": band, "pence_per_hour": 3214}
                      for band in ("day", "night", "weekend", "bank_holiday")],
               thresholds={"short_visit_percent": 50}),
        _event("shift.scheduled", before, shift_id=SHIFT, package_id=PACKAGE, provider_id=PROVIDER,
               starts_at=_iso(start), ends_at=_iso(start + timedelta(minutes=30)), service_type="personal_care",
               carers_required=1, carer_ids=[CARER]),
    ]


def _visit(direction: str, at: datetime) -> str:
    return _event(f"visit.clock_{direction}", at, shift_id=SHIFT, package_id=PACKAGE, provider_id=PROVIDER,
                  carer_id=CARER, method="nfc")


def _in_thread(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine on a thread of its own: Playwright's sync API keeps an event loop on this one."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and not failures, failures


def _produce(broker: Broker, topic: str, lines: list[str]) -> None:
    _in_thread(lambda: produce(broker, topic, lines))


def _raise_critical(database_url: str, redis_url: str) -> None:
    """A MISSED_VISIT as the scheduler's sweep would raise it: stored, then published on the bus."""

    async def run() -> None:
        decision = AlertDecision("raise", AlertKind.MISSED_VISIT, "shift", SHIFT, message=f"Nobody came to {SHIFT}",
                                 package_id=PACKAGE, shift_id=SHIFT, provider_id=PROVIDER, commissioner_id=OURS)
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            changed = await store.apply_decisions(conn, [decision], datetime.now(UTC))
            await conn.commit()
        client = aioredis.Redis.from_url(redis_url)
        try:
            channels = Channels.for_settings(Settings(database_url=database_url, redis_url=redis_url))
            assert await AlertBus(client, channels).publish_alerts(changed) == 1
        finally:
            await client.aclose()

    _in_thread(run)


class Requests:
    """Every request and websocket a browser context makes; anything not for the API is refused."""

    def __init__(self, base: str) -> None:
        self.allowed = urlsplit(base).netloc
        self.seen: list[str] = []

    def watch(self, context: Any) -> None:
        def route(r: Any) -> None:
            self.seen.append(r.request.url)
            if urlsplit(r.request.url).netloc == self.allowed:
                r.continue_()
            else:
                r.abort()

        context.route("**/*", route)
        context.on("request", lambda request: self.seen.append(request.url))

    def watch_page(self, page: Any) -> None:
        page.on("websocket", lambda ws: self.seen.append(ws.url))

    def elsewhere(self) -> list[str]:
        return [u for u in self.seen if urlsplit(u).netloc != self.allowed and not u.startswith("data:")]


@pytest.fixture()
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


# Lets the test cut the board's websocket and hold it off (reconnects go to a path with no endpoint).
CUTTABLE_WEBSOCKET = """
(() => {
  const Real = window.WebSocket;
  window.__sockets = [];
  window.__holdOff = false;
  class Cuttable extends Real {
    constructor(url, protocols) {
      super(window.__holdOff ? String(url).replace("/graphql", "/held-off") : url, protocols);
      window.__sockets.push(this);
    }
  }
  window.WebSocket = Cuttable;
})();
"""


def _signed_in(browser: Any, base: str, token: str, requests: Requests, errors: list[str]) -> Any:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_init_script(CUTTABLE_WEBSOCKET)
    requests.watch(context)
    page = context.new_page()
    requests.watch_page(page)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base}/board")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#connection.live").wait_for(timeout=10_000)
    return page


def test_board_shows_a_kafka_alert_live_and_acknowledges_it(
        browser: Any, broker: Broker, fresh_database_url: str, redis_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    url, topic = fresh_database_url, f"care-events-{uuid.uuid4().hex[:8]}"
    lead = create_token(url, "safeguarding", OURS)
    reader = create_token(url, "commissioner", OURS)
    stranger = create_token(url, "commissioner", OTHER)
    now = datetime.now(UTC)
    requests = Requests("http://127.0.0.1")
    errors: list[str] = []
    with worker(broker, url, topic) as process, api_server(broker, url, redis_url, topic) as base:
        requests.allowed = urlsplit(base).netloc
        _produce(broker, topic, _setup(now))
        wait_for(url, lambda c: scalar(c, "SELECT count(*) FROM shifts WHERE shift_id = %s", SHIFT) == 1, process)

        page = _signed_in(browser, base, lead, requests, errors)
        other = _signed_in(browser, base, stranger, requests, errors)
        commissioner = _signed_in(browser, base, reader, requests, errors)
        expect(page.locator("#who")).to_have_text(f"Signed in: Safeguarding for {OURS}")
        expect(page.locator("#clock")).to_contain_text("Server time:")
        expect(page.locator("#clock")).to_contain_text(str(now.year))

        _produce(broker, topic, [_visit("in", now - timedelta(minutes=19))])
        wait_for(url, lambda c: scalar(c, "SELECT count(*) FROM clock_events WHERE shift_id = %s", SHIFT) == 1,
                 process)
        sent = time.monotonic()
        _produce(broker, topic, [_visit("out", now - timedelta(minutes=14))])  # 5 of 30 min
        row = page.locator("#alert-rows tr", has_text="Short visit")
        row.wait_for(timeout=5_000)
        arrived = time.monotonic() - sent
        assert arrived <= 2.0, f"the alert reached the board {arrived:.2f} s after the clock-out"
        expect(page.locator("#announce-polite")).to_contain_text("Short visit")

        alert = graphql(base, lead, ALERT_QUERY, f={"kinds": ["SHORT_VISIT"]})["alerts"]["edges"][0]["node"]
        assert alert["status"] == "open"

        # A commissioner of the same council sees it but may not act: the API's refusal is shown.
        theirs = commissioner.locator("#alert-rows tr", has_text="Short visit")
        theirs.wait_for(timeout=5_000)
        theirs.get_by_role("button").click()
        commissioner.get_by_role("button", name="Acknowledge").click()
        expect(commissioner.locator("#alert-action-result")).to_contain_text(
            "only safeguarding and admin tokens may acknowledge")

        # The safeguarding lead acknowledges it on the page, with a note.
        row.get_by_role("button").click()
        expect(page.locator("#alert-detail-title")).to_have_text(f"Short visit: {CARER}@{SHIFT}")
        page.get_by_label("Note").fill("phoned the carer: called away to another visit")
        page.get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#alert-action-result")).to_have_text("Alert acknowledged.")
        expect(row.locator(".status")).to_have_text("Acknowledged")
        expect(page.locator("#alert-detail .history li")).to_have_count(2)

        changed = graphql(base, lead, ALERT_QUERY, f={"kinds": ["SHORT_VISIT"]})["alerts"]["edges"][0]["node"]
        assert changed["id"] == alert["id"] and changed["status"] == "acknowledged"
        assert changed["history"][-1] == {"status": "acknowledged", "changedBy": f"safeguarding:{OURS}",
                                          "note": "phoned the carer: called away to another visit"}
        expect(commissioner.locator("#alert-rows tr", has_text="Short visit").locator(".status")).to_have_text(
            "Acknowledged")  # pushed to every board that may see it

        # The connection drops; a critical alert is raised meanwhile: back online, the board catches up
        # with alerts(filter: {since}), puts it first, makes it stand out and announces it.
        page.evaluate("window.__holdOff = true; window.__sockets.forEach((s) => s.close())")
        expect(page.locator("#connection")).to_contain_text("Connection lost")
        _raise_critical(url, redis_url)
        page.wait_for_timeout(300)
        expect(page.locator("#alert-rows")).not_to_contain_text(f"Nobody came to {SHIFT}")
        page.evaluate("window.__holdOff = false")
        expect(page.locator("#connection")).to_have_text("Live", timeout=15_000)
        expect(page.locator("#announce-polite")).to_contain_text("changed while the board was offline")
        critical = page.locator("#alert-rows tr").first
        expect(critical).to_contain_text(f"Nobody came to {SHIFT}")
        expect(critical).to_have_class(re.compile(r"severity-critical"))
        expect(critical.locator(".badge")).to_have_text("▲ Critical")
        expect(page.locator("#announce-critical")).to_have_text(f"Critical alert: Missed visit. Nobody came to {SHIFT}")
        expect(page.locator("#alert-summary")).to_contain_text("1 critical open")

        # Today's shifts and the package view.
        page.get_by_role("tab", name="Today's shifts").click()
        expect(page.locator("#shift-rows tr", has_text=SHIFT).locator(".status")).to_have_text("Completed")
        page.get_by_role("tab", name="Packages").click()
        card = page.locator(f'article[data-package="{PACKAGE}"]')
        expect(card.locator("svg[role=img] title")).to_contain_text("delivered of")
        page.get_by_role("tab", name="Alerts").click()
        row.get_by_role("button").click()

        shot = tmp_path / "board.png"
        page.screenshot(path=str(shot), full_page=True)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(shot, ARTIFACTS / "board.png")

        # Another commissioner's board never showed it (it has been live all along).
        expect(other.locator("#connection")).to_have_text("Live")
        expect(other.locator("#alert-rows")).to_contain_text("No alerts match these filters.")
        other.get_by_label("Status", exact=True).select_option("all")
        other.wait_for_timeout(500)
        expect(other.locator("#alert-rows tr", has_text="Short visit")).to_have_count(0)
        assert SHIFT not in other.locator("body").inner_text()

        # GraphiQL loads from the API's own files (not "Loading..."), with the token template.
        graphiql = commissioner.context.new_page()
        requests.watch_page(graphiql)
        graphiql.goto(f"{base}/graphql")
        graphiql.locator(".graphiql-container").wait_for(timeout=15_000)
        expect(graphiql.locator("#token-hint")).to_contain_text("Authorization")

    assert requests.elsewhere() == [], requests.elsewhere()
    assert any(u.startswith("ws://") for u in requests.seen), "the board never opened its websocket"
    assert not [e for e in errors if "401" not in e and "held-off" not in e], errors
