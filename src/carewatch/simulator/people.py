"""Who takes part in a simulated care day: commissioners, providers, carers, and valid identifiers."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date

COMPETENCIES = ("moving_and_handling", "medication", "dementia", "catheter_care", "peg_feeding")
_METHODS = ("nfc", "gps", "qr", "telephony")
_PROVIDER_NAMES = ("Acorn Home Care", "Bluebell Care", "Cedar Support", "Dovecote Homecare", "Elmtree Care",
                   "Foxglove Care", "Greenway Support", "Heather Homecare")


@dataclass(frozen=True)
class Commissioner:
    commissioner_id: str
    name: str
    kind: str
    lat: float  # where its people live: the centre of the area
    lon: float


@dataclass(frozen=True)
class Provider:
    provider_id: str
    name: str
    method: str  # how its roster app usually clocks visits in


@dataclass(frozen=True)
class Carer:
    carer_id: str
    provider_id: str
    competencies: tuple[str, ...]
    pay_pence_per_hour: int
    ni_number: str | None
    date_of_birth: date


COMMISSIONERS = (
    Commissioner("LA-WIRRAL", "Wirral Council", "local_authority", 53.3727, -3.0738),
    Commissioner("LA-LIVERPOOL", "Liverpool City Council", "local_authority", 53.4084, -2.9916),
    Commissioner("ICB-CHESHIRE-MERSEY", "NHS Cheshire and Merseyside ICB", "icb", 53.2587, -2.1226),
)


def nhs_number(rng: random.Random) -> str:
    """A random NHS number that passes the modulus-11 check (weights 10..2, 11 -> 0, 10 invalid)."""
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        if digits[0] == 0:
            continue
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 10:
            continue
        return "".join(map(str, digits)) + str(0 if check == 11 else check)


def ni_number(rng: random.Random) -> str:
    """A random National Insurance number of the valid shape (DOMAIN.md's letter rules)."""
    first_ok = "ABCEGHJKLMNOPRSTWXYZ"
    second_ok = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        prefix = rng.choice(first_ok) + rng.choice(second_ok)
        if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            break
    return prefix + "".join(str(rng.randint(0, 9)) for _ in range(6)) + rng.choice("ABCD")


def providers(rng: random.Random, count: int) -> list[Provider]:
    found = []
    for i in range(count):
        round_, index = divmod(i, len(_PROVIDER_NAMES))
        base = _PROVIDER_NAMES[index]
        suffix = str(round_ + 1) if round_ else ""
        name = f"{base} {suffix}".strip()
        slug = base.split()[0].upper() + suffix
        found.append(Provider(f"PRV-{slug}", name, _METHODS[i % len(_METHODS)]))
    return found


def carers(rng: random.Random, provider: Provider, packages: int, start: date) -> list[Carer]:
    """Enough carers for the provider's packages; about one in eight paid at or below the NLW."""
    count = math.ceil(packages * 0.75) + 2
    found = []
    for n in range(1, count + 1):
        skills = ["moving_and_handling"] if rng.random() < 0.8 else []
        skills += [c for c in COMPETENCIES[1:] if rng.random() < 0.35]
        roll = rng.random()
        # Pay: mostly above the 2026 National Living Wage (1271p), some on it, a few below it.
        pay = 1271 if roll < 0.07 else rng.randint(1200, 1270) if roll < 0.12 else rng.randint(1280, 1550)
        age = rng.randint(18, 20) if rng.random() < 0.06 else rng.randint(21, 66)
        born = date(start.year - age, rng.randint(1, 12), rng.randint(1, 28))
        ni = ni_number(rng) if rng.random() < 0.85 else None
        found.append(Carer(f"CR-{provider.provider_id[4:]}-{n:03d}", provider.provider_id, tuple(skills),
                           pay, ni, born))
    return found
