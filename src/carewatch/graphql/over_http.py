"""GraphQL over HTTP as its spec says, on top of strawberry's Starlette view.

- `Accept` is negotiated: `application/graphql-response+json` when the client asks for it,
  `application/json` when it asks for that, for a wildcard or for nothing; 406 otherwise.
- A request error (the document does not parse or validate, a variable cannot be coerced) has
  no `data` entry; with `application/graphql-response+json` it is answered 400, with
  `application/json` 200 (the legacy media type's rule). Field errors keep `data` and 200.
- A mutation over GET is 405 with `Allow: POST`; a POST body that is not JSON is 415.
- Refusals the view raises itself come back as a JSON `errors` list, not plain text.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from carewatch.graphql.context import Context

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
SUPPORTED = (GRAPHQL_RESPONSE_JSON, JSON)
MEDIA_TYPE_KEY = "carewatch.graphql_media_type"
# Set on the request's scope when a result has data and no error at all (what the response cache may keep).
RESULT_OK_KEY = "carewatch.graphql_ok"


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their q values, malformed q read as 0."""
    ranges = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media, q))
    return ranges


def _quality(media: str, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    """(q, specificity) of `media` under the most specific range that matches it."""
    kind = media.split("/")[0]
    best: tuple[float, int] | None = None
    for candidate, q in ranges:
        specificity = 2 if candidate == media else 1 if candidate == f"{kind}/*" else 0 if candidate == "*/*" else -1
        if specificity >= 0 and (best is None or specificity > best[1]):
            best = (q, specificity)
    return best if best is not None else (0.0, -1)


def negotiate(accept: str | None) -> str | None:
    """The response media type for this Accept header, or None when it accepts neither."""
    if accept is None or not accept.strip():
        return JSON  # the spec: no Accept means application/json
    ranges = _ranges(accept)
    graphql_q, graphql_specificity = _quality(GRAPHQL_RESPONSE_JSON, ranges)
    json_q, _ = _quality(JSON, ranges)
    if graphql_q <= 0 and json_q <= 0:
        return None
    # The new media type only when named (a wildcard keeps legacy clients on application/json).
    if graphql_q > 0 and graphql_specificity == 2 and graphql_q >= json_q:
        return GRAPHQL_RESPONSE_JSON
    return JSON if json_q > 0 else GRAPHQL_RESPONSE_JSON


def is_request_error(result: ExecutionResult) -> bool:
    """No execution happened: every error is a parse, validation or variable error (none has a path)."""
    errors: list[GraphQLError] = list(result.errors or [])
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def error_response(status: int, message: str, media_type: str,
                   headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"errors": [{"message": message}]}).encode()
    return Response(body, status_code=status, headers=headers, media_type=f"{media_type}; charset=utf-8")


class GraphQLOverHTTP(GraphQL[Context, None]):
    """strawberry's ASGI view with the GraphQL-over-HTTP rules above."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        media_type = negotiate(request.headers.get("accept"))
        if media_type is None and not self._is_ide_page(request):
            response = error_response(
                406, f"Not Acceptable: this endpoint answers {' or '.join(SUPPORTED)}", JSON)
            await response(scope, receive, send)
            return
        scope[MEDIA_TYPE_KEY] = media_type or JSON
        try:
            response = await self.run(request)
        except HTTPException as exc:
            allow = {"Allow": "POST"} if exc.status_code == 405 and request.method == "GET" else (
                {"Allow": "GET, POST"} if exc.status_code == 405 else None)
            response = error_response(exc.status_code, exc.reason, media_type or JSON, allow)
        await response(scope, receive, send)

    def _is_ide_page(self, request: Request) -> bool:
        return (request.method == "GET" and "query" not in request.query_params
                and "text/html" in request.headers.get("accept", ""))

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = request.scope.get(MEDIA_TYPE_KEY, JSON)
        return sub_response

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "POST":
            content_type, _ = parse_content_type(request.content_type or "")
            if "application/json" not in content_type and not (
                    self.multipart_uploads_enabled and content_type == "multipart/form-data"):
                raise HTTPException(415, "Unsupported Media Type: send the query as application/json")
        return await super().parse_http_body(request)

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError) and exc.reason.endswith("GET"):
                raise HTTPException(405, "mutations are not allowed over GET: use POST") from exc
            raise

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        request.scope[RESULT_OK_KEY] = result.data is not None and not result.errors
        if is_request_error(result):
            processed.pop("data", None)  # the GraphQL spec: no data entry when execution never started
        return processed

    def encode_json(self, data: object) -> str:
        """Responses serialised by orjson, several times faster than json.dumps; text, as websockets send it."""
        return orjson.dumps(data).decode()

    def create_response(self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
                        sub_response: Response) -> Response:
        response = super().create_response(response_data, sub_response)
        media_type = sub_response.media_type or JSON
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        if (media_type == GRAPHQL_RESPONSE_JSON and isinstance(response_data, dict)
                and "data" not in response_data and not sub_response.status_code):
            response.status_code = 400
        return response
