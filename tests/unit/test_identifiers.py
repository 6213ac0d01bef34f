"""NHS number modulus 11, National Insurance number format, and the masks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewatch.domain.identifiers import mask_nhs_number, mask_ni_number, nhs_number_valid, ni_number_valid


@pytest.mark.parametrize("s", ["9434765919", "943 476 5919", "0000000000", "4010232137"])
def test_valid_nhs_numbers(s: str) -> None:
    assert nhs_number_valid(s)


@pytest.mark.parametrize("s", [
    "9434765918",  # wrong check digit
    "9434765910",
    "943476591",  # nine digits
    "94347659190",
    "943476591X",
    "",
    *[f"000000006{d}" for d in range(10)],  # remainder gives check 10: no check digit is valid
])
def test_invalid_nhs_numbers(s: str) -> None:
    assert not nhs_number_valid(s)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_exactly_one_check_digit_or_none_is_valid(first_nine: str) -> None:
    valid = [d for d in range(10) if nhs_number_valid(first_nine + str(d))]
    total = sum(int(c) * w for c, w in zip(first_nine, range(10, 1, -1), strict=True))
    assert len(valid) == (0 if total % 11 == 1 else 1)


@pytest.mark.parametrize("s", ["AB123456C", "ab123456c", "AB 12 34 56 C", "CE000000A", "ZY999999D"])
def test_valid_ni_numbers(s: str) -> None:
    assert ni_number_valid(s)


@pytest.mark.parametrize("s", [
    "DA123456A", "FA123456A", "IA123456A", "QA123456A", "UA123456A", "VA123456A",  # bad first letter
    "AD123456A", "AO123456A", "AV123456A",  # bad second letter
    "BG123456A", "GB123456A", "KN123456A", "NK123456A", "NT123456A", "TN123456A", "ZZ123456A",
    "AB123456E", "AB12345C", "AB1234567C", "A1123456C", "", "AB123456",
])
def test_invalid_ni_numbers(s: str) -> None:
    assert not ni_number_valid(s)


def test_masks() -> None:
    assert mask_nhs_number("9434765919") == "*******919"
    assert mask_nhs_number("943 476 5919") == "*******919"
    assert mask_ni_number("AB123456C") == "AB******C"
    assert mask_ni_number("ab 12 34 56 c") == "AB******C"
    assert mask_nhs_number("12") == "**" and mask_ni_number("AB") == "**"  # too short to show anything
