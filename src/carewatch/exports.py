"""GET /exports/statements.csv: the statements of GRAPHQL.md as CSV for finance teams' spreadsheets.

Same tokens, scopes and league-table order as `statements` / `statement`: `scope` (any case),
`from` and `to` (local dates, [from, to)), optionally `id` for one statement and `commissionerId` /
`providerId` to narrow. UTF-8, a header row, RFC 4180 quoting, rows streamed in chunks.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date, datetime
from fractions import Fraction

from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from carewatch.domain.statements import Statement, StatementScope
from carewatch.graphql.context import viewer_from_request
from carewatch.pipeline.statements import StatementRequest, StatementRequestError, statements

COLUMNS = ("scope", "id", "from", "to", "ordered_minutes", "ordered_pence", "delivered_minutes",
           "delivered_pence", "unverified_minutes", "invoiced_pence", "matched_pence", "disputed_invoices",
           "variance_minutes", "recoverable_underspend_pence", "non_direct_care_share",
           # beyond the contract's fields, appended so that its columns keep their places
           "packages", "variance_share", "direct_minutes", "non_direct_minutes")
ROWS_PER_CHUNK = 500
STATEMENTS_CSV_PATH = "/exports/statements.csv"


class ExportRequestError(ValueError):
    """A parameter the caller must fix; answered 400 with this message."""


def _decimal(value: Fraction | None, places: int) -> str:
    """Exact figures as plain decimal text (no exponent), rounded half up to `places`, zeros trimmed."""
    if value is None:
        return ""
    scaled = value * 10**places
    whole = (abs(scaled.numerator) * 2 + scaled.denominator) // (2 * scaled.denominator)
    sign = "-" if value < 0 and whole else ""
    text = f"{whole // 10**places}.{whole % 10**places:0{places}d}".rstrip("0").rstrip(".")
    return sign + text


def row(s: Statement) -> list[str]:
    return [s.scope.value, s.id, s.start.isoformat(), s.end.isoformat(), _decimal(s.ordered_minutes, 4),
            str(s.ordered_pence), _decimal(s.delivered_minutes, 4), str(s.delivered_pence),
            _decimal(s.unverified_minutes, 4), str(s.invoiced_pence), str(s.matched_pence),
            str(s.disputed_invoices), _decimal(s.variance_minutes, 4), str(s.recoverable_underspend_pence),
            _decimal(s.non_direct_care_share, 6), str(s.packages), _decimal(s.variance_share, 6),
            _decimal(s.direct_minutes, 4), _decimal(s.non_direct_minutes, 4)]


def csv_chunks(rows: Iterable[Sequence[str]], per_chunk: int = ROWS_PER_CHUNK) -> Iterable[str]:
    """The header and rows as CSV text, a chunk at a time (quoted where a field needs it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for n, r in enumerate(rows, start=1):
        writer.writerow(r)
        if n % per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _date(request: Request, name: str) -> date:
    raw = request.query_params.get(name)
    if not raw:
        raise ExportRequestError(f"`{name}` is required: a local date like 2026-04-01")
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ExportRequestError(f"`{name}` must be a date like 2026-04-01, not {raw!r}") from exc


def parse(request: Request) -> StatementRequest:
    """The statement request in the query string, or ExportRequestError saying what is wrong."""
    known = {"scope", "from", "to", "id", "commissionerId", "providerId"}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ExportRequestError(f"unknown parameter(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
    raw_scope = request.query_params.get("scope", "")
    try:
        scope = StatementScope(raw_scope.upper())
    except ValueError as exc:
        raise ExportRequestError(f"`scope` must be package, provider or commissioner (any case), "
                                 f"not {raw_scope!r}") from exc
    return StatementRequest(scope, _date(request, "from"), _date(request, "to"),
                            subject_id=request.query_params.get("id") or None,
                            commissioner_id=request.query_params.get("commissionerId") or None,
                            provider_id=request.query_params.get("providerId") or None)


async def statements_csv(request: Request, pool: AsyncConnectionPool, now: datetime) -> Response:
    """The response to one export request (the API's route hands in its pool and clock's now)."""
    try:
        asked = parse(request)
        found = await statements(pool, viewer_from_request(request), asked, now)
    except (ExportRequestError, StatementRequestError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def body() -> AsyncIterator[str]:
        for chunk in csv_chunks(row(s) for s in found):
            yield chunk

    name = f"statements-{asked.scope.value.lower()}-{asked.start.isoformat()}-{asked.end.isoformat()}.csv"
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
