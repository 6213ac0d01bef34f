"""NHS and National Insurance numbers: validity checks and the masks shown to non-admin users."""

from __future__ import annotations

import re

NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
# First letter not D F I Q U V; second not D F I O Q U V; suffix A-D.
_NI_PATTERN = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]")
NI_INVALID_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _compact(s: str) -> str:
    """Without spaces (people write '943 476 5919' and 'AB 12 34 56 C'), upper-cased."""
    return "".join(s.split()).upper()


def nhs_check_digit(first_nine: str) -> int | None:
    """The modulus-11 check digit of nine digits; None when the remainder makes the number invalid."""
    check = 11 - sum(int(d) * w for d, w in zip(first_nine, NHS_WEIGHTS, strict=True)) % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def nhs_number_valid(s: str) -> bool:
    """Ten digits (spaces allowed) whose last digit is the modulus-11 check of the first nine."""
    digits = _compact(s)
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    return nhs_check_digit(digits[:9]) == int(digits[9])


def ni_number_valid(s: str) -> bool:
    """Two prefix letters, six digits, suffix A-D (spaces and lower case allowed), per HMRC's rules."""
    ni = _compact(s)
    return _NI_PATTERN.fullmatch(ni) is not None and ni[:2] not in NI_INVALID_PREFIXES


def mask_nhs_number(s: str) -> str:
    """Only the last three digits shown: '*******919'."""
    digits = _compact(s)
    shown = digits[-3:] if len(digits) > 3 else ""
    return "*" * (len(digits) - len(shown)) + shown


def mask_ni_number(s: str) -> str:
    """Only the prefix letters and the suffix shown: 'AB******C'."""
    ni = _compact(s)
    if len(ni) <= 3:
        return "*" * len(ni)
    return ni[:2] + "*" * (len(ni) - 3) + ni[-1]
