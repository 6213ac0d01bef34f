"""Filter inputs of the list queries, and the alert filter's check for alerts arriving on the bus."""

from datetime import UTC, datetime

import strawberry

from carewatch.alerts.record import AlertRecord
from carewatch.graphql.errors import ClientError
from carewatch.graphql.types.shift import ShiftStatus


@strawberry.input(description="Narrow packages to one commissioner and/or one provider.")
class PackageFilter:
    commissioner_id: strawberry.ID | None = None
    provider_id: strawberry.ID | None = None


@strawberry.input(description="Narrow shifts; from/to bound starts_at as [from, to).")
class ShiftFilter:
    package_id: strawberry.ID | None = None
    provider_id: strawberry.ID | None = None
    status: ShiftStatus | None = None  # type: ignore[valid-type]
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None


@strawberry.input(description="Narrow alerts; `since` keeps those raised or changed at or after it.")
class AlertFilter:
    kinds: list[str] | None = None
    severities: list[str] | None = None
    statuses: list[str] | None = None
    package_id: strawberry.ID | None = None
    provider_id: strawberry.ID | None = None
    commissioner_id: strawberry.ID | None = None
    since: datetime | None = None


def alert_since(f: AlertFilter | None) -> datetime | None:
    if f is None or f.since is None:
        return None
    if f.since.tzinfo is None:
        raise ClientError("since needs a UTC offset, e.g. 2026-04-06T08:00:00Z")
    return f.since.astimezone(UTC)


def alert_matches(f: AlertFilter | None, a: AlertRecord) -> bool:
    if f is None:
        return True
    since = alert_since(f)
    return (
        (not f.kinds or a.kind in f.kinds)
        and (not f.severities or a.severity in f.severities)
        and (not f.statuses or a.status in f.statuses)
        and (f.package_id is None or a.package_id == str(f.package_id))
        and (f.provider_id is None or a.provider_id == str(f.provider_id))
        and (f.commissioner_id is None or str(f.commissioner_id) in (a.commissioner_ids or (a.commissioner_id,)))
        and (since is None or a.updated_at >= since)
    )
