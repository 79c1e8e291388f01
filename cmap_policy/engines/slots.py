"""Many claim lines decided by the interpreter itself: once per distinct slot, then spread back to the rows.

A decision is a pure function of its slot, which ``timeline`` defines (``timeline.Slots``, on which the
interpreter memoises): the code's row or gap on the date (``timeline.stretches``), the cut-offs passed
(``timeline.cut_offs``), the modifiers, place of service, claim type, modality and revenue code the program
reads, and the line fields a row's limits read (``timeline.Reads``). In a file of millions of lines the
distinct slots number in the thousands. So the engines do not restate the decision (in SQL or otherwise):
this module computes the same slot for columns, with vectorised look-ups (numpy ``searchsorted`` over integer
days, dictionary indices), asks ``interpreter.decide`` once per distinct slot, and spreads the answers back
with one ``take``. One definition of the decision, the interpreter's, and one of the slot, for the
interpreter, the batch engine, Spark and the site.

A slot here may be finer than the interpreter's (two slots with the same decision are harmless), never
coarser: every part of the line that a decision reads is in it.

``SlotPolicy`` holds the policy of one release compiled for the look-ups; ``segments`` is the timeline of
each code in day numbers. The Spark engine runs the batch engine itself in its workers, so it uses all of
this as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..interpreter import decide
from ..model import LIMIT_FIELDS, ClaimLine, Decision, Outcome, Period, Policy
from ..timeline import Reads, cut_offs, one_type_modifiers, stretches
from ..timeline import day_number as day_number  # the columns' day numbers
from .checks import EPOCH, Encoded, Field, pick
from .checks import first_rows as _first_rows

DAY_MIN = -1_000_000  # before 0001-01-01
DAY_MAX = 10_000_000  # after 9999-12-31
OUTCOMES = tuple(o.value for o in Outcome)

# Slot columns: what a row's slot is made of. ``seg`` is the code's span (a row or a gap) for a code the
# release lists, else len(segments) + the code's own index; the limit keys are 0 when no limit of the row
# reads the field, 1 when the line lacks it, 2 when every limit accepts it, 3 + the value otherwise.
NOT_READ, MISSING, ACCEPTED, VALUE = 0, 1, 2, 3


@dataclass(frozen=True)
class Segment:
    """A span [lo, hi] of days of one code (``timeline.Stretch`` in day numbers), covered by one row or by none,
    and what that row's limits read (``timeline.Reads``)."""

    code: str
    lo: int
    hi: int
    period: Period | None
    reads: Reads


def segments(policy: Policy, release: str) -> list[Segment]:
    """Every listed code's day line (``timeline.stretches``), in day numbers: each span covered by one row or by
    none. The days of a gap share one slot (what a gap decides depends only on the rows around it)."""
    return [Segment(code, day_number(s.first) if s.first is not None else DAY_MIN,
                    day_number(s.last) if s.last is not None else DAY_MAX, s.period, Reads.of(s.period))
            for code, view in sorted(policy.views[release].items()) for s in stretches(view)]


def _index(values: Sequence[str]) -> dict[str, int]:
    """Each value's small integer (from 1; 0 stands for none of them)."""
    return {v: i for i, v in enumerate(values, 1)}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the batch engine writes of a decision."""

    outcome: str
    reasons: str  # the reason codes, joined by single spaces
    period: str | None
    modality: str | None

    @classmethod
    def of(cls, d: Decision) -> Answer:
        s = d.summary()
        return cls(s.outcome, " ".join(s.reasons), s.period, d.modality)


class SlotPolicy:
    """The policy as published in one release, compiled for slot look-ups on encoded batches.

    It keeps every slot it has decided, across batches (up to ``CACHE_LIMIT`` of them, then it starts
    afresh): after the first batches of a file, a batch is decided without a call to the interpreter.
    """

    CACHE_LIMIT = 250_000

    def __init__(self, policy: Policy, release: str | None = None) -> None:
        self.policy = policy
        self.release = policy.release(release).id
        program = policy.program
        self.segments = segments(policy, self.release)
        self.codes = _index(sorted({s.code for s in self.segments}))
        codes_of = np.array([self.codes[s.code] for s in self.segments], np.int64)
        # one sorted key per span: code index in the high bits, first day (shifted to be positive) in the low
        self.keys = (codes_of << 32) | (np.array([s.lo for s in self.segments], np.int64) - DAY_MIN)
        self.bounds = np.array([day_number(d) for d in cut_offs(policy, self.release)], np.int64)
        self.modifiers = _index(sorted(program.modifiers))
        self.one_type_modifiers = one_type_modifiers(policy)
        self.claim_types = _index(sorted(program.claim_types))
        self.places = _index(sorted(program.places_of_service))
        self.modalities = _index(sorted(program.modalities))
        # per span, then one more entry for a code the release does not list (it reads nothing)
        reads = [s.reads for s in self.segments]
        ages = [r.age_range for r in reads]
        self.age_lo = np.array([a[0] if a else 0 for a in ages] + [0], np.int64)
        self.age_hi = np.array([a[1] if a else 0 for a in ages] + [0], np.int64)
        self.reads_age = np.array([a is not None for a in ages] + [False])
        self.reads_types = np.array([bool(r.types) for r in reads] + [False])
        self.max_units = np.array([r.max_units if r.units else 0 for r in reads] + [0], np.int64)
        self.reads_units = np.array([bool(r.units) for r in reads] + [False])
        self.reads_est = np.array([r.est for r in reads] + [False])
        self.reads_rcc = np.array([r.rcc for r in reads] + [False])
        self.reads_limits = self.reads_age | self.reads_types | self.reads_units | self.reads_est
        # The batch writes reason codes, not messages: a value a row's only limit of its kind refuses decides
        # like any other it refuses. Where a row has several limits of a kind, which ones refuse depends on
        # the value, and the value stays in the slot.
        self.age_value = np.array([("age" in r.several) for r in reads] + [False])
        self.type_value = np.array([("provider-type" in r.several) for r in reads] + [False])
        self.units_value = np.array([("units-per-day" in r.several) for r in reads] + [False])
        self.unlisted = len(self.segments)  # the sentinel span of a code the release does not list
        # per stretch between the program's bounds: whether the limits of the era rules in force read a field
        firsts = [dt.date.min, *(EPOCH + dt.timedelta(days=int(d)) for d in self.bounds)]
        era_kinds = [{lim.kind for r in program.era_rules if r.in_force(day) for lim in r.limits} for day in firsts]
        self.era_reads = [(name, np.array([kind in kinds for kinds in era_kinds]))
                          for kind, name in LIMIT_FIELDS.items() if any(kind in kinds for kinds in era_kinds)]
        self.generation = 0  # counts fresh starts of the cache
        self._start_afresh()

    def _start_afresh(self) -> None:
        self.known: dict[bytes, int] = {}  # a slot's parts, as bytes -> its decision's number
        # what the batch writes of each decision (the messages are not kept: a file decides tens of
        # thousands of slots, and a whole Decision is a few kilobytes)
        self.decided: list[Answer] = []
        # numbers for the values that are not the policy's own (codes it does not list, revenue codes,
        # provider types, lists of modifiers), so that a slot's parts mean the same in every batch
        self._ids: dict[str, dict[Any, int]] = {"code": {}, "mods": {}, "rcc": {}, "type": {}, "era": {}}
        self.generation += 1

    def _ids_of(self, kind: str, values: Sequence[Any]) -> np.ndarray:
        ids = self._ids[kind]
        return np.array([ids.setdefault(v, len(ids)) for v in values], np.int64)

    # --- slots ---

    def parts(self, enc: Encoded) -> tuple[list[tuple[np.ndarray, int | None]], np.ndarray]:
        """(the parts of each row's slot, each with a bound on its values if known; each row's span): numbers
        that mean the same in every batch."""
        f = enc.fields
        code, date = f["code"], f["date"]
        listed = np.array([self.codes.get(v, 0) if v is not None else 0 for v in code.values], np.int64)
        code_ids = self._ids_of("code", code.values)
        days = np.array([d if d is not None else 0 for d in date.values], np.int64)
        bound = np.searchsorted(self.bounds, days, side="right")
        nb = len(self.bounds) + 1
        nc, nd = len(code.values), len(date.values)
        if nc * nd <= max(4 * enc.rows, 1 << 16):
            # the span of every (distinct code, distinct day) pair, then one look-up per row
            seg_grid = np.searchsorted(self.keys, (listed[:, None] << 32) | (days[None, :] - DAY_MIN),
                                       side="right") - 1
            seg_grid = np.where(listed[:, None] > 0, seg_grid, self.unlisted)
            where = np.where(listed[:, None] > 0, seg_grid, self.unlisted + code_ids[:, None]) * nb + bound
            flat = code.idx * nd + date.idx
            seg, codeday = seg_grid.ravel()[flat], where.ravel()[flat]
        else:  # many codes and many days (a hostile file): one search per row
            row_listed = listed[code.idx]
            found = np.searchsorted(self.keys, (row_listed << 32) | (days[date.idx] - DAY_MIN), side="right") - 1
            seg = np.where(row_listed > 0, found, self.unlisted)
            codeday = np.where(row_listed > 0, found, self.unlisted + code_ids[code.idx]) * nb + bound[date.idx]
        known_mods = [tuple(m for m in v if m in self.modifiers) if v is not None else ()
                      for v in f["modifiers"].values]
        institutional = np.array([v == "institutional" for v in f["claim_type"].values])[f["claim_type"].idx]
        rcc = f["rcc"]
        reads_rcc = self.reads_rcc[seg]
        rcc_read = reads_rcc & institutional
        # the claim type is read by a modifier used on one claim type only, and with a span's revenue codes
        mods_read_type = np.array([any(m in self.one_type_modifiers for m in v) for v in known_mods])
        type_read = mods_read_type[f["modifiers"].idx] | reads_rcc
        mods_ids = self._ids_of("mods", known_mods)
        rcc_ids = 1 + self._ids_of("rcc", rcc.values)
        parts = [
            (codeday, None),
            (mods_ids[f["modifiers"].idx], _bound(mods_ids)),
            (_looked_up(f["pos"], self.places), len(self.places) + 1),
            (type_read * _looked_up(f["claim_type"], self.claim_types), len(self.claim_types) + 1),
            (_looked_up(f["modality"], self.modalities), len(self.modalities) + 1),
            (rcc_read * rcc_ids[rcc.idx], _bound(rcc_ids)),
        ]
        parts.extend(self._era_keys(enc, bound[date.idx]))
        rows = np.flatnonzero(self.reads_limits[seg])
        if len(rows):
            parts.extend((key, None) for key in self._limit_keys(enc, seg, rows))
        return parts, seg

    def _era_keys(self, enc: Encoded, stretch: np.ndarray) -> list[tuple[np.ndarray, int | None]]:
        """What the limits of the era rules in force on each row's date read of it: the field's value itself
        (finer than the interpreter needs, never coarser), MISSING, or NOT_READ where no era rule reads it."""
        out: list[tuple[np.ndarray, int | None]] = []
        ids = self._ids["era"]
        for name, reads in self.era_reads:
            read = reads[stretch]
            if read.any():
                col = enc.fields[name]
                nums = np.array([MISSING if v is None else VALUE + ids.setdefault((name, v), len(ids))
                                 for v in col.values], np.int64)
                out.append((read * nums[col.idx], None))
        return out

    def _limit_keys(self, enc: Encoded, seg: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
        """What the limits of each row's span read of it (for the rows whose span has limits; 0 elsewhere)."""
        f, n, s = enc.fields, enc.rows, seg[rows]

        def column(name: str) -> tuple[np.ndarray, np.ndarray]:
            values = f[name].values
            nums = np.array([int(v) if v is not None else 0 for v in values], np.int64)
            valid = np.array([v is not None for v in values])
            idx = f[name].idx[rows]
            return nums[idx], valid[idx]

        def limit(reads: np.ndarray, valid: np.ndarray, ok: np.ndarray, refused: np.ndarray) -> np.ndarray:
            # NOT_READ where the span has no such limit, else MISSING, ACCEPTED or the refused value's key
            key: np.ndarray = reads * pick(valid, pick(ok, ACCEPTED, refused), MISSING)
            return key

        out = []
        ages, valid = column("member_age")
        ok = (ages >= self.age_lo[s]) & (ages <= self.age_hi[s])
        out.append(limit(self.reads_age[s], valid, ok, VALUE + self.age_value[s] * ages))
        units, valid = column("units")
        ok = units <= self.max_units[s]
        out.append(limit(self.reads_units[s], valid, ok, VALUE + self.units_value[s] * units))
        est, valid = column("established_patient")
        out.append(self.reads_est[s] * pick(valid, VALUE + est, MISSING))
        ptype = f["provider_type"]
        type_ids = self._ids_of("type", ptype.values)
        # whether every provider-type limit of the span accepts the type: once per (span, type) present
        width = len(ptype.values)
        pair, firsts = _first_rows(s * width + ptype.idx[rows])
        verdicts = np.array([self._accepts(int(s[r]), int(ptype.idx[rows[r]]), ptype.values)
                             for r in firsts.tolist()], np.bool_)
        accepted = verdicts[pair]
        missing = np.array([v is None for v in ptype.values])[ptype.idx[rows]]
        refused = VALUE + self.type_value[s] * type_ids[ptype.idx[rows]]
        out.append(limit(self.reads_types[s], ~missing, accepted, refused))
        spread = []
        for part in out:
            full = np.zeros(n, np.int64)
            full[rows] = part
            spread.append(full)
        return spread

    def _accepts(self, span: int, value: int, types: Sequence[str | None]) -> bool:
        """Whether every provider-type limit of the span accepts the type ``types[value]``."""
        allowed = self.segments[span].reads.provider_types if span < self.unlisted else None
        return allowed is not None and types[value] is not None and types[value] in allowed

    # --- decisions ---

    def answers(self, enc: Encoded) -> np.ndarray:
        """Each row's decision, as its number in ``decided``; the slots not seen before are decided now,
        by the interpreter, once each."""
        if len(self.known) > self.CACHE_LIMIT:
            self._start_afresh()
        if not enc.rows:
            return np.zeros(0, np.int64)
        parts, _ = self.parts(enc)
        slot, firsts = _first_rows(_combine(parts))
        table = np.ascontiguousarray(np.stack([p[firsts] for p, _ in parts], axis=1), dtype=np.int64)
        keys = cast(list[bytes], table.view(np.dtype((np.void, table.shape[1] * 8))).ravel().tolist())
        known = self.known
        found = np.array([known.get(k, -1) for k in keys], np.int64)
        new = np.flatnonzero(found < 0)
        if len(new):
            policy, release, decided = self.policy, self.release, self.decided
            for i, line in zip(new.tolist(), claim_lines_of(enc, firsts[new]), strict=True):
                known[keys[i]] = found[i] = len(decided)
                decided.append(Answer.of(decide(policy, line, release=release)))
        out: np.ndarray = found[slot]
        return out


_FIELDS_OF_A_LINE = ("code", "date", "modifiers", "pos", "claim_type", "rcc", "modality", "member_age",
                     "provider_type", "units", "established_patient")  # in ClaimLine's order


def claim_lines_of(enc: Encoded, rows: np.ndarray) -> list[ClaimLine]:
    """The claim lines of some rows of an encoded batch (their checked values), a column at a time."""
    f = enc.fields
    columns: list[list[Any]] = []
    for name in _FIELDS_OF_A_LINE:
        values = f[name].values
        if name == "date":
            values = [EPOCH + dt.timedelta(days=d) if d is not None else None for d in values]
        elif name == "modifiers":
            values = [m or () for m in values]
        columns.append([values[i] for i in f[name].idx[rows].tolist()])
    return [ClaimLine(*parts) for parts in zip(*columns, strict=True)]


def _looked_up(field: Field, index: dict[str, int]) -> np.ndarray:
    """Each row's value as its small integer in ``index`` (0 for a value not in it, or null)."""
    out: np.ndarray = np.array([index.get(v, 0) if v is not None else 0 for v in field.values], np.int64)[field.idx]
    return out


# --- vectorised helpers ---

def _combine(parts: list[tuple[np.ndarray, int | None]]) -> np.ndarray:
    """One int64 per row that differs exactly where some part differs (mixed radix; factorised when too wide).

    Each part comes with a bound on its values when one is known without a pass over the rows (None: the
    part's maximum is found); the key is shifted and or-ed in place, so no part costs a new array.
    """
    n = len(parts[0][0]) if parts else 0
    key = np.zeros(n, np.int64)
    width = 0
    for part, bound in parts:
        top = bound if bound is not None else (int(part.max()) + 1 if n else 1)
        bits = max(1, top.bit_length())
        if width + bits > 62:  # squeeze what is combined so far into its distinct values first
            key = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
            width = max(1, (int(key.max()) + 1).bit_length()) if n else 1
        np.left_shift(key, bits, out=key)
        np.bitwise_or(key, part, out=key)
        width += bits
    return key


def _bound(small: np.ndarray) -> int:
    """One more than the greatest of a few values (a part's values are drawn from them)."""
    return int(small.max()) + 1 if len(small) else 1
