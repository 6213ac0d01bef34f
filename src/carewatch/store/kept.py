"""A bounded map that forgets the least recently used entry first: the worker's caches of what it read
(store/package_cache.py, store/carer_attendance.py), each keyed by row versions so never stale."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Kept(Generic[K, V]):
    """A bounded map that forgets the least recently used entry first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()


def database_of(conn: Any) -> str:
    """The database a connection reads (host, port and name), for the caches' keys: a row version
    (`xmin`) is unique within one PostgreSQL cluster only, and one process may reach two."""
    return f"{conn.info.host}:{conn.info.port}/{conn.info.dbname}"
