"""The fast sweep's settled judgements: UNKNOWN_CARER and PAY_BELOW_MINIMUM, decided once the facts
they need from other partitions have had time to arrive (store/settling.py, docs/domain-rules.md
"Settling").

A carer's registration and their clock-ins, a week's attendance and its travel, travel on different
partitions; deciding in the batch that brings the first of them made the alerts depend on arrival
order (a restart, a rebalance or a lagging partition raised an UNKNOWN_CARER or a PAY_BELOW_MINIMUM
that the next batch resolved). Waiting `SweepConfig.settle` of processing time first makes the same
feed give the same alerts; what arrives later still resolves (as late data) or raises then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from carewatch.alerts.record import AlertRecord
from carewatch.alerts.repository import apply_decisions, open_subjects, worth_applying
from carewatch.alerts.sweeps import SweepConfig
from carewatch.domain.alert_rules import AlertDecision
from carewatch.domain.effective_pay import pay_decision
from carewatch.domain.visits import settled_unknown_carers, visit_state
from carewatch.store.carer_weeks import carer_pay, carer_weeks
from carewatch.store.people import carer_records
from carewatch.store.settling import PAY, UNKNOWN_CARER, due, settle
from carewatch.store.shift_facts import load_shift_facts


async def _unknown_carers(conn: AsyncConnection[Any], before: datetime, config: SweepConfig) -> list[AlertDecision]:
    waiting = await due(conn, UNKNOWN_CARER, before)
    if not waiting:
        return []
    carers = await carer_records(conn, {w.carer_id for w in waiting})
    facts = await load_shift_facts(conn, {w.shift_id for w in waiting})
    visits = {s: visit_state(f, config.thresholds)[0] for s, f in facts.items()}
    # Deleted before the alert is written: a registration arriving meanwhile waits on the row, then
    # reads (and resolves) the alert; one that took the row first leaves nothing here to raise.
    settled = await settle(conn, waiting)
    return settled_unknown_carers([(w.carer_id, w.shift_id) for w in waiting if (w.carer_id, w.shift_id) in settled],
                                  carers, visits)


async def _pay(conn: AsyncConnection[Any], now: datetime, before: datetime, config: SweepConfig) -> list[AlertDecision]:
    waiting = await due(conn, PAY, before)
    if not waiting:
        return []
    registered = await carer_pay(conn, {w.carer_id for w in waiting})
    stored = await carer_weeks(conn, registered)
    # A week that moved after it was read here left its row changed: it is judged on the next tick.
    settled = {carer for carer, _ in await settle(conn, waiting)}
    today = now.astimezone(ZoneInfo(config.timezone)).date()
    return [pay_decision(carer, provider, pay, born, today, stored.get(carer, ()))
            for carer, (provider, pay, born) in sorted(registered.items()) if carer in settled]


async def sweep_settled(conn: AsyncConnection[Any], now: datetime, config: SweepConfig) -> list[AlertRecord]:
    """UNKNOWN_CARER and PAY_BELOW_MINIMUM for what has waited `config.settle` by this clock."""
    before = now - config.settle
    decisions = await _unknown_carers(conn, before, config) + await _pay(conn, now, before, config)
    if not decisions:
        return []
    kinds = {d.kind for d in decisions}
    return await apply_decisions(conn, worth_applying(decisions, await open_subjects(conn, kinds)), now)
