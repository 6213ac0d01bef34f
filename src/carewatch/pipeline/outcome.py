"""What a batch did: counts, the shifts it touched, the alerts to publish and what it refused."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from carewatch.alerts.record import AlertRecord
from carewatch.schema.events import CareEvent, Rejection


@dataclass(frozen=True)
class BatchOutcome:
    applied: int = 0
    duplicates: int = 0
    held: int = 0
    released: int = 0
    rejected: int = 0
    affected_shift_ids: tuple[str, ...] = ()
    applied_events: tuple[CareEvent, ...] = field(default=(), repr=False)
    alerts: tuple[AlertRecord, ...] = field(default=(), repr=False)  # changed in this batch: publish after commit
    rejections: tuple[Rejection, ...] = field(default=(), repr=False)  # refused here (scope): to record

    def applied_by_type(self) -> Counter[str]:
        return Counter(e.type for e in self.applied_events)


def merge_outcomes(a: BatchOutcome, b: BatchOutcome) -> BatchOutcome:
    return BatchOutcome(a.applied + b.applied, a.duplicates + b.duplicates, a.held + b.held,
                        a.released + b.released, a.rejected + b.rejected,
                        tuple(sorted(set(a.affected_shift_ids) | set(b.affected_shift_ids))),
                        a.applied_events + b.applied_events, a.alerts + b.alerts, a.rejections + b.rejections)
