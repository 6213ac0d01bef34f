"""Lists of strings reach PostgreSQL as the same arrays through store/arrays.py as through psycopg's dumper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest

from carewatch.store.arrays import StrListDumper, instant_array_literal, text_array_literal

pytestmark = pytest.mark.services

AWKWARD = ['a"b', "c\\d", "", " x ", "NULL", "null", "{}", ",", "é ü", "tab\there", "new\nline", '\\"']


def test_the_literal_quotes_every_item_and_escapes_quotes_and_backslashes() -> None:
    assert text_array_literal(["ev-1", "ev-2"]) == '{"ev-1","ev-2"}'
    assert text_array_literal(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'
    assert text_array_literal(["a", None]) == '{"a",NULL}'
    assert text_array_literal([1, 2]) is None and text_array_literal([["a"]]) is None
    assert text_array_literal(["a\x00b"]) is None  # left to psycopg, which refuses it
    assert text_array_literal(['"']) == '{"\\""}' and text_array_literal(["a", 'b"']) == '{"a","b\\""}'


def test_plain_ids_are_joined_without_quoting_each_item(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one-pass path: the separators' own quotes must not send every list down the per-item path.
    import carewatch.store.arrays as arrays

    def per_item(item: str) -> str:
        raise AssertionError(f"{item!r} was quoted one at a time")

    monkeypatch.setattr(arrays, "_quoted", per_item)
    assert text_array_literal(["ev-1", "ev-2", "ev-3"]) == '{"ev-1","ev-2","ev-3"}'


@pytest.mark.parametrize("items", [AWKWARD, [*AWKWARD, None], ["ev-1"] * 3, [None, None], ["x"]])
def test_the_server_reads_the_same_array_as_from_psycopgs_dumper(database_url: str, items: list[str | None]) -> None:
    with psycopg.connect(database_url) as plain, psycopg.connect(database_url) as fast:
        fast.adapters.register_dumper(list, StrListDumper)
        query = "SELECT %s::text[], cardinality(%s::text[]), %s::text[] IS NOT DISTINCT FROM %s::text[]"
        expected = plain.execute(query, (items, items, items, items)).fetchone()
        got = fast.execute(query, (items, items, items, items)).fetchone()
        assert got == expected and got is not None and got[0] == items and got[2] is True
        # Unknown-typed, as psycopg sends a list of str: = ANY() still compares as text.
        any_query = "SELECT %s = ANY(%s)"
        answer = fast.execute(any_query, (AWKWARD[0], items)).fetchone()
        assert answer == plain.execute(any_query, (AWKWARD[0], items)).fetchone()
        assert answer == ((True,) if AWKWARD[0] in items else (None,) if None in items else (False,))


def test_a_nul_in_a_list_is_refused_as_psycopg_refuses_it(database_url: str) -> None:
    with psycopg.connect(database_url) as fast:
        fast.adapters.register_dumper(list, StrListDumper)
        with pytest.raises(psycopg.DataError):
            fast.execute("SELECT %s::text[]", (["a\x00b"],))



INSTANTS = [datetime(2026, 4, 1, 8, 0, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC),
            datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("Europe/London")),
            datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London")),
            datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))]


@pytest.mark.parametrize("items", [INSTANTS, [*INSTANTS, None], [None, INSTANTS[0]], INSTANTS[:1]])
def test_lists_of_aware_datetimes_reach_the_server_as_the_same_timestamptz_arrays(
        database_url: str, items: list[datetime | None]) -> None:
    assert instant_array_literal([INSTANTS[0], datetime(2026, 1, 1)]) is None  # naive: psycopg's path
    with psycopg.connect(database_url) as plain, psycopg.connect(database_url) as fast:
        fast.adapters.register_dumper(list, StrListDumper)
        query = "SELECT %s::timestamptz[], pg_typeof(%s)::text"
        expected = plain.execute(query, (items, items)).fetchone()
        got = fast.execute(query, (items, items)).fetchone()
        assert got == expected and got is not None and got[1] == "timestamp with time zone[]"
        # The same instants (compared as POSIX times: Python never equates a fold-ambiguous local time
        # with a time in another zone).
        assert [d and d.timestamp() for d in got[0]] == [d and d.timestamp() for d in items]
