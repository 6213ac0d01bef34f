"""Packages as last read, kept by row version so that a batch does not parse them again (issue 12).

Purchase to pay reads every package whose spend a batch moved: thousands a batch, each with its plan,
rates and thresholds as jsonb, parsed and built into a `Package` every time, about a tenth of the
worker's CPU (docs/throughput.md, "Fourth pass"). A package changes only when its row does, so a
`Package` is kept under (database, package id, the row's `xmin`, its commissioner's time zone) and
reused while a light query finds the same version. `xmin` is the id of the transaction that wrote the
row version, unique across the cluster, so any update (an approval, an edit by hand) gives a new key
and a rolled-back write's key is simply never seen again. Entries are immutable (`Package` is frozen);
the oldest go first when the cache is full.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from carewatch.domain.model import Package

K = TypeVar("K")
V = TypeVar("V")

PACKAGES_KEPT = 50_000


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


package_cache: Kept[tuple[str, str, str, str], Package] = Kept(PACKAGES_KEPT)
