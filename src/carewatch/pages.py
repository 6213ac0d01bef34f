"""The pages the API serves from files in the package: the alert board and (development) GraphiQL.

Both are plain static files (no build step, nothing from a CDN); they hold no data and talk to
/graphql with the caller's token like any other client, so they need no token to load. Each
answers with a Content-Security-Policy that lets the page reach its own origin only.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HERE = Path(__file__).resolve().parent
BOARD_FILES = HERE / "board"
GRAPHIQL_FILES = HERE / "graphql" / "static" / "graphiql"

_SELF_ONLY = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self' data:; "
              "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
BOARD_POLICY = f"{_SELF_ONLY}; script-src 'self'; style-src 'self'"
# GraphiQL's components set inline styles, so its page allows those (still nothing from elsewhere).
GRAPHIQL_POLICY = f"{_SELF_ONLY}; script-src 'self'; style-src 'self' 'unsafe-inline'"


def _security_headers(policy: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-security-policy", policy.encode()), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer")]


class WithHeaders:
    """ASGI wrapper adding fixed headers to every HTTP response of `app`."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _to_board(_: object) -> Response:
    return RedirectResponse("/board/", status_code=307)


def board_routes() -> list[BaseRoute]:
    """/board/ (index.html) and its assets; / and /board lead there."""
    files = StaticFiles(directory=BOARD_FILES, html=True)
    return [
        Route("/", _to_board, methods=["GET"]),
        Route("/board", _to_board, methods=["GET"]),
        Mount("/board", app=WithHeaders(files, _security_headers(BOARD_POLICY)), name="board"),
    ]


def graphiql_routes() -> list[BaseRoute]:
    """GraphiQL's vendored React and GraphiQL builds and its start-up script, under /graphiql/."""
    files = StaticFiles(directory=GRAPHIQL_FILES)
    return [Mount("/graphiql", app=WithHeaders(files, _security_headers(GRAPHIQL_POLICY)), name="graphiql")]


def graphiql_page() -> HTMLResponse:
    html = (GRAPHIQL_FILES / "index.html").read_text(encoding="utf-8")
    response = HTMLResponse(html)
    for name, value in _security_headers(GRAPHIQL_POLICY):
        response.headers[name.decode()] = value.decode()
    return response
