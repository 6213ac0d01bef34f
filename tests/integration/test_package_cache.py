"""store/invoices.packages with store/package_cache: a package is parsed once per row version, and any
change of its row or of its commissioner's time zone is read afresh."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from carewatch.pipeline.batch import apply_batch
from carewatch.schema.events import CareEvent
from carewatch.store.invoices import packages
from carewatch.store.package_cache import Kept
from support import care_event, make_database

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


def _package(n: str, at: str, budget: int) -> CareEvent:
    return care_event(n, "package.approved", at, package_id="PKG", commissioner_id="LA", provider_id="PRV",
                  person={"person_id": "P", "nhs_number": "9434765919"}, period_start="2026-04-01",
                  period_end="2026-06-30", budget_pence=budget,
                  plan=[{"service_type": "personal_care", "minutes_per_week": 420, "carers": 1}],
                  rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": 1800}])


async def test_a_package_is_read_again_only_when_its_row_or_zone_changed() -> None:
    url = make_database()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await apply_batch(conn, [
            care_event("c", "commissioner.registered", "2026-04-01T08:00:00Z", commissioner_id="LA", name="LA"),
            care_event("p", "provider.registered", "2026-04-01T08:00:00Z", provider_id="PRV", name="PRV"),
            _package("pkg-1", "2026-04-01T08:00:00Z", 10_000_000)], NOW)
        first, invoiced = await packages(conn, {"PKG", "NONE"})
        again, _ = await packages(conn, {"PKG"})
        assert set(first) == {"PKG"} and invoiced == set()
        assert again["PKG"] is first["PKG"]  # the same version: not parsed again
        assert first["PKG"].budget_pence == 10_000_000 and first["PKG"].timezone == "Europe/London"

        await apply_batch(conn, [_package("pkg-2", "2026-04-02T08:00:00Z", 12_000_000)], NOW)
        approved, _ = await packages(conn, {"PKG"})
        assert approved["PKG"].budget_pence == 12_000_000

        await conn.execute("UPDATE packages SET budget_pence = 13000000")  # by hand, outside any event
        await conn.commit()
        edited, _ = await packages(conn, {"PKG"})
        assert edited["PKG"].budget_pence == 13_000_000

        await conn.execute("UPDATE commissioners SET timezone = 'Europe/Dublin'")
        await conn.commit()
        moved, _ = await packages(conn, {"PKG"})
        assert moved["PKG"].timezone == "Europe/Dublin" and moved["PKG"].budget_pence == 13_000_000


def test_the_cache_forgets_the_least_recently_used_first() -> None:
    kept: Kept[str, int] = Kept(2)
    kept.put("a", 1)
    kept.put("b", 2)
    assert kept.get("a") == 1  # a is now the most recent
    kept.put("c", 3)
    assert kept.get("b") is None and kept.get("a") == 1 and kept.get("c") == 3 and len(kept) == 2
