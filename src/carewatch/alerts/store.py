"""The alert store: raise, acknowledge, resolve and auto-resolve, each change kept in alert_history.

Every function runs inside the caller's transaction (the worker's batch, a sweep, a mutation);
publishing on Redis is the caller's job, after its commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from carewatch.domain.alert_rules import ONCE_PER_SUBJECT, AlertDecision, AlertKind

SYSTEM = "carewatch"
ACTIVE = ("open", "acknowledged")


class AlertNotFound(LookupError):
    """No alert with that id (or none the caller may see)."""


class AlertTransitionError(ValueError):
    """The change is not allowed from the alert's current status (e.g. resolving a resolved alert)."""


@dataclass(frozen=True)
class AlertChange:
    status: str
    changed_at: datetime
    changed_by: str
    note: str | None


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    severity: str
    status: str
    subject_type: str
    subject_id: str
    raised_at: datetime
    resolved_at: datetime | None
    updated_at: datetime
    message: str
    package_id: str | None
    shift_id: str | None
    carer_id: str | None
    provider_id: str | None
    commissioner_id: str | None
    caused_by_late_data: bool
    details: dict[str, Any]
    history: tuple[AlertChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form published on Redis and read back by the API's subscriptions."""
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "raised_at": self.raised_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "updated_at": self.updated_at.isoformat(),
            "message": self.message,
            "package_id": self.package_id,
            "shift_id": self.shift_id,
            "carer_id": self.carer_id,
            "provider_id": self.provider_id,
            "commissioner_id": self.commissioner_id,
            "caused_by_late_data": self.caused_by_late_data,
            "details": self.details,
            "history": [
                {
                    "status": h.status,
                    "changed_at": h.changed_at.isoformat(),
                    "changed_by": h.changed_by,
                    "note": h.note,
                }
                for h in self.history
            ],
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Alert:
        def instant(v: Any) -> datetime | None:
            return datetime.fromisoformat(v) if v else None

        fields = {k: data[k] for k in Alert.__dataclass_fields__ if k in data and k != "history"}
        for k in ("raised_at", "resolved_at", "updated_at"):
            fields[k] = instant(data.get(k))
        history = tuple(
            AlertChange(h["status"], datetime.fromisoformat(h["changed_at"]), h["changed_by"], h.get("note"))
            for h in data.get("history", [])
        )
        return Alert(**fields, history=history)


_COLUMNS = (
    "id, kind, severity, status, subject_type, subject_id, raised_at, resolved_at, updated_at, "
    "message, package_id, shift_id, carer_id, provider_id, commissioner_id, caused_by_late_data, details"
)


def _alert(row: dict[str, Any], history: Sequence[AlertChange] = ()) -> Alert:
    return Alert(**row, history=tuple(history))


async def _record(
    conn: AsyncConnection[Any], alert_id: int, status: str, at: datetime, by: str, note: str | None
) -> None:
    await conn.execute(
        "INSERT INTO alert_history (alert_id, status, changed_at, changed_by, note)"
        " VALUES (%s, %s, %s, %s, %s)",
        (alert_id, status, at, by, note),
    )


async def raise_alert(
    conn: AsyncConnection[Any], d: AlertDecision, now: datetime, by: str = SYSTEM
) -> Alert | None:
    """Open the alert unless one is open for (kind, subject) — or ever was, for once-per-subject kinds."""
    once = d.kind in ONCE_PER_SUBJECT
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"""INSERT INTO alerts (kind, severity, status, subject_type, subject_id, raised_at, updated_at,
                                    message, package_id, shift_id, carer_id, provider_id, commissioner_id,
                                    details)
                SELECT %(kind)s, %(severity)s, 'open', %(st)s, %(sid)s, %(now)s, %(now)s, %(message)s,
                       %(package)s, %(shift)s, %(carer)s, %(provider)s, %(commissioner)s, %(details)s
                WHERE NOT %(once)s OR NOT EXISTS (
                    SELECT 1 FROM alerts
                    WHERE subject_id = %(sid)s AND kind = %(kind)s AND subject_type = %(st)s)
                ON CONFLICT (kind, subject_type, subject_id) WHERE status IN ('open', 'acknowledged')
                DO NOTHING
                RETURNING {_COLUMNS}""",
            {
                "kind": d.kind.value,
                "severity": d.severity,
                "st": d.subject_type,
                "sid": d.subject_id,
                "now": now,
                "message": d.message,
                "package": d.package_id,
                "shift": d.shift_id,
                "carer": d.carer_id,
                "provider": d.provider_id,
                "commissioner": d.commissioner_id,
                "details": Jsonb(d.details),
                "once": once,
            },
        )
        row = await cur.fetchone()
    if row is None:
        return None
    note = f"raised: {d.message}"
    await _record(conn, row["id"], "open", now, by, note)
    return _alert(row, [AlertChange("open", now, by, note)])


def _auto_note(d: AlertDecision) -> str:
    if d.late_data:
        return (
            "auto-resolved: an event that arrived late shows the condition was met before the deadline "
            "(caused by late data)"
        )
    return "auto-resolved: the condition no longer holds"


async def auto_resolve(
    conn: AsyncConnection[Any], d: AlertDecision, now: datetime, by: str = SYSTEM
) -> Alert | None:
    """Close the open alert of (kind, subject), if any, as auto_resolved."""
    note = _auto_note(d)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"""UPDATE alerts SET status = 'auto_resolved', resolved_at = %s, updated_at = %s,
                       caused_by_late_data = %s, details = details || %s
                WHERE subject_id = %s AND kind = %s AND subject_type = %s
                  AND status IN ('open', 'acknowledged')
                RETURNING {_COLUMNS}""",
            (
                now,
                now,
                d.late_data,
                Jsonb({"resolution": d.details}) if d.details else Jsonb({}),
                d.subject_id,
                d.kind.value,
                d.subject_type,
            ),
        )
        row = await cur.fetchone()
    if row is None:
        return None
    await _record(conn, row["id"], "auto_resolved", now, by, note)
    return _alert(row, await _history(conn, row["id"]))


async def apply_decisions(
    conn: AsyncConnection[Any], decisions: Iterable[AlertDecision], now: datetime, by: str = SYSTEM
) -> list[Alert]:
    """Apply the rules' decisions; return the alerts that changed (to publish after commit)."""
    changed: list[Alert] = []
    for d in decisions:
        alert = await (raise_alert if d.action == "raise" else auto_resolve)(conn, d, now, by)
        if alert is not None:
            changed.append(alert)
    return changed


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


async def _history(conn: AsyncConnection[Any], alert_id: int) -> list[AlertChange]:
    return (await histories(conn, [alert_id])).get(alert_id, [])


async def histories(conn: AsyncConnection[Any], alert_ids: Sequence[int]) -> dict[int, list[AlertChange]]:
    cur = await conn.execute(
        "SELECT alert_id, status, changed_at, changed_by, note FROM alert_history "
        "WHERE alert_id = ANY(%s) ORDER BY alert_id, id",
        (list(alert_ids),),
    )
    found: dict[int, list[AlertChange]] = {}
    for alert_id, status, at, by, note in await cur.fetchall():
        found.setdefault(alert_id, []).append(AlertChange(status, at, by, note))
    return found


async def get_alert(conn: AsyncConnection[Any], alert_id: int) -> Alert | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM alerts WHERE id = %s", (alert_id,))
        row = await cur.fetchone()
    return None if row is None else _alert(row, await _history(conn, alert_id))


async def _change(
    conn: AsyncConnection[Any],
    alert_id: int,
    status: str,
    allowed_from: tuple[str, ...],
    by: str,
    note: str | None,
    now: datetime,
) -> Alert:
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
) -> Alert:
    """Someone has seen the alert and is acting on it; it stays active (blocks a duplicate)."""
    return await _change(conn, alert_id, "acknowledged", ("open", "acknowledged"), by, note, now)


async def resolve(conn: AsyncConnection[Any], alert_id: int, by: str, note: str, now: datetime) -> Alert:
    """A person closes the alert, saying why."""
    return await _change(conn, alert_id, "resolved", ACTIVE, by, note, now)
