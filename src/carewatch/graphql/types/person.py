"""Person: who a package is for; the NHS number is masked except to admin."""

import strawberry

from carewatch.domain.identifiers import mask_nhs_number
from carewatch.store.rows import PackageRecord
from carewatch.store.scope import Viewer


@strawberry.type(description="The person receiving care.")
class Person:
    person_id: strawberry.ID
    nhs_number: str = strawberry.field(description="Masked except to admin.")

    @classmethod
    def from_row(cls, record: PackageRecord, viewer: Viewer) -> "Person":
        nhs = record.nhs_number if viewer.is_admin else mask_nhs_number(record.nhs_number)
        return cls(person_id=strawberry.ID(record.person_id), nhs_number=nhs)
