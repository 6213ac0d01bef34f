"""Subscriptions fanned out once per group (graphql/fanout.py) send each subscriber exactly what strawberry
would have sent it running the subscription alone: the same frames, the same alerts, nothing outside its
reach, whatever the viewer, selection, filter, variables or operation name; and a subscriber costs a bounded
amount of memory, handed back when it leaves.

The alerts go through a real hub (Redis left out: messages are handed to its fan-out directly) and the
real schema, both ways at once: each subscription once per subscriber with strawberry's own machinery, framed
by strawberry's own protocol handlers, and once per group, framed by ours.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pytest
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError

from carewatch import metrics
from carewatch.alerts.bus import Channels, to_wire
from carewatch.alerts.record import AlertChange, AlertRecord
from carewatch.clock import FixedClock
from carewatch.graphql.alerts_hub import AlertHub
from carewatch.graphql.context import Context
from carewatch.graphql.fanout import COMPLETE, Group, Member, data_frame, group_key, next_frame
from carewatch.graphql.loaders import make_loaders
from carewatch.graphql.over_http import GraphQLOverHTTP
from carewatch.graphql.schema import build_schema
from carewatch.security.roles import Role, Viewer
from carewatch.settings import Settings

T0 = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)

VIEWERS = {
    "admin": Viewer(Role.ADMIN, None, token_id=1),
    "wirral": Viewer(Role.COMMISSIONER, "LA-1", token_id=2),
    "wirral-lead": Viewer(Role.SAFEGUARDING, "LA-1", token_id=3),
    "wirral-2nd-token": Viewer(Role.COMMISSIONER, "LA-1", token_id=4),
    "sefton": Viewer(Role.COMMISSIONER, "LA-2", token_id=5),
    "greenway": Viewer(Role.PROVIDER, "PRV-1", token_id=6),
    "acorn": Viewer(Role.PROVIDER, "PRV-2", token_id=7),
}


def _alert(
    n: int,
    kind: str,
    severity: str,
    status: str,
    commissioners: tuple[str, ...],
    providers: tuple[str, ...],
    minutes: int = 0,
    history: int = 0,
) -> AlertRecord:
    at = T0 + timedelta(minutes=minutes)
    return AlertRecord(
        id=n,
        kind=kind,
        severity=severity,
        status=status,
        subject_type="shift",
        subject_id=f"SH-{n}",
        raised_at=at,
        resolved_at=at if status == "resolved" else None,
        updated_at=at,
        message=f"alert {n} \u2013 {kind}",
        package_id=f"PKG-{n % 3}",
        shift_id=f"SH-{n}",
        carer_id="CR-1" if len(commissioners) > 1 else None,
        provider_id=providers[0] if providers else None,
        commissioner_id=commissioners[0] if commissioners else None,
        caused_by_late_data=n % 2 == 0,
        details={"n": n},
        history=tuple(
            AlertChange("acknowledged", at, "safeguarding:LA-1", f"note {i}", "critical" if i else None)
            for i in range(history)
        ),
        commissioner_ids=commissioners,
        provider_ids=providers,
    )


ALERTS = [
    _alert(1, "SHORT_VISIT", "warning", "open", ("LA-1",), ("PRV-1",)),
    _alert(2, "LATE_START", "warning", "open", ("LA-2",), ("PRV-2",), minutes=10),
    _alert(3, "MISSED_VISIT", "critical", "open", ("LA-1", "LA-2"), ("PRV-1",), minutes=20, history=1),
    _alert(4, "SHORT_VISIT", "warning", "acknowledged", ("LA-2",), ("PRV-1",), minutes=30, history=2),
    _alert(5, "BUDGET_AT_RISK", "critical", "resolved", ("LA-1",), ("PRV-2",), minutes=40),
    _alert(6, "LATE_START", "info", "open", (), ("PRV-2",), minutes=50),  # a provider's own, no commissioner
    _alert(7, "SHORT_VISIT", "warning", "open", ("LA-3",), ("PRV-3",), minutes=60),  # nobody's here but admin
]

# The alert ids each viewer may see, worked out by hand from the table above (not by the code under test).
REACH = {
    "admin": {1, 2, 3, 4, 5, 6, 7},
    "wirral": {1, 3, 5},
    "wirral-lead": {1, 3, 5},
    "wirral-2nd-token": {1, 3, 5},
    "sefton": {2, 3, 4},
    "greenway": {1, 3, 4},
    "acorn": {2, 5, 6},
}

Sub = tuple[str, dict[str, Any] | None, str | None]
SUBSCRIPTIONS: list[Sub] = [
    ("subscription { alerts { id kind severity status } }", None, None),
    (
        "subscription { alerts { id message commissionerIds history { status changedAt changedBy note severity } } }",
        None,
        None,
    ),
    ('subscription { alerts(filter: {kinds: ["SHORT_VISIT"]}) { id kind } }', None, None),
    (
        "subscription S($f: AlertFilter) { alerts(filter: $f) { id providerId packageId } }",
        {"f": {"severities": ["critical"]}},
        None,
    ),
    (
        "subscription S($f: AlertFilter) { alerts(filter: $f) { id providerId packageId } }",
        {"f": {"commissionerId": "LA-2"}},
        "S",
    ),
    (
        "subscription S($f: AlertFilter) { alerts(filter: $f) { id providerId packageId } }",
        {"f": {"since": "2026-04-07T09:30:00Z", "statuses": ["open", "acknowledged"]}},
        None,
    ),
    (
        "subscription S($f: AlertFilter) { alerts(filter: $f) { id providerId packageId } }",
        {"f": {"providerId": "PRV-1"}},
        None,
    ),
    (
        "subscription { alerts { ...A __typename } } fragment A on Alert { id raisedAt resolvedAt causedByLateData }",
        None,
        None,
    ),
    ("subscription A { alerts { id } } subscription B { alerts { kind subjectId } }", None, "B"),
    # an error from the resolver (a `since` without an offset) and one before execution (an unknown field)
    ('subscription { alerts(filter: {since: "2026-04-07T09:30:00"}) { id } }', None, None),
    ("subscription { alerts { id nope } }", None, None),
]


def _context(hub: AlertHub, viewer: Viewer, settings: Settings) -> Context:
    pool = cast(Any, None)  # the alerts subscription reads no database
    return Context(
        None, None, viewer, pool, FixedClock(T0), settings, make_loaders(pool, viewer, settings.timezone), hub
    )


class _TransportFrames(BaseGraphQLTransportWSHandler[Context, None]):
    """strawberry's graphql-transport-ws handler, its messages encoded by the view instead of sent."""

    def __init__(self, view: GraphQLOverHTTP) -> None:
        self.view_ = view
        self.frames: list[str] = []
        self.operations = {}

    async def send_message(self, message: Any) -> None:
        self.frames.append(self.view_.encode_json(message))


class _WSFrames(BaseGraphQLWSHandler[Context, None]):
    """strawberry's graphql-ws handler, the same way."""

    def __init__(self, view: GraphQLOverHTTP) -> None:
        self.view_ = view
        self.frames: list[str] = []

    async def send_message(self, message: Any) -> None:
        self.frames.append(self.view_.encode_json(message))


async def _alone(
    schema: Any, context: Context, sub: Sub, transport: _TransportFrames, ws: _WSFrames, op_id: str
) -> None:
    """What strawberry sends one subscriber running `sub` alone, into the two handlers' frames (graphql-transport-ws
    and graphql-ws) as it goes."""
    query, variables, name = sub
    operation = Operation(transport, op_id, query, variables, name)
    transport.operations[op_id] = operation
    stream = await schema.subscribe(query, variable_values=variables, context_value=context, operation_name=name)
    first = True
    async for result in stream:
        if first and isinstance(result, PreExecutionError):
            await operation.send_initial_errors(result.errors or [])
            await ws.send_message({"type": "error", "id": op_id, "payload": (result.errors or [])[0].formatted})
            return
        first = False
        assert isinstance(result, ExecutionResult)
        await operation.send_next(result)
        await ws.send_data_message(result, op_id)
    await operation.send_operation_message({"id": op_id, "type": "complete"})
    await ws.send_message({"type": "complete", "id": op_id})


def _grouped_frames(member: Member, view: GraphQLOverHTTP, op_id: str) -> tuple[list[str], list[str]]:
    """What our handlers send for a member's items (the framing of fanout.GroupedTransportWSHandler and
    GroupedGraphQLWSHandler)."""
    transport: list[str] = []
    ws: list[str] = []
    for item in member.items:
        if isinstance(item, str):
            transport.append(next_frame(op_id, item))
            ws.append(data_frame(op_id, item))
        elif isinstance(item, PreExecutionError):
            errors = item.errors or []
            transport.append(view.encode_json({"id": op_id, "type": "error", "payload": [e.formatted for e in errors]}))
            ws.append(view.encode_json({"type": "error", "id": op_id, "payload": errors[0].formatted}))
        else:
            assert item is COMPLETE
            transport.append(view.encode_json({"id": op_id, "type": "complete"}))
            ws.append(view.encode_json({"type": "complete", "id": op_id}))
    return transport, ws


def _quiet_hub(monkeypatch: pytest.MonkeyPatch, queue_size: int = 1000) -> AlertHub:
    hub = AlertHub("redis://127.0.0.1:1/0", Channels("test-fanout"), queue_size)
    monkeypatch.setattr(hub, "_ensure_running", lambda: None)  # no Redis: the test hands messages over itself
    return hub


def _join(hub: AlertHub, schema: Any, context: Context, sub: Sub) -> tuple[Group, Member]:
    """fanout.join without a websocket: the member's items are read by the test."""
    query, variables, name = sub
    key = group_key(context.viewer, query, variables, name)
    assert key is not None
    group = hub.groups.get(key)
    if group is None:
        group = hub.groups[key] = Group(hub, key, schema, context, variables)
        group.start()
    member = Member(hub.queue_size, None)
    group.join(member)
    return group, member


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


@pytest.mark.parametrize("production", [False, True], ids=["development", "production"])
def test_grouped_delivery_is_what_each_subscriber_would_get_alone(
    monkeypatch: pytest.MonkeyPatch, production: bool
) -> None:
    settings = Settings()
    schema = build_schema(production=production)
    view = GraphQLOverHTTP(schema)

    async def scenario() -> None:
        hub = _quiet_hub(monkeypatch)
        channel = hub.channels.alerts
        members: dict[tuple[str, int], list[Member]] = {}
        alone: dict[tuple[str, int], tuple[_TransportFrames, _WSFrames]] = {}
        tasks: list[asyncio.Task[None]] = []
        for who, viewer in VIEWERS.items():
            for s, sub in enumerate(SUBSCRIPTIONS):
                # Three subscribers of each: one group; and the same subscription run alone.
                members[who, s] = [_join(hub, schema, _context(hub, viewer, settings), sub)[1] for _ in range(3)]
                handlers = alone[who, s] = _TransportFrames(view), _WSFrames(view)
                tasks.append(asyncio.create_task(_alone(schema, _context(hub, viewer, settings), sub, *handlers, "7")))
        listening = sum(1 for sub in SUBSCRIPTIONS if "nope" not in sub[0] and '09:30:00"' not in sub[0])
        # one group per viewer's role and scope and subscription (the second Wirral token joins the first's)
        assert len(hub.groups) <= (len(VIEWERS) - 1) * len(SUBSCRIPTIONS)
        await _until(lambda: hub.listening == len(VIEWERS) * listening * 4, "every subscriber listening")
        for alert in ALERTS:
            hub._fan_out(channel, to_wire(alert))
            await asyncio.sleep(0)
        await _until(lambda: all(s.queue.empty() for s in hub.subscribers), "every alert taken")
        await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        for group in list(hub.groups.values()):
            assert group.task is not None
            group.task.cancel()
        await asyncio.sleep(0.05)

        for (who, s), group_members in members.items():
            reference = alone[who, s][0].frames, alone[who, s][1].frames
            for member in group_members:
                got = _grouped_frames(member, view, "7")
                assert got[0] == reference[0], (who, SUBSCRIPTIONS[s])
                assert got[1] == reference[1], (who, SUBSCRIPTIONS[s])
                ids = {
                    orjson.loads(f)["payload"]["data"]["alerts"].get("id")
                    for f in got[0]
                    if '"type":"next"' in f and '"data":{' in f
                }
                ids.discard(None)
                assert {int(i) for i in ids} <= REACH[who], (who, SUBSCRIPTIONS[s])
        # the unfiltered subscription reached each viewer with exactly its reach
        for who in VIEWERS:
            frames = _grouped_frames(members[who, 0][0], view, "7")[0]
            assert {int(orjson.loads(f)["payload"]["data"]["alerts"]["id"]) for f in frames} == REACH[who]

    asyncio.run(scenario())


def _dropped_total() -> float:
    return float(metrics.SUBSCRIBERS_DROPPED._value.get())


def test_a_slow_member_is_dropped_alone_and_the_group_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    schema = build_schema()

    async def scenario() -> None:
        hub = _quiet_hub(monkeypatch, queue_size=3)
        context = _context(hub, VIEWERS["admin"], settings)
        sub: Sub = ("subscription { alerts { id } }", None, None)
        group, slow = _join(hub, schema, context, sub)
        _, reader = _join(hub, schema, context, sub)
        await _until(lambda: hub.listening == 2, "both listening")
        before = _dropped_total()
        received: list[str] = []
        for alert in ALERTS[:5]:
            hub._fan_out(hub.channels.alerts, to_wire(alert))
            await _until(lambda: not any(s.queue.qsize() for s in hub.subscribers), "the alert taken")
            while reader.items:  # the reader keeps up
                item = await reader.next()
                assert isinstance(item, str)
                received.append(item)
        # the slow one held 3 and was dropped at the 4th: told to close (it has no websocket here), counted
        assert slow.dropped and await slow.next() is None and not slow.items
        assert _dropped_total() == before + 1
        assert list(group.members) == [reader] and hub.listening == 1
        assert [orjson.loads(r)["data"]["alerts"]["id"] for r in received] == ["1", "2", "3", "4", "5"]
        group.leave(reader)
        await _until(lambda: not hub.subscribers and not hub.groups, "the group gone")
        assert hub.listening == 0

    asyncio.run(scenario())


def test_a_group_that_falls_behind_the_hub_drops_every_member(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    schema = build_schema()

    async def scenario() -> None:
        hub = _quiet_hub(monkeypatch, queue_size=3)
        context = _context(hub, VIEWERS["admin"], settings)
        sub: Sub = ("subscription { alerts { id } }", None, None)
        members = [_join(hub, schema, context, sub)[1] for _ in range(4)]
        await _until(lambda: hub.listening == 4, "listening")
        hub._fan_out(hub.channels.alerts, to_wire(ALERTS[0]))
        await _until(lambda: all(m.items for m in members), "the first alert delivered, not yet sent")
        before = _dropped_total()
        for alert in ALERTS[1:6]:  # handed over without the group's execution getting a turn
            hub._fan_out(hub.channels.alerts, to_wire(alert))
        assert all(m.dropped for m in members) and _dropped_total() == before + 4
        # none of them was slow: each sends what it was given before its websocket is closed
        for m in members:
            item = await m.next()
            assert isinstance(item, str) and orjson.loads(item)["data"]["alerts"]["id"] == "1"
            assert await m.next() is None
        await _until(lambda: not hub.subscribers and not hub.groups, "the group gone")
        assert hub.listening == 0

    asyncio.run(scenario())


def test_subscribers_that_cannot_share_run_alone() -> None:
    admin = VIEWERS["admin"]
    assert group_key(admin, "{ me { role } }", None, None) is None  # a query over the websocket
    assert group_key(admin, 'mutation { resolveAlert(id: 1, note: "x") { id } }', None, None) is None
    assert group_key(admin, "subscription { alerts { id }", None, None) is None  # does not parse
    two = "subscription A { alerts { id } } subscription B { alerts { kind } }"
    assert group_key(admin, two, None, None) is None  # which one is for strawberry to say
    assert group_key(admin, two, None, "B") is not None
    assert group_key(admin, "subscription { alerts { id } }", {"x": {1, 2}}, None) is None  # not JSON
    # the same role and scope share; another token of them too; another scope or role does not
    key = group_key(VIEWERS["wirral"], "subscription { alerts { id } }", {"a": 1, "b": 2}, None)
    assert key == group_key(VIEWERS["wirral-2nd-token"], "subscription { alerts { id } }", {"b": 2, "a": 1}, None)
    assert key != group_key(VIEWERS["wirral-lead"], "subscription { alerts { id } }", {"a": 1, "b": 2}, None)
    assert key != group_key(VIEWERS["sefton"], "subscription { alerts { id } }", {"a": 1, "b": 2}, None)
    # texts are compared as sent: error locations come from the text
    assert key != group_key(VIEWERS["wirral"], "subscription {alerts {id}}", {"a": 1, "b": 2}, None)


def test_memory_per_subscriber_is_bounded_and_returned_when_they_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each subscriber of a group holds its few queued texts and nothing of the execution; 5,000 of them
    cost less than 1 KiB each while they are there (strawberry running each alone held its own
    execution, generator chain and hub queue), and nothing once they have gone."""
    settings = Settings()
    schema = build_schema()
    n = 5_000

    async def scenario() -> tuple[int, int, int]:
        hub = _quiet_hub(monkeypatch)
        context = _context(hub, VIEWERS["admin"], settings)
        sub: Sub = ("subscription { alerts { id kind status shiftId } }", None, None)
        group, first = _join(hub, schema, context, sub)
        await _until(lambda: hub.listening == 1, "listening")
        hub._fan_out(hub.channels.alerts, to_wire(ALERTS[0]))  # the execution's caches warm
        await _until(lambda: bool(first.items), "delivered")
        first.items.clear()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        members = [_join(hub, schema, context, sub)[1] for _ in range(n)]
        await asyncio.sleep(0)
        for k, alert in enumerate(ALERTS[1:4], start=1):
            hub._fan_out(hub.channels.alerts, to_wire(alert))
            await _until(lambda k=k: len(members[-1].items) == k, "delivered to all")  # type: ignore[misc]
        held = tracemalloc.get_traced_memory()[0] - base
        assert all(len(m.items) == 3 for m in members) and len({id(m.items[0]) for m in members}) == 1
        for m in members:
            group.leave(m)
        group.leave(first)
        await _until(lambda: not hub.groups and not hub.subscribers, "the group gone")
        members.clear()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        return held, after, hub.listening

    held, after, listening = asyncio.run(scenario())
    assert held / n < 1024, f"{held / n:.0f} bytes per subscriber"
    assert after < 64 * 1024, f"{after} bytes still held after they left"
    assert listening == 0
