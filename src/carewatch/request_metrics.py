"""ASGI middleware timing and counting the API's HTTP requests by route, method and status."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carewatch import metrics

# Routes named in the metrics; any other path counts as "other", so scanners cannot grow the series.
ROUTES = ("/graphql", "/events", "/healthz", "/readyz", "/metrics", "/board")


def route_of(path: str) -> str:
    """The route a path belongs to, for the `route` label."""
    trimmed = path.rstrip("/") or "/"
    for route in ROUTES:
        if trimmed == route or trimmed.startswith(route + "/"):
            return route
    return "other"


class RequestMetrics:
    """Outermost middleware: every HTTP answer is counted, refusals by the access gate included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route, method = route_of(scope["path"]), scope["method"]
        status = 500  # if the app fails before answering, the server answers 500
        started = time.perf_counter()

        async def counted_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        finally:
            metrics.API_REQUESTS.labels(route, method, str(status)).inc()
            metrics.API_REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - started)
