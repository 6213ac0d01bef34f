"""Relay paging: the page size rule and opaque cursors (base64 of the sort key)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from carewatch.graphql.errors import ClientError

DEFAULT_PAGE = 50
MAX_PAGE = 500


def page_size(first: int | None) -> int:
    """`first` as asked, 50 when absent; a clear error outside 0..500."""
    if first is None:
        return DEFAULT_PAGE
    if first < 0:
        raise ClientError("first must not be negative")
    if first > MAX_PAGE:
        raise ClientError(f"first must be at most {MAX_PAGE} (got {first}); page with `after`")
    return first


def encode_cursor(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, parts: int) -> list[str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ClientError("after is not a cursor this API gave out") from exc
    if not isinstance(key, list) or len(key) != parts or not all(isinstance(k, str) for k in key):
        raise ClientError("after is not a cursor this API gave out")
    return key


def package_cursor(package_id: str) -> str:
    return encode_cursor([package_id])


def decode_package_cursor(cursor: str | None) -> str | None:
    return None if cursor is None else decode_cursor(cursor, 1)[0]


def shift_cursor(starts_at: datetime, shift_id: str) -> str:
    return encode_cursor([starts_at.astimezone(UTC).isoformat(), shift_id])


def decode_shift_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    at, shift_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at).astimezone(UTC), shift_id
    except ValueError as exc:
        raise ClientError("after is not a cursor this API gave out") from exc
