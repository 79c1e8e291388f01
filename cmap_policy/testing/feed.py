"""A claims feed as Arrow tables: millions of typed claim lines a second, for benchmarks and differential tests.

The mix is a state's telehealth feed as a benchmark wants it: codes drawn from
the policy with a long tail (and a few it does not list), two years of dates of
service, the common modifier combinations (95, GT, 93, FQ, none, with 25 or
G0), places of service 11, 02 and 10, a fifth institutional with revenue codes,
and ages, units, provider types and established-patient flags on part of the
lines. numpy draws it column by column, so a million lines take a fraction of a
second. Nothing here is the CMAP policy's data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa

from ..model import Policy

MODIFIERS = (("95", 35), ("GT", 10), ("93", 15), ("FQ", 3), ("", 20), ("95 25", 7), ("93 GT", 2), ("G0", 1),
             ("25", 5), ("GQ", 2))
PLACES = (("11", 55), ("02", 5), ("10", 5), ("", 35))
UNLISTED = ("99213", "99214", "90834", "G2012", "A0001")
RCCS = ("0510", "0513", "0900", "0914", "0915", "0916", "0918", None)
PROVIDER_TYPES = ("clinic", "physician", "fqhc", "behavioral-health-agency")
EPOCH = dt.date(1970, 1, 1)


def _choice(rng: np.random.Generator, items: tuple[tuple[str, int], ...], n: int) -> np.ndarray:
    values = np.array([v for v, _ in items], dtype=object)
    weights = np.array([w for _, w in items], dtype=float)
    return values[rng.choice(len(values), n, p=weights / weights.sum())]


def claims_table(policy: Policy, n: int, rng: np.random.Generator, *, first_line: int = 1,
                 start: dt.date = dt.date(2025, 1, 1), days: int = 2 * 365) -> pa.Table:
    """``n`` claim lines for ``policy`` (line ids from ``first_line``), dated from ``start`` over ``days`` days."""
    codes = np.array([*policy.codes, *UNLISTED], dtype=object)
    weights = np.concatenate([1.0 / np.arange(1, len(policy.codes) + 1) ** 0.6, np.full(len(UNLISTED), 0.5)])
    code = codes[rng.choice(len(codes), n, p=weights / weights.sum())]
    day0 = (start - EPOCH).days
    day = rng.integers(day0, day0 + days, n).astype(np.int32)
    institutional = rng.random(n) < 0.2
    rccs = np.array(RCCS, dtype=object)
    rcc = rccs[rng.integers(0, len(rccs), n)]
    rcc[~institutional] = None

    def some(values: np.ndarray, share: float) -> list[Any]:
        held = values.astype(object)
        held[rng.random(n) >= share] = None
        return list(held.tolist())

    return pa.table({
        "line_id": pa.array(np.char.add("L", np.arange(first_line, first_line + n).astype(str))),
        "code": pa.array(code.tolist(), pa.string()),
        "date": pa.array(day).cast(pa.date32()),
        "modifiers": pa.array(_choice(rng, MODIFIERS, n).tolist(), pa.string()),
        "pos": pa.array([p or None for p in _choice(rng, PLACES, n).tolist()], pa.string()),
        "claim_type": pa.array(np.where(institutional, "institutional", "professional").tolist(), pa.string()),
        "rcc": pa.array(rcc.tolist(), pa.string()),
        "member_age": pa.array(some(rng.integers(0, 91, n), 0.7), pa.int32()),
        "provider_type": pa.array(some(np.array(PROVIDER_TYPES, dtype=object)[rng.integers(0, len(PROVIDER_TYPES), n)],
                                       0.4), pa.string()),
        "units": pa.array(some(rng.integers(1, 9, n), 0.6), pa.int32()),
        "established_patient": pa.array(some(rng.random(n) < 0.8, 0.5), pa.bool_()),
    })
