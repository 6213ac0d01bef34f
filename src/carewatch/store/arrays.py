"""Lists of strings as PostgreSQL array parameters, dumped in one pass instead of one item at a time.

psycopg's text ListDumper dumps each item through its own dumper and tests it against a regular
expression; a batch passes lists of thousands of ids (events, shifts, carers, alert subjects), and
that took about 8% of the worker's batch time (docs/throughput.md). A flat list of str (and None)
is written here as an array literal with every item quoted; any other list goes to psycopg's own
dumper, so the server reads the same array either way.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.abc import Buffer
from psycopg.pq import Format
from psycopg.types.array import ListDumper


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
    if '"' in joined or "\\" in joined:
        return "{" + ",".join(_quoted(item) for item in items) + "}"
    return '{"' + joined + '"}'


class StrListDumper(ListDumper):
    """psycopg's text ListDumper with a one-pass path for lists of strings."""

    def dump(self, obj: list[Any]) -> Buffer | None:
        sub = self.sub_dumper
        if (obj and sub is not None and getattr(sub, "cls", None) is str and sub.format == Format.TEXT
                and self.delimiter == b"," and self.connection is not None
                and self.connection.info.encoding == "utf-8"):
            literal = text_array_literal(obj)
            if literal is not None:
                return literal.encode()
        return super().dump(obj)


async def use_fast_arrays(conn: AsyncConnection[Any]) -> None:
    """Configure a pool's new connection to dump lists of strings with StrListDumper."""
    conn.adapters.register_dumper(list, StrListDumper)
