"""Many claim lines decided by the interpreter itself: once per distinct slot, then spread back to the rows.

A decision is a pure function of its slot (``interpreter`` keeps one decision per slot): the code's
row or gap on the date, which dated rules of the program are in force, the modifiers, place of
service, claim type, modality and revenue code the program reads, and the line fields a row's limits
read. In a file of millions of lines the distinct slots number in the thousands. So the engines do not
restate the decision (in SQL or otherwise): they compute each row's slot with vectorised look-ups
(numpy ``searchsorted`` over integer days, dictionary indices), ask ``interpreter.evaluate`` once per
distinct slot, and spread the answers back with one ``take``. One definition of the decision, the
interpreter's, for the interpreter, the batch engine, Spark and the site.

A slot here may be finer than the interpreter's (two slots with the same decision are harmless), never
coarser: every part of the line that a decision reads is in it.

``SlotPolicy`` holds the policy of one release compiled for the look-ups; ``segments`` (the day line of
each code cut into spans covered by one row or by none) is shared with the Spark engine, which computes
the same slot columns in Spark SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..interpreter import evaluate
from ..model import ClaimLine, Decision, Outcome, Period, Policy

EPOCH = dt.date(1970, 1, 1)
DAY_MIN = -1_000_000  # before 0001-01-01
DAY_MAX = 10_000_000  # after 9999-12-31
OUTCOMES = tuple(o.value for o in Outcome)

# Slot columns: what a row's slot is made of. ``seg`` is the code's span (a row or a gap) for a code the
# release lists, else len(segments) + the code's own index; the limit keys are 0 when no limit of the row
# reads the field, 1 when the line lacks it, 2 when every limit accepts it, 3 + the value otherwise.
NOT_READ, MISSING, ACCEPTED, VALUE = 0, 1, 2, 3


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


@dataclass(frozen=True)
class Segment:
    """A span [lo, hi] of days of one code, covered by one row (``period``) or by none."""

    code: str
    lo: int
    hi: int
    period: Period | None
    # what the row's limits read (None: no limit of that kind); a value every limit accepts lies in range
    age_range: tuple[int, int] | None
    provider_types: frozenset[str] | None
    max_units: int | None
    reads_units: bool
    reads_established: bool
    reads_rcc: bool


def _segment(code: str, lo: int, hi: int, p: Period | None) -> Segment:
    if p is None:
        return Segment(code, lo, hi, None, None, None, None, False, False, False)
    ages = [(lim.min_age or 0, lim.max_age if lim.max_age is not None else 1 << 30)
            for lim in p.limits if lim.kind == "age"]
    types = [frozenset(lim.provider_types) for lim in p.limits if lim.kind == "provider-type"]
    units = [lim.max_units if lim.max_units is not None else 1 << 62 for lim in p.limits
             if lim.kind == "units-per-day"]
    return Segment(
        code, lo, hi, p,
        (max(a for a, _ in ages), min(b for _, b in ages)) if ages else None,
        frozenset.intersection(*types) if types else None,
        min(units) if units else None,
        bool(units),
        any(lim.kind == "established-patient" for lim in p.limits),
        bool(p.revenue_center_codes),
    )


def segments(policy: Policy, release: str) -> list[Segment]:
    """Every listed code's day line cut into spans, each covered by one row or by none.

    Spans follow ``interpreter.find_period`` to the letter: a day belongs to the last row starting on
    or before it, if that row still covers it; the days of a gap share one slot (what a gap decides
    depends only on the rows around it, which are the same across the gap).
    """
    out: list[Segment] = []
    for code, view in sorted(policy.views[release].items()):
        periods = view.periods
        starts = [day_number(p.effective) for p in periods]
        if starts[0] > DAY_MIN:
            out.append(_segment(code, DAY_MIN, starts[0] - 1, None))
        for i, p in enumerate(periods):
            lo = starts[i]
            next_start = starts[i + 1] if i + 1 < len(periods) else DAY_MAX + 1
            hi = min(day_number(p.end) if p.end is not None else DAY_MAX, next_start - 1)
            if lo <= hi:
                out.append(_segment(code, lo, hi, p))
            gap_lo = max(hi + 1, lo)
            if gap_lo <= next_start - 1:
                out.append(_segment(code, gap_lo, next_start - 1, None))
    return out


def date_bounds(policy: Policy) -> list[int]:
    """The days on which a dated rule of the program, or a release's whole-table coverage, changes."""
    days = {day_number(d) for d in policy.program.date_bounds()}
    days.update(day_number(d) for d in policy.complete_from.values() if d is not None)
    return sorted(days)


def _index(values: Sequence[str]) -> dict[str, int]:
    """Each value's small integer (from 1; 0 stands for none of them)."""
    return {v: i for i, v in enumerate(values, 1)}


class SlotPolicy:
    """The policy as published in one release, compiled for slot look-ups on Arrow batches."""

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        self.policy = policy
        self.release = policy.release(release).id
        program = policy.program
        self.segments = segments(policy, self.release)
        self.codes = _index(sorted({s.code for s in self.segments}))
        codes_of = np.array([self.codes[s.code] for s in self.segments], np.int64)
        # one sorted key per span: code index in the high bits, first day (shifted to be positive) in the low
        self.keys = (codes_of << 32) | (np.array([s.lo for s in self.segments], np.int64) - DAY_MIN)
        self.bounds = np.array(date_bounds(policy), np.int64)
        self.modifiers = _index(sorted(program.modifiers))
        self.places = _index(sorted(program.places_of_service))
        self.modalities = _index(sorted(program.modalities))
        n = len(self.segments)
        self.age_lo = np.array([s.age_range[0] if s.age_range else 0 for s in self.segments] + [0], np.int64)
        self.age_hi = np.array([s.age_range[1] if s.age_range else 0 for s in self.segments] + [0], np.int64)
        self.reads_age = np.array([s.age_range is not None for s in self.segments] + [False])
        self.reads_types = np.array([s.provider_types is not None for s in self.segments] + [False])
        self.max_units = np.array([s.max_units if s.max_units is not None else 0 for s in self.segments] + [0],
                                  np.int64)
        self.reads_units = np.array([s.reads_units for s in self.segments] + [False])
        self.reads_est = np.array([s.reads_established for s in self.segments] + [False])
        self.reads_rcc = np.array([s.reads_rcc for s in self.segments] + [False])
        self.unlisted = n  # the sentinel segment of a code the release does not list

    # --- slots ---

    def slots(self, lines: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(each row's slot number, the first row of each slot), slots numbered by first appearance."""
        n = lines.num_rows
        day = _ints(lines["day"])
        code_idx, code_values = _dict_indices(lines["code"])
        listed = np.array([self.codes.get(c, 0) for c in code_values] + [0], np.int64)[code_idx]
        seg = np.searchsorted(self.keys, (listed << 32) | (day - DAY_MIN), side="right") - 1
        seg = np.where(listed > 0, seg, self.unlisted)
        # a code the release does not list is its own slot (its messages name it)
        where = np.where(listed > 0, seg, len(self.segments) + code_idx)
        parts = [where, np.searchsorted(self.bounds, day, side="right")]
        for name in ("mod1", "mod2", "mod3", "mod4"):
            parts.append(_lookup(lines[name], self.modifiers))
        parts.append(_lookup(lines["pos"], self.places))
        parts.append(_lookup(lines["claim_type"], {"professional": 0, "institutional": 1}))
        parts.append(_lookup(lines["modality"], self.modalities))
        institutional = parts[-2] == 1
        rcc_idx, rcc_values = _dict_indices(lines["rcc"])
        reads_rcc = self.reads_rcc[seg] & institutional
        parts.append(np.where(reads_rcc, np.where(rcc_idx < len(rcc_values), rcc_idx + 2, 1), 0))
        parts.extend(self._limit_keys(lines, seg, n))
        key = _combine(parts)
        slot = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
        # dictionary indices are given in order of first appearance: a slot's first row is where the
        # running maximum first reaches it
        firsts = np.flatnonzero(np.diff(np.maximum.accumulate(slot), prepend=-1) > 0) if n else slot
        return slot, firsts

    def _limit_keys(self, lines: pa.Table, seg: np.ndarray, n: int) -> list[np.ndarray]:
        if not (self.reads_age.any() or self.reads_types.any() or self.reads_units.any() or self.reads_est.any()):
            return []
        out = []
        ages, valid = _nullable_ints(lines["member_age"], n)
        ok = (ages >= self.age_lo[seg]) & (ages <= self.age_hi[seg])
        out.append(np.where(self.reads_age[seg], np.where(~valid, MISSING, np.where(ok, ACCEPTED, VALUE + ages)),
                            NOT_READ))
        units, valid = _nullable_ints(lines["units"], n)
        ok = units <= self.max_units[seg]
        out.append(np.where(self.reads_units[seg], np.where(~valid, MISSING, np.where(ok, ACCEPTED, VALUE + units)),
                            NOT_READ))
        est, valid = _nullable_ints(lines["established_patient"], n)
        out.append(np.where(self.reads_est[seg], np.where(valid, VALUE + est, MISSING), NOT_READ))
        type_idx, type_values = _dict_indices(lines["provider_type"])
        reads = self.reads_types[seg]
        if reads.any():
            # whether every provider-type limit of the row accepts the type: once per (row, type) present
            pair = seg * (len(type_values) + 1) + type_idx
            uniq, inverse = np.unique(pair[reads], return_inverse=True)
            accepted = np.array([
                int(u % (len(type_values) + 1)) < len(type_values)
                and type_values[int(u % (len(type_values) + 1))] in (self.segments[int(u // (len(type_values) + 1))]
                                                                    .provider_types or frozenset())
                for u in uniq], dtype=bool)
            key = np.full(n, NOT_READ, np.int64)
            key[reads] = np.where(type_idx[reads] == len(type_values), MISSING,
                                  np.where(accepted[inverse], ACCEPTED, VALUE + type_idx[reads]))
            out.append(key)
        return out

    # --- decisions ---

    def decide(self, lines: pa.Table) -> tuple[np.ndarray, list[Decision]]:
        """(each row's slot, the decision of each slot), by the interpreter."""
        slot, firsts = self.slots(lines)
        reps = lines.take(pa.array(firsts)).to_pylist() if len(firsts) else []
        decisions = [evaluate(self.policy, claim_line(rec), release=self.release) for rec in reps]
        return slot, decisions


def claim_line(rec: dict[str, Any]) -> ClaimLine:
    """The claim line of one row of a checked batch (``checks.LINE_COLUMNS``)."""
    mods = tuple(m for m in (rec["mod1"], rec["mod2"], rec["mod3"], rec["mod4"]) if m is not None)
    return ClaimLine(rec["code"], EPOCH + dt.timedelta(days=rec["day"]), mods, rec["pos"], rec["claim_type"],
                     rec["rcc"], rec["modality"], rec["member_age"], rec["provider_type"], rec["units"],
                     rec["established_patient"], rec["line_id"], rec["claim_id"])


# --- vectorised helpers ---

def _one(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _ints(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    out: np.ndarray = _one(col).to_numpy(zero_copy_only=False).astype(np.int64)
    return out


def _nullable_ints(col: pa.ChunkedArray | pa.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
    arr = _one(col)
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else np.ones(n, bool)
    values = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    return values, valid


def _dict_indices(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[Any]]:
    """(each row's index into the distinct values, the values); a null row gets len(values)."""
    arr = _one(col)
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    values = arr.dictionary.to_pylist()
    idx = arr.indices.fill_null(len(values)).to_numpy(zero_copy_only=False).astype(np.int64)
    return idx, values


def _lookup(col: pa.ChunkedArray | pa.Array, index: dict[str, int]) -> np.ndarray:
    """Each row's value as its small integer in ``index`` (0 for a value not in it, or null)."""
    idx, values = _dict_indices(col)
    out: np.ndarray = np.array([index.get(v, 0) for v in values] + [0], np.int64)[idx]
    return out


def _combine(parts: list[np.ndarray]) -> np.ndarray:
    """One int64 per row that differs exactly where some part differs (mixed radix; factorised when too wide)."""
    key = np.zeros(len(parts[0]) if parts else 0, np.int64)
    width = 0
    for part in parts:
        top = int(part.max()) + 1 if len(part) else 1
        bits = max(1, top.bit_length())
        if width + bits > 62:  # squeeze what is combined so far into its distinct values first
            key = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
            width = max(1, (int(key.max()) + 1).bit_length()) if len(key) else 1
        key = (key << bits) | part
        width += bits
    out: np.ndarray = key
    return out
