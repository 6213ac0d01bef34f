"""The alert repository: raise, acknowledge, resolve and auto-resolve, each change kept in alert_history.

Every function runs inside the caller's transaction (the worker's batch, a sweep, a mutation);
publishing on Redis is the caller's job, after its commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from carewatch.alerts.record import AlertChange, AlertRecord
from carewatch.domain.alert_rules import GRADED, ONCE_PER_SUBJECT, AlertDecision, AlertKind
from carewatch.domain.audience import involvement
from carewatch.domain.double_booking import RecordedOverlap
from carewatch.store.audience import commissioners_involved

SYSTEM = "carewatch"
ACTIVE = ("open", "acknowledged")


class AlertNotFound(LookupError):
    """No alert with that id (or none the caller may see)."""


class AlertTransitionError(ValueError):
    """The change is not allowed from the alert's current status (e.g. resolving a resolved alert)."""


_COLUMNS = (
    "id, kind, severity, status, subject_type, subject_id, raised_at, resolved_at, updated_at, "
    "message, package_id, shift_id, carer_id, provider_id, commissioner_id, caused_by_late_data, details, "
    "commissioner_ids, provider_ids"
)


def _alert(row: dict[str, Any], history: Sequence[AlertChange] = ()) -> AlertRecord:
    fields = {**row, "commissioner_ids": tuple(row.get("commissioner_ids") or ()),
              "provider_ids": tuple(row.get("provider_ids") or ())}
    return AlertRecord(**fields, history=tuple(history))


async def _record(
    conn: AsyncConnection[Any], alert_id: int, status: str, at: datetime, by: str, note: str | None
) -> None:
    await conn.execute(
        "INSERT INTO alert_history (alert_id, status, changed_at, changed_by, note)"
        " VALUES (%s, %s, %s, %s, %s)",
        (alert_id, status, at, by, note),
    )


def _auto_note(d: AlertDecision) -> str:
    if d.late_data:
        return (
            "auto-resolved: an event that arrived late shows the condition was met before the deadline "
            "(caused by late data)"
        )
    return "auto-resolved: the condition no longer holds"


# The commissioners an alert reaches: its own, and those of the packages involved (JSON array text).
_AUDIENCE = """ARRAY(SELECT DISTINCT x FROM unnest(ARRAY[d.commissioner]
                  || ARRAY(SELECT jsonb_array_elements_text(d.audience::jsonb))) AS x
                  WHERE x IS NOT NULL ORDER BY x)"""

# Raise: one active alert per kind and subject (the partial unique index), and once-per-subject
# kinds never raised twice for a subject. Resolve: close the active alert of kind and subject.
# Each statement takes a whole round of decisions as arrays; every change goes to alert_history.
_RAISE_MANY = f"""
INSERT INTO alerts (kind, severity, status, subject_type, subject_id, raised_at, updated_at, message,
                    package_id, shift_id, carer_id, provider_id, commissioner_id, details, commissioner_ids,
                    provider_ids)
SELECT d.kind, d.severity, 'open', d.st, d.sid, %(now)s, %(now)s, d.message, d.package, d.shift, d.carer,
       d.provider, d.commissioner, d.details::jsonb, {_AUDIENCE}, array_remove(ARRAY[d.provider], NULL)
FROM unnest(%(kind)s::text[], %(severity)s::text[], %(st)s::text[], %(sid)s::text[], %(message)s::text[],
            %(package)s::text[], %(shift)s::text[], %(carer)s::text[], %(provider)s::text[],
            %(commissioner)s::text[], %(details)s::text[], %(once)s::boolean[], %(audience)s::text[])
     WITH ORDINALITY
     AS d(kind, severity, st, sid, message, package, shift, carer, provider, commissioner, details, once,
          audience, n)
WHERE NOT d.once OR NOT EXISTS (
    SELECT 1 FROM alerts a WHERE a.subject_id = d.sid AND a.kind = d.kind AND a.subject_type = d.st)
ORDER BY d.n
ON CONFLICT (kind, subject_type, subject_id) WHERE status IN ('open', 'acknowledged') DO NOTHING
RETURNING {_COLUMNS}"""

_RESOLVE_MANY = """
UPDATE alerts a SET status = 'auto_resolved', resolved_at = %(now)s, updated_at = %(now)s,
       caused_by_late_data = d.late, details = a.details || d.extra::jsonb
FROM unnest(%(kind)s::text[], %(st)s::text[], %(sid)s::text[], %(late)s::boolean[], %(extra)s::text[])
     AS d(kind, st, sid, late, extra)
WHERE a.subject_id = d.sid AND a.kind = d.kind AND a.subject_type = d.st AND a.status IN ('open', 'acknowledged')
RETURNING """ + ", ".join(f"a.{c.strip()}" for c in _COLUMNS.split(","))

_HISTORY_MANY = """
INSERT INTO alert_history (alert_id, status, changed_at, changed_by, note)
SELECT i, s, %(now)s, %(by)s, n FROM unnest(%(ids)s::bigint[], %(status)s::text[], %(note)s::text[]) AS u(i, s, n)
ORDER BY u.i"""

_Key = tuple[str, str, str]


def _key(d: AlertDecision) -> _Key:
    return d.kind.value, d.subject_type, d.subject_id


def _rounds(decisions: Iterable[AlertDecision]) -> list[list[AlertDecision]]:
    """Consecutive runs in which no (kind, subject) is both raised and resolved.

    Within a run only the first decision per (kind, subject) can change anything: a second raise
    meets the alert the first opened, a second resolve finds none open. So a run applied at once
    leaves what applying its decisions one by one leaves; a raise-then-resolve needs two runs.
    """
    rounds: list[list[AlertDecision]] = []
    actions: dict[_Key, str] = {}
    for d in decisions:
        if not rounds or actions.get(_key(d), d.action) != d.action:
            rounds.append([])
            actions = {}
        actions.setdefault(_key(d), d.action)
        rounds[-1].append(d)
    return rounds


async def apply_decisions(
    conn: AsyncConnection[Any], decisions: Iterable[AlertDecision], now: datetime, by: str = SYSTEM
) -> list[AlertRecord]:
    """Apply the rules' decisions as if one by one, in a few statements a round; return the alerts
    that changed, in decision order, each change once (to publish after commit)."""
    changed: list[AlertRecord] = []
    for run in _rounds(await with_audience(conn, list(decisions), now)):
        changed += await _apply_round(conn, run, now, by)
    return changed


async def with_audience(conn: AsyncConnection[Any], decisions: list[AlertDecision],
                        now: datetime) -> list[AlertDecision]:
    """The raises of carer- and provider-level alerts with the commissioners involved (domain/audience.py)."""
    wanted = [(i, w) for i, d in enumerate(decisions) if (w := involvement(d, now)) is not None]
    if not wanted:
        return decisions
    found = await commissioners_involved(conn, [w for _, w in wanted])
    out = list(decisions)
    for (i, _), audience in zip(wanted, found, strict=True):
        out[i] = replace(out[i], audience=audience)
    return out


_ACTIVE_SEVERITY = """
SELECT id, kind, subject_type, subject_id, severity, status FROM alerts
WHERE status IN ('open', 'acknowledged') AND kind = ANY(%s) AND subject_id = ANY(%s) FOR UPDATE"""


async def regrade(conn: AsyncConnection[Any], decisions: Iterable[AlertDecision], now: datetime,
                  by: str = SYSTEM) -> list[AlertRecord]:
    """A graded kind's active alert takes the level its raise decision says (warning <-> critical), the
    message and figures with it; each change of level is kept in history with the new severity."""
    wanted = {_key(d): d for d in decisions if d.action == "raise" and d.kind in GRADED}
    if not wanted:
        return []
    cur = await conn.execute(_ACTIVE_SEVERITY, (sorted({k[0] for k in wanted}), sorted({k[2] for k in wanted})))
    changed_ids: list[int] = []
    for alert_id, kind, st, sid, severity, status in await cur.fetchall():
        d = wanted.get((kind, st, sid))
        if d is None or d.severity == severity:
            continue
        await conn.execute("UPDATE alerts SET severity = %s, message = %s, details = %s::jsonb, updated_at = %s"
                           " WHERE id = %s", (d.severity, d.message, json.dumps(d.details), now, alert_id))
        await conn.execute(
            "INSERT INTO alert_history (alert_id, status, changed_at, changed_by, note, severity)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (alert_id, status, now, by, f"severity {severity} -> {d.severity}: {d.message}", d.severity))
        changed_ids.append(alert_id)
    return await get_alerts(conn, changed_ids)


async def _apply_round(conn: AsyncConnection[Any], decisions: Sequence[AlertDecision], now: datetime,
                       by: str) -> list[AlertRecord]:
    raises: dict[_Key, AlertDecision] = {}
    resolves: dict[_Key, AlertDecision] = {}
    for d in decisions:
        (raises if d.action == "raise" else resolves).setdefault(_key(d), d)
    changed: dict[_Key, AlertRecord] = {}
    history: tuple[list[int], list[str], list[str]] = ([], [], [])
    resolved: list[tuple[_Key, dict[str, Any]]] = []
    async with conn.cursor(row_factory=dict_row) as cur:
        if raises:
            ds = list(raises.values())
            await cur.execute(_RAISE_MANY, {
                "now": now, "kind": [d.kind.value for d in ds], "severity": [d.severity for d in ds],
                "st": [d.subject_type for d in ds], "sid": [d.subject_id for d in ds],
                "message": [d.message for d in ds], "package": [d.package_id for d in ds],
                "shift": [d.shift_id for d in ds], "carer": [d.carer_id for d in ds],
                "provider": [d.provider_id for d in ds], "commissioner": [d.commissioner_id for d in ds],
                "details": [json.dumps(d.details) for d in ds], "once": [d.kind in ONCE_PER_SUBJECT for d in ds],
                "audience": [json.dumps(list(d.audience)) for d in ds],
            })
            for row in await cur.fetchall():
                key = (row["kind"], row["subject_type"], row["subject_id"])
                note = f"raised: {raises[key].message}"
                changed[key] = _alert(row, [AlertChange("open", now, by, note)])
                history[0].append(row["id"])
                history[1].append("open")
                history[2].append(note)
        if resolves:
            ds = list(resolves.values())
            await cur.execute(_RESOLVE_MANY, {
                "now": now, "kind": [d.kind.value for d in ds], "st": [d.subject_type for d in ds],
                "sid": [d.subject_id for d in ds], "late": [d.late_data for d in ds],
                "extra": [json.dumps({"resolution": d.details} if d.details else {}) for d in ds],
            })
            for row in await cur.fetchall():
                key = (row["kind"], row["subject_type"], row["subject_id"])
                resolved.append((key, row))
                history[0].append(row["id"])
                history[1].append("auto_resolved")
                history[2].append(_auto_note(resolves[key]))
        if history[0]:
            await cur.execute(_HISTORY_MANY, {"now": now, "by": by, "ids": history[0], "status": history[1],
                                              "note": history[2]})
    if resolved:
        past = await histories(conn, [row["id"] for _, row in resolved])
        for key, row in resolved:
            changed[key] = _alert(row, past.get(row["id"], []))
    return [changed[k] for k in dict.fromkeys(_key(d) for d in decisions) if k in changed]


async def open_subjects(conn: AsyncConnection[Any], kinds: Iterable[AlertKind]) -> set[tuple[str, str]]:
    """(kind, subject_id) of the alerts open now among these kinds: lets sweeps skip no-op writes."""
    cur = await conn.execute(
        "SELECT kind, subject_id FROM alerts WHERE status IN ('open', 'acknowledged') AND kind = ANY(%s)",
        ([k.value for k in kinds],),
    )
    return {(str(k), str(s)) for k, s in await cur.fetchall()}


def worth_applying(decisions: Iterable[AlertDecision], open_now: set[tuple[str, str]]) -> list[AlertDecision]:
    """Drop raises of alerts already open and resolves of alerts not open."""
    return [d for d in decisions if ((d.kind.value, d.subject_id) in open_now) == (d.action == "resolve")]


async def histories(conn: AsyncConnection[Any], alert_ids: Sequence[int]) -> dict[int, list[AlertChange]]:
    cur = await conn.execute(
        "SELECT alert_id, status, changed_at, changed_by, note, severity FROM alert_history "
        "WHERE alert_id = ANY(%s) ORDER BY alert_id, id",
        (list(alert_ids),),
    )
    found: dict[int, list[AlertChange]] = {}
    for alert_id, status, at, by, note, severity in await cur.fetchall():
        found.setdefault(alert_id, []).append(AlertChange(status, at, by, note, severity))
    return found


async def get_alert(conn: AsyncConnection[Any], alert_id: int) -> AlertRecord | None:
    found = await get_alerts(conn, [alert_id])
    return found[0] if found else None


async def get_alerts(conn: AsyncConnection[Any], alert_ids: Sequence[int]) -> list[AlertRecord]:
    """The alerts with these ids that exist, in the order given, each with its history (two queries)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id = ANY(%s)", (list(alert_ids),))
        rows = {row["id"]: row for row in await cur.fetchall()}
    past = await histories(conn, list(rows))
    return [_alert(rows[i], past.get(i, [])) for i in alert_ids if i in rows]


async def _change(
    conn: AsyncConnection[Any],
    alert_id: int,
    status: str,
    allowed_from: tuple[str, ...],
    by: str,
    note: str | None,
    now: datetime,
) -> AlertRecord:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT status FROM alerts WHERE id = %s FOR UPDATE", (alert_id,))
        row = await cur.fetchone()
        if row is None:
            raise AlertNotFound(f"no alert {alert_id}")
        if row["status"] not in allowed_from:
            raise AlertTransitionError(f"alert {alert_id} is {row['status']}; it cannot become {status}")
        resolved = status in ("resolved", "auto_resolved")
        await cur.execute(
            "UPDATE alerts SET status = %s, updated_at = %s,"
            " resolved_at = CASE WHEN %s THEN %s ELSE resolved_at END"
            " WHERE id = %s",
            (status, now, resolved, now, alert_id),
        )
    await _record(conn, alert_id, status, now, by, note)
    alert = await get_alert(conn, alert_id)
    assert alert is not None  # locked above, in this transaction
    return alert


async def acknowledge(
    conn: AsyncConnection[Any], alert_id: int, by: str, note: str | None, now: datetime
) -> AlertRecord:
    """Someone has seen the alert and is acting on it; it stays active (blocks a duplicate)."""
    return await _change(conn, alert_id, "acknowledged", ("open", "acknowledged"), by, note, now)


async def resolve(conn: AsyncConnection[Any], alert_id: int, by: str, note: str, now: datetime) -> AlertRecord:
    """A person closes the alert, saying why."""
    return await _change(conn, alert_id, "resolved", ACTIVE, by, note, now)


_RECORDED = """
SELECT subject_id, details ->> 'overlap_start', status IN ('open', 'acknowledged')
FROM alerts WHERE kind = 'DOUBLE_BOOKED_CARER' AND subject_type = 'carer' AND subject_id = ANY(%s)"""


async def recorded_overlaps(conn: AsyncConnection[Any], carer_ids: Sequence[str]) -> dict[str, list[RecordedOverlap]]:
    """The DOUBLE_BOOKED_CARER alerts stored for these carers, by the overlap each named."""
    found: dict[str, list[RecordedOverlap]] = {c: [] for c in carer_ids}
    cur = await conn.execute(_RECORDED, (list(carer_ids),))
    for carer, start, active in await cur.fetchall():
        found[carer].append(RecordedOverlap(datetime.fromisoformat(start) if start else None, bool(active)))
    return found


_SETTLED = f"""
INSERT INTO alerts (kind, severity, status, subject_type, subject_id, raised_at, resolved_at, updated_at,
                    message, package_id, shift_id, carer_id, provider_id, commissioner_id, details,
                    commissioner_ids, provider_ids)
SELECT %(kind)s, %(severity)s, 'auto_resolved', %(st)s, %(sid)s, %(now)s, %(now)s, %(now)s, %(message)s,
        %(package)s, %(shift)s, %(carer)s, d.provider, d.commissioner, %(details)s::jsonb, {_AUDIENCE},
        array_remove(ARRAY[d.provider], NULL)
FROM (SELECT %(provider)s::text AS provider, %(commissioner)s::text AS commissioner,
             %(audience)s::text AS audience) AS d
RETURNING {_COLUMNS}"""


async def record_settled(conn: AsyncConnection[Any], decisions: Sequence[AlertDecision], now: datetime,
                         by: str = SYSTEM) -> list[AlertRecord]:
    """Store conditions that began and ended before they were seen (a settled overlap, say): each an
    alert raised and auto-resolved at once, both changes in its history; the active one is untouched."""
    changed: list[AlertRecord] = []
    async with conn.cursor(row_factory=dict_row) as cur:
        for d in await with_audience(conn, list(decisions), now):
            await cur.execute(_SETTLED, {
                "kind": d.kind.value, "severity": d.severity, "st": d.subject_type, "sid": d.subject_id,
                "now": now, "message": d.message, "package": d.package_id, "shift": d.shift_id,
                "carer": d.carer_id, "provider": d.provider_id, "commissioner": d.commissioner_id,
                "details": json.dumps(d.details), "audience": json.dumps(list(d.audience))})
            row = await cur.fetchone()
            assert row is not None
            changes = [AlertChange("open", now, by, f"raised: {d.message}"),
                       AlertChange("auto_resolved", now, by, "auto-resolved: it had already ended when it was seen")]
            for change in changes:
                await _record(conn, row["id"], change.status, now, by, change.note)
            changed.append(_alert(row, changes))
    return changed


_UNKNOWN_CARERS = """
SELECT subject_id, carer_id, provider_id, shift_id FROM alerts
WHERE kind = 'UNKNOWN_CARER' AND status IN ('open', 'acknowledged') AND carer_id = ANY(%s)"""


async def open_unknown_carers(conn: AsyncConnection[Any], carer_ids: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """The open UNKNOWN_CARER alerts of these carers, as (subject, carer, the shift's provider, shift)."""
    cur = await conn.execute(_UNKNOWN_CARERS, (list(carer_ids),))
    return [(str(s), str(c), str(p), str(sh or "")) for s, c, p, sh in await cur.fetchall()]
