"""A shift's status now, by the domain rule, with the package's own lateness thresholds."""

from __future__ import annotations

from carewatch.domain.model import Shift, ShiftStatus
from carewatch.domain.status import shift_status
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS, apply_overrides
from carewatch.graphql.context import Info


async def status_of(info: Info, shift: Shift) -> ShiftStatus:
    loaders = info.context.loaders
    ledger = await loaders.ledgers.load(shift.shift_id)
    record = await loaders.packages.load(shift.package_id)
    thresholds = DEFAULT_THRESHOLDS
    if record is not None:
        thresholds = apply_overrides(DEFAULT_THRESHOLDS, dict(record.package.thresholds))
    return shift_status(shift, ledger, info.context.clock.now(),
                        late_after_minutes=thresholds.late_start_minutes,
                        missed_after_minutes=thresholds.missed_visit_minutes)
