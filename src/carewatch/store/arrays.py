"""Lists of strings as PostgreSQL array parameters, dumped in one pass instead of one item at a time.

psycopg's text ListDumper dumps each item through its own dumper and tests it against a regular
expression; a batch passes lists of thousands of ids (events, shifts, carers, alert subjects), and
that took about 8% of the worker's batch time (docs/throughput.md). A flat list of str (and None)
is written here as an array literal with every item quoted; any other list goes to psycopg's own
dumper, so the server reads the same array either way. Lists of aware datetimes (periods, windows,
announcement times) take the same kind of path, as timestamptz arrays of instants written by
store/instants.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, postgres
from psycopg.abc import Buffer
from psycopg.pq import Format
from psycopg.types.array import ListDumper

from carewatch.store.instants import instant_text

_TIMESTAMPTZ_ARRAY = postgres.types["timestamptz"].array_oid


def _quoted(item: str) -> str:
    return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text_array_literal(items: list[Any]) -> str | None:
    """The array literal of a flat list of str and None, every item quoted; None for anything else."""
    try:
        joined = '","'.join(items)
    except TypeError:  # None, a nested list or a non-str item: the slower path
        if not all(item is None or type(item) is str for item in items):
            return None
        joined = "".join(item for item in items if item is not None)
        if "\x00" in joined:
            return None
        return "{" + ",".join("NULL" if item is None else _quoted(item) for item in items) + "}"
    if "\x00" in joined:  # psycopg's own dumper refuses it, with its own error
        return None
    # The separators hold 2 quotes each: any more, or a backslash, is an item's and must be escaped.
    if joined.count('"') != 2 * (len(items) - 1) or "\\" in joined:
        return "{" + ",".join(_quoted(item) for item in items) + "}"
    return '{"' + joined + '"}'


def instant_array_literal(items: list[Any]) -> str | None:
    """The array literal of a flat list of aware datetimes and None (store/instants.instant_text, which
    PostgreSQL reads as timestamptz); None for anything else (naive datetimes included)."""
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        elif type(item) is datetime and item.tzinfo is not None and item.utcoffset() is not None:
            parts.append('"' + instant_text(item) + '"')
        else:
            return None
    return "{" + ",".join(parts) + "}"


class StrListDumper(ListDumper):
    """psycopg's text ListDumper with a one-pass path for lists of strings and of aware datetimes."""

    def dump(self, obj: list[Any]) -> Buffer | None:
        sub = self.sub_dumper
        if (obj and sub is not None and sub.format == Format.TEXT
                and self.delimiter == b"," and self.connection is not None
                and self.connection.info.encoding == "utf-8"):
            cls = getattr(sub, "cls", None)
            literal = (text_array_literal(obj) if cls is str
                       else instant_array_literal(obj) if cls is datetime and self.oid == _TIMESTAMPTZ_ARRAY
                       else None)
            if literal is not None:
                return literal.encode()
        return super().dump(obj)


async def use_fast_arrays(conn: AsyncConnection[Any]) -> None:
    """Configure a pool's new connection to dump lists of strings with StrListDumper."""
    conn.adapters.register_dumper(list, StrListDumper)
