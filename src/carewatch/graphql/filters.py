"""Filter inputs of the list queries."""

from datetime import datetime

import strawberry

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
