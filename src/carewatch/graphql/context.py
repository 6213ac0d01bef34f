"""The per-request context: who is asking, the shared resources, and fresh DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import strawberry
from psycopg_pool import AsyncConnectionPool
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from carewatch.clock import Clock
from carewatch.graphql.alerts_hub import AlertHub
from carewatch.graphql.loaders import Loaders, make_loaders
from carewatch.security.gate import viewer_in_scope
from carewatch.security.roles import Role
from carewatch.settings import Settings
from carewatch.store.scope import Viewer

if TYPE_CHECKING:
    from carewatch.graphql.fanout import Group

# An ingest viewer without a scope reads nothing (store/scope.py).
NOBODY = Viewer(Role.INGEST, None)

__all__ = ["Context", "Info", "Viewer", "build_context", "viewer_from_request"]


@dataclass
class Context:
    request: Request | WebSocket | None  # None: a group's shared execution (graphql/fanout.py)
    response: Response | WebSocket | None
    viewer: Viewer
    pool: AsyncConnectionPool
    clock: Clock
    settings: Settings
    loaders: Loaders
    hub: AlertHub  # the process's one Redis subscription, owned by the app's lifespan
    group: Group | None = None  # the subscribers this execution is for, when they are a group


Info: TypeAlias = strawberry.Info[Context, None]


def viewer_from_request(connection: HTTPConnection) -> Viewer:
    """Who is calling: the token the access gate (security/gate.py) authenticated.

    This is the ONE place GraphQL learns the viewer. Without an authenticated token (which the
    gate never lets through) the viewer is one that may read nothing: fail closed.
    """
    authenticated = viewer_in_scope(connection.scope)
    return authenticated if authenticated is not None else NOBODY


def build_context(
    request: Request | WebSocket,
    response: Response | WebSocket | None,
    *,
    pool: AsyncConnectionPool,
    clock: Clock,
    settings: Settings,
    hub: AlertHub,
) -> Context:
    viewer = viewer_from_request(request)
    return Context(request, response, viewer, pool, clock, settings,
                   make_loaders(pool, viewer, settings.timezone), hub)
