"""A shift's status now, by the domain rule, with the lateness thresholds of its commissioner and package."""

from __future__ import annotations

from carewatch.domain.model import Shift, ShiftStatus
from carewatch.domain.status import shift_status
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS, resolve_thresholds
from carewatch.graphql.context import Info


async def status_of(info: Info, shift: Shift) -> ShiftStatus:
    loaders = info.context.loaders
    ledger = await loaders.ledgers.load(shift.shift_id)
    record = await loaders.packages.load(shift.package_id)
    thresholds = DEFAULT_THRESHOLDS
    if record is not None:
        thresholds = resolve_thresholds(DEFAULT_THRESHOLDS, dict(record.commissioner_thresholds),
                                        dict(record.package.thresholds))
    return shift_status(shift, ledger, info.context.clock.now(), thresholds)
