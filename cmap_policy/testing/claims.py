"""Many generated claim lines, fast: for differential tests and benchmarks of the batch engine.

``random_records`` draws records (the shape ``parse_line`` reads) around the
interesting dates of a policy: the days on and next to each period's start and
end, and days in between. With ``messy`` some values are malformed on purpose
(bad dates, codes, modifiers, numbers), so that the error paths are exercised.
Nothing here is the CMAP policy's data.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

from ..model import Policy

TELEHEALTH_MODIFIERS = ("95", "GT", "93", "FQ", "GQ", "FR", "G0")
OTHER_MODIFIERS = ("25", "59", "HO", "U1")
PLACES = ("02", "10", "11", "12", "22", "2")
RCCS = ("0513", "0900", "0914", "0915", "0510", "0100", "900")
PROVIDER_TYPES = ("clinic", "physician", "fqhc", "behavioral-health-agency", "dentist")
UNLISTED = ("99213", "90834", "G2012", "A0001")
MESSY = {
    "date": ("2020-02-30", "2020/01/05", "20200105", "0000-01-01", ""),
    "code": ("9921", "ABCDEF", "", "T10 16"),
    "modifiers": ("95 GT 93 25 59", "9", "95,XYZ"),
    "pos": ("2A", "123"),
    "rcc": ("09", "ABCD"),
    "member_age": ("-1", "131", "x", "4.5"),
    "units": ("100001", "two"),
    "established_patient": ("maybe",),
    "claim_type": ("dental",),
    "modality": ("telepathy",),
}


def interesting_days(policy: Policy) -> list[dt.date]:
    days: set[dt.date] = set()
    for code in policy.codes.values():
        for p in code.periods:
            for d in (p.effective, p.end):
                if d is not None:
                    days.update(d + dt.timedelta(days=k) for k in (-1, 0, 1))
    return sorted(days)


def random_records(policy: Policy, n: int, seed: int = 0, *, messy: float = 0.0) -> Iterator[dict[str, Any]]:
    """``n`` claim records for ``policy``; with ``messy`` > 0 that share of them has one malformed value."""
    rng = random.Random(seed)
    codes = [*policy.codes, *UNLISTED]
    days = interesting_days(policy) or [dt.date(2020, 1, 1)]
    lo, hi = days[0].toordinal() - 400, days[-1].toordinal() + 400
    modalities = list(policy.program.modalities)
    for i in range(n):
        day = rng.choice(days) if rng.random() < 0.5 else dt.date.fromordinal(rng.randint(lo, hi))
        mods = rng.sample(TELEHEALTH_MODIFIERS, rng.choice((0, 1, 1, 1, 2)))
        if rng.random() < 0.3:
            mods.append(rng.choice(OTHER_MODIFIERS))
        rec: dict[str, Any] = {
            "line_id": f"L{i + 1}",
            "code": rng.choice(codes),
            "date": day.isoformat(),
            "modifiers": " ".join(mods),
            "claim_type": rng.choice(("professional", "professional", "institutional", "")),
            "pos": rng.choice(PLACES) if rng.random() < 0.5 else "",
            "rcc": rng.choice(RCCS) if rng.random() < 0.4 else "",
            "modality": rng.choice(modalities) if rng.random() < 0.1 else "",
            "member_age": str(rng.randint(0, 100)) if rng.random() < 0.5 else "",
            "provider_type": rng.choice(PROVIDER_TYPES) if rng.random() < 0.4 else "",
            "units": str(rng.randint(0, 12)) if rng.random() < 0.5 else "",
            "established_patient": rng.choice(("true", "false", "yes", "no", "")),
            "claim_id": f"C{i // 3 + 1}",
        }
        if messy and rng.random() < messy:
            field = rng.choice(sorted(MESSY))
            rec[field] = rng.choice(MESSY[field])
        yield rec
