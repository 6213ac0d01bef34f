"""DataLoaders made fresh for each request, so one query serves every field that needs the same rows."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from strawberry.dataloader import DataLoader

from carewatch.domain.delivery import LedgerTotals
from carewatch.domain.model import Shift, ShiftLedger
from carewatch.store import read_models
from carewatch.store.read_models import Window
from carewatch.store.rows import PackageRecord
from carewatch.store.scope import Viewer


@dataclass(frozen=True)
class Loaders:
    packages: DataLoader[str, PackageRecord | None]
    shifts: DataLoader[str, Shift | None]
    ledgers: DataLoader[str, ShiftLedger | None]
    window_sums: DataLoader[Window, LedgerTotals]


def make_loaders(pool: AsyncConnectionPool, viewer: Viewer, default_tz: str) -> Loaders:
    """Loaders bound to one viewer: what it may not see loads as None."""

    async def load_packages(ids: list[str]) -> list[PackageRecord | None]:
        found = await read_models.packages_by_ids(pool, viewer, ids, default_tz)
        return [found.get(i) for i in ids]

    async def load_shifts(ids: list[str]) -> list[Shift | None]:
        found = await read_models.shifts_by_ids(pool, viewer, ids)
        return [found.get(i) for i in ids]

    async def load_ledgers(ids: list[str]) -> list[ShiftLedger | None]:
        found = await read_models.ledgers_by_shift_ids(pool, ids)
        return [found.get(i) for i in ids]

    async def load_window_sums(windows: list[Window]) -> list[LedgerTotals]:
        found = await read_models.window_sums(pool, windows)
        return [found[w] for w in windows]

    return Loaders(
        packages=DataLoader(load_fn=load_packages),
        shifts=DataLoader(load_fn=load_shifts),
        ledgers=DataLoader(load_fn=load_ledgers),
        window_sums=DataLoader(load_fn=load_window_sums),
    )
