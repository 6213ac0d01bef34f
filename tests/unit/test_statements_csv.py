"""The statements CSV: RFC 4180 quoting, exact decimals, the contract's columns first."""

from __future__ import annotations

import csv
import io
from datetime import date

from carewatch.domain.statements import PackageFigures, StatementScope, statement
from carewatch.exports import COLUMNS, csv_chunks, row


def test_fields_that_need_it_are_quoted_and_quotes_doubled() -> None:
    text = "".join(csv_chunks([["a,b", 'say "hi"', "two\nlines", "plain"]]))
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert text.endswith('"a,b","say ""hi""","two\nlines",plain\r\n')
    # And a spreadsheet (here the csv module) reads back exactly what was written.
    assert list(csv.reader(io.StringIO(text)))[1] == ["a,b", 'say "hi"', "two\nlines", "plain"]


def test_the_contract_columns_come_first_in_order() -> None:
    assert COLUMNS[:15] == ("scope", "id", "from", "to", "ordered_minutes", "ordered_pence", "delivered_minutes",
                            "delivered_pence", "unverified_minutes", "invoiced_pence", "matched_pence",
                            "disputed_invoices", "variance_minutes", "recoverable_underspend_pence",
                            "non_direct_care_share")


def test_rows_hold_exact_decimals_and_empty_for_null() -> None:
    # 2333/7 = 333.285714... ordered minutes and 49.5p ordered (numerators over 7 and 420).
    figures = PackageFigures("PKG-1", "PRV", "LA", ordered_minutes_x7=2333, ordered_pence_x420=99 * 210,
                             payable_seconds=30 * 60, rate_seconds=3600 * 12)
    r = dict(zip(COLUMNS, row(statement(StatementScope.PACKAGE, "PKG-1", date(2026, 4, 1), date(2026, 5, 1),
                                        [figures])), strict=True))
    assert (r["scope"], r["id"], r["from"], r["to"]) == ("PACKAGE", "PKG-1", "2026-04-01", "2026-05-01")
    assert r["ordered_minutes"] == "333.2857" and r["ordered_pence"] == "50"  # 49.5 rounds half up
    assert r["delivered_minutes"] == "30" and r["delivered_pence"] == "12"
    assert r["variance_minutes"] == "-303.2857"
    assert r["non_direct_care_share"] == ""


def test_rows_stream_in_chunks() -> None:
    chunks = list(csv_chunks(([str(n)] for n in range(5)), per_chunk=2))
    assert len(chunks) == 3
    assert "".join(chunks).count("\r\n") == 6
