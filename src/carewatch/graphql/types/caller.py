# mypy: disable-error-code="untyped-decorator"
"""Caller: who the token belongs to, so a client can say so and offer what the role may do."""

from __future__ import annotations

import strawberry

from carewatch.domain.alert_rules import SEVERITY
from carewatch.security.roles import Viewer


@strawberry.type(description="The caller behind the token: its role and scope.")
class Caller:
    role: str
    commissioner_id: strawberry.ID | None
    provider_id: strawberry.ID | None
    may_act_on_alerts: bool = strawberry.field(description="May acknowledge and resolve alerts.")

    @classmethod
    def of(cls, viewer: Viewer, may_act_on_alerts: bool) -> Caller:
        def _id(value: str | None) -> strawberry.ID | None:
            return None if value is None else strawberry.ID(value)

        return cls(role=viewer.role.value, commissioner_id=_id(viewer.commissioner_id),
                   provider_id=_id(viewer.provider_id), may_act_on_alerts=may_act_on_alerts)


@strawberry.type(description="A kind of alert and the severity it is raised with by default.")
class AlertKindInfo:
    kind: str
    severity: str


def alert_kinds() -> list[AlertKindInfo]:
    return [AlertKindInfo(kind=kind.value, severity=severity) for kind, severity in SEVERITY.items()]
