"""The rota: every visit due in the window as a shift, with carers assigned the way a coordinator would."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from carewatch.simulator.packages import CarePackage, Visit
from carewatch.simulator.people import Carer

TRAVEL = timedelta(minutes=15)  # a carer needs this long between calls


@dataclass(frozen=True)
class RotaShift:
    shift_id: str
    package: CarePackage
    visit: Visit
    starts_at: datetime  # aware UTC
    ends_at: datetime
    carer_ids: tuple[str, ...]

    @property
    def seconds(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds())


def due_shifts(packages: list[CarePackage], start: datetime, end: datetime, tz: ZoneInfo
               ) -> list[tuple[datetime, datetime, CarePackage, Visit, str]]:
    """Visits starting in [start, end): local wall-clock times, so a night across a clock change is as long
    as it really is."""
    due = []
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    for package in packages:
        day = first
        while day <= last:
            for visit in package.visits:
                if day.weekday() not in visit.weekdays:
                    continue
                local = datetime.combine(day, visit.at)
                starts = local.replace(tzinfo=tz).astimezone(UTC)
                ends = (local + timedelta(minutes=visit.minutes)).replace(tzinfo=tz).astimezone(UTC)
                if start <= starts < end:
                    shift_id = f"SH-{package.package_id[4:]}-{day:%Y%m%d}-{visit.slot}"
                    due.append((starts, ends, package, visit, shift_id))
            day += timedelta(days=1)
    due.sort(key=lambda d: (d[0], d[4]))
    return due


def assign(rng: random.Random, due: list[tuple[datetime, datetime, CarePackage, Visit, str]],
           carers: dict[str, list[Carer]]) -> list[RotaShift]:
    """Give each shift free carers of its provider, preferring those with the competencies it needs;
    when nobody is free the coordinator double-books the carer free soonest, as happens in real rotas."""
    free_from: dict[str, datetime] = defaultdict(lambda: datetime.min.replace(tzinfo=UTC))
    shifts = []
    for starts, ends, package, visit, shift_id in due:
        pool = carers[package.provider.provider_id]
        free = [c for c in pool if free_from[c.carer_id] + TRAVEL <= starts]
        skilled = [c for c in free if set(visit.competencies) <= set(c.competencies)]
        # Now and then the only carer available lacks a competency (COMPETENCE_MISMATCH).
        candidates = skilled if skilled and rng.random() > 0.03 else free or pool
        chosen: list[Carer] = []
        for _ in range(visit.carers):
            left = [c for c in candidates if c not in chosen] or [c for c in pool if c not in chosen]
            best = min(left, key=lambda c: (free_from[c.carer_id], c.carer_id))
            chosen.append(best)
            free_from[best.carer_id] = max(free_from[best.carer_id], ends)
        shifts.append(RotaShift(shift_id, package, visit, starts, ends, tuple(c.carer_id for c in chosen)))
    return shifts
