"""Issue 3 end to end: a scripted care day through Kafka, the real worker, scheduler and API processes.

Every process runs on one accelerated clock (CAREWATCH_CLOCK, 120 simulated seconds per real
second). The package shortens its own deadlines (per-package thresholds) so the day's absences fall
due within ~20 real seconds. A safeguarding lead's websocket subscription must receive exactly the
expected alerts, in order per subject, and nothing else; a provider coordinator's `shiftUpdates`
sees a late visit go SCHEDULED -> LATE -> IN_PROGRESS -> COMPLETED; a client that disconnected
catches up with `alerts(filter: {since})`; acknowledge and resolve over HTTP show in `history`.
Timings are not asserted, only which alerts arrive, in which order per subject.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from websockets.asyncio.client import ClientConnection, connect

from carewatch.clock import AcceleratedClock
from carewatch.schema.events import message_key
from carewatch.services import Broker
from procs import api_server, create_token, graphql, scalar, scheduler, wait_for, worker

pytestmark = pytest.mark.services

SPEED = 120.0  # simulated seconds per real second: one simulated minute every half second
LEAD = 14.0  # real seconds from launch until the visits start: the processes start and subscribe meanwhile
S = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)  # a Tuesday, not a bank holiday: the visits start here
COMMISSIONER, PROVIDER, PACKAGE = "LA-E2E", "PRV-E2E", "PKG-E2E"
# Deadlines of this package: late 10 min after the start, missed 30, partial 10, lone worker 10 after
# the end; a visit is short below 50% of its 30 planned minutes.
THRESHOLDS = {"late_start_minutes": 10, "missed_visit_minutes": 30, "partial_attendance_minutes": 10,
              "lone_worker_overdue_minutes": 10, "short_visit_percent": 50}
SHIFTS = {  # shift: (carers required, assigned carers)
    "SH-MISSED": (1, ["CR-A"]),
    "SH-LATE": (1, ["CR-B"]),  # arrives after the late deadline
    "SH-DOUBLE": (2, ["CR-C1", "CR-C2"]),  # only CR-C1 comes
    "SH-LONE": (1, ["CR-D"]),  # never clocks out
    "SH-LATEDATA": (1, ["CR-E"]),  # clocked in on time; the event arrives after the alert
    "SH-SHORT": (1, ["CR-F"]),  # leaves after 7 of 30 minutes
}
ALERT_FIELDS = ("id kind status subjectId shiftId causedByLateData "
                "history { status changedAt changedBy note }")


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _event(event_type: str, at: datetime, **payload: Any) -> dict[str, Any]:
    return {"event_id": f"e2e-{uuid.uuid4().hex[:12]}", "type": event_type, "occurred_at": _iso(at), **payload}


def _setup_events() -> list[dict[str, Any]]:
    day_before = S - timedelta(days=1)
    events = [
        _event("commissioner.registered", day_before, commissioner_id=COMMISSIONER, name="E2E Council",
               kind="local_authority"),
        _event("provider.registered", day_before, provider_id=PROVIDER, name="E2E Care"),
    ]
    for _, carers in SHIFTS.values():
        events += [_event("carer.registered", day_before, carer_id=c, provider_id=PROVIDER, competencies=[],
                          pay_pence_per_hour=1400) for c in carers]
    events.append(_event(
        "package.approved", day_before, package_id=PACKAGE, commissioner_id=COMMISSIONER, provider_id=PROVIDER,
        mechanism="ISF", person={"person_id": "P-E2E", "nhs_number": "9434765919"},
        # 4,000,000p: the plan (~67,494p a week for ~51 weeks) stays within budget - contingency, so the day's
        # alerts are only the absences and visits this test is about (no BUDGET_AT_RISK).
        period_start="2026-04-01", period_end="2027-03-31", budget_pence=4000000, contingency_pence=150000,
        plan=[{"service_type": "personal_care", "minutes_per_week": 1260, "carers": 1}],
        rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": 3214}], thresholds=THRESHOLDS))
    for shift_id, (required, carers) in SHIFTS.items():
        events.append(_event("shift.scheduled", day_before, shift_id=shift_id, package_id=PACKAGE,
                             provider_id=PROVIDER, starts_at=_iso(S), ends_at=_iso(S + timedelta(minutes=30)),
                             service_type="personal_care", carers_required=required, carer_ids=carers))
    return events


def _visit(direction: str, shift_id: str, carer_id: str, at: datetime) -> dict[str, Any]:
    return _event(f"visit.clock_{direction}", at, shift_id=shift_id, package_id=PACKAGE, provider_id=PROVIDER,
                  carer_id=carer_id, method="nfc")


def _minute(m: float) -> datetime:
    return S + timedelta(minutes=m)


# Clock events produced when the processing clock reaches them (simulated minutes after S).
TIMED = [
    (1, _visit("in", "SH-DOUBLE", "CR-C1", _minute(1))),
    (1, _visit("in", "SH-LONE", "CR-D", _minute(1))),
    (1, _visit("in", "SH-SHORT", "CR-F", _minute(1))),
    (8, _visit("out", "SH-SHORT", "CR-F", _minute(8))),
    (28, _visit("out", "SH-DOUBLE", "CR-C1", _minute(28))),
]

# What the safeguarding lead must receive, per subject, in this order; and nothing else.
EXPECTED = {
    "SH-MISSED": [("LATE_START", "open"), ("MISSED_VISIT", "open"), ("MISSED_VISIT", "acknowledged"),
                  ("MISSED_VISIT", "resolved")],
    "SH-LATE": [("LATE_START", "open"), ("LATE_START", "auto_resolved")],
    "SH-DOUBLE": [("PARTIAL_ATTENDANCE", "open")],
    "CR-D@SH-LONE": [("LONE_WORKER_OVERDUE", "open")],
    "SH-LATEDATA": [("LATE_START", "open"), ("LATE_START", "auto_resolved")],
    "CR-F@SH-SHORT": [("SHORT_VISIT", "open")],
}


class Subscriber:
    """A graphql-transport-ws client with one subscription; `received` fills in the background."""

    def __init__(self, ws: ClientConnection, field: str) -> None:
        self.ws, self.field = ws, field
        self.received: list[dict[str, Any]] = []
        self.errors: list[Any] = []
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message["type"] == "next" and not message["payload"].get("errors"):
                self.received.append(message["payload"]["data"][self.field])
            elif message["type"] in ("next", "error"):
                self.errors.append(message["payload"])


@asynccontextmanager
async def subscribed(base: str, token: str, query: str, field: str) -> AsyncIterator[Subscriber]:
    url = base.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        subscriber = Subscriber(ws, field)
        try:
            yield subscriber
        finally:
            subscriber.task.cancel()


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _has(sub: Subscriber, subject: str, kind: str, status: str) -> bool:
    return any(a["subjectId"] == subject and a["kind"] == kind and a["status"] == status for a in sub.received)


async def test_a_scripted_day_reaches_the_safeguarding_lead_live_and_exactly(
        broker: Broker, fresh_database_url: str, redis_url: str) -> None:
    url, topic = fresh_database_url, f"care-events-{uuid.uuid4().hex[:8]}"
    lead = create_token(url, "safeguarding", COMMISSIONER)
    coordinator = create_token(url, "provider", PROVIDER)
    clock = AcceleratedClock(S - timedelta(seconds=LEAD * SPEED), datetime.now(UTC), SPEED)
    env = {"CAREWATCH_CLOCK": clock.spec(), "CAREWATCH_REDIS_URL": redis_url}
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()

    async def send(*events: dict[str, Any]) -> None:
        for e in events:
            await producer.send(topic, json.dumps(e).encode(), key=message_key(e).encode())
        await producer.flush()

    try:
        with worker(broker, url, topic, **env) as process, scheduler(url, redis_url, **env) as sched, \
                api_server(broker, url, redis_url, topic, **env) as base:
            async with subscribed(base, lead, f"subscription {{ alerts {{ {ALERT_FIELDS} }} }}",
                                  "alerts") as alerts, \
                    subscribed(base, coordinator, "subscription { shiftUpdates { id status } }",
                               "shiftUpdates") as shifts, \
                    subscribed(base, lead, "subscription { alerts { id kind status } }", "alerts") as early:
                await send(*_setup_events())
                await asyncio.to_thread(wait_for, url, lambda c: scalar(
                    c, "SELECT count(*) FROM shifts WHERE package_id = %s", PACKAGE) == len(SHIFTS), process)
                assert clock.now() < S, (
                    f"setup took longer than the {LEAD} s lead (machine busy?): the visits started before "
                    "the processes were ready; raise LEAD")

                # The day: clock events as the processing clock reaches them; the late arrivals react to
                # their LATE_START alerts, so they arrive after the alert whatever the machine's speed.
                timed = list(TIMED)
                late_in = late_data_in = disconnected_at = None
                late_out_sent = False
                while not _has(alerts, "CR-D@SH-LONE", "LONE_WORKER_OVERDUE", "open"):
                    assert sched.poll() is None, "the scheduler died"
                    assert clock.now() < S + timedelta(minutes=80), f"the day did not finish: {alerts.received}"
                    while timed and clock.now() >= _minute(timed[0][0]):
                        await send(timed.pop(0)[1])
                    if late_in is None and _has(alerts, "SH-LATE", "LATE_START", "open"):
                        late_in = clock.now()
                        await send(_visit("in", "SH-LATE", "CR-B", late_in))
                    if late_in is not None and not late_out_sent and clock.now() >= late_in + timedelta(minutes=20):
                        await send(_visit("out", "SH-LATE", "CR-B", late_in + timedelta(minutes=20)))
                        late_out_sent = True
                    if late_data_in is None and _has(alerts, "SH-LATEDATA", "LATE_START", "open"):
                        late_data_in = _minute(2)  # before the deadline: the event is late, not the carer
                        await send(_visit("in", "SH-LATEDATA", "CR-E", late_data_in),
                                   _visit("out", "SH-LATEDATA", "CR-E", _minute(29)))
                    if disconnected_at is None and early.received:
                        # A second client drops off after its first alert; it catches up later by `since`.
                        early.task.cancel()
                        await early.ws.close()
                        disconnected_at = clock.now()
                    await asyncio.sleep(0.05)

                # Acknowledge and resolve over HTTP, as the safeguarding lead.
                missed = next(a for a in alerts.received if a["kind"] == "MISSED_VISIT")
                ack = graphql(base, lead, f'mutation($id: ID!) {{ acknowledgeAlert(id: $id, '
                              f'note: "phoned the provider") {{ {ALERT_FIELDS} }} }}', id=missed["id"])
                done = graphql(base, lead, f'mutation($id: ID!) {{ resolveAlert(id: $id, '
                               f'note: "visit rearranged for 11:00") {{ {ALERT_FIELDS} }} }}', id=missed["id"])
                assert ack["acknowledgeAlert"]["status"] == "acknowledged"
                history = done["resolveAlert"]["history"]
                assert [(h["status"], h["changedBy"], h["note"]) for h in history][1:] == [
                    ("acknowledged", f"safeguarding:{COMMISSIONER}", "phoned the provider"),
                    ("resolved", f"safeguarding:{COMMISSIONER}", "visit rearranged for 11:00")]
                assert history[0]["status"] == "open" and history[0]["changedBy"] == "carewatch"
                changed = [datetime.fromisoformat(h["changedAt"]) for h in history]
                assert changed == sorted(changed) and S + timedelta(minutes=30) <= changed[0] <= clock.now()

                await _until(lambda: _has(alerts, "SH-MISSED", "MISSED_VISIT", "resolved"), 10, "the resolution")
                await asyncio.sleep(2.0)  # anything unexpected still in flight arrives now

            # Exactly the expected alerts, in order per subject, and nothing else.
            assert not alerts.errors and not shifts.errors, (alerts.errors, shifts.errors)
            by_subject: dict[str, list[tuple[str, str]]] = {}
            for a in alerts.received:
                by_subject.setdefault(a["subjectId"], []).append((a["kind"], a["status"]))
            assert by_subject == EXPECTED, json.dumps(alerts.received, indent=1)
            caused = {a["subjectId"]: a["causedByLateData"] for a in alerts.received if a["status"] == "auto_resolved"}
            assert caused == {"SH-LATE": False, "SH-LATEDATA": True}
            late_data = next(a for a in alerts.received
                             if a["subjectId"] == "SH-LATEDATA" and a["status"] == "auto_resolved")
            assert "caused by late data" in late_data["history"][-1]["note"]

            # A visit seen by its provider: SCHEDULED, then LATE, IN_PROGRESS when the carer arrives,
            # COMPLETED at the clock-out (repeats collapsed: other changes re-send the same status).
            def statuses(shift_id: str) -> list[str]:
                seen: list[str] = []
                for s in shifts.received:
                    if s["id"] == shift_id and (not seen or seen[-1] != s["status"]):
                        seen.append(s["status"])
                return seen

            assert statuses("SH-LATE") == ["SCHEDULED", "LATE", "IN_PROGRESS", "COMPLETED"]
            assert statuses("SH-MISSED") == ["SCHEDULED", "LATE", "MISSED"]
            assert statuses("SH-LONE") == ["SCHEDULED", "IN_PROGRESS"]

            # The client that dropped off catches up: `since` gives exactly the alerts that changed after.
            assert disconnected_at is not None
            since = graphql(base, lead, "query($f: AlertFilter) { alerts(filter: $f, first: 100) "
                            "{ edges { node { id status } } } }", f={"since": _iso(disconnected_at)})
            caught_up = {e["node"]["id"]: e["node"]["status"] for e in since["alerts"]["edges"]}
            latest = {a["id"]: a["status"] for a in alerts.received}
            changed_after = {a["id"] for a in alerts.received
                             if datetime.fromisoformat(a["history"][-1]["changedAt"]) >= disconnected_at}
            assert set(caught_up) == changed_after and changed_after
            assert caught_up == {i: latest[i] for i in changed_after}
            assert len(changed_after) < len(latest)  # it did miss some, and only those came back
    finally:
        await producer.stop()
