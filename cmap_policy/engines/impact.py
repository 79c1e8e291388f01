"""What a change to the policy does to real claims: a file decided under two policies, compared line by line.

``cmap-policy diff`` alone is exhaustive over the *kinds* of line; an author also wants to know what the change
does to the lines actually billed (last quarter's claims, a decision log): how many flip, for which codes,
which way, and for how many dollars. That is a question about traffic, so it runs on the batch engine's road:
the file is read and checked once per batch (``batch.read_batches``, ``Engine.check``), each side's
``Engine`` answers the batch slot by slot, and the two answers are compared as arrays. Only the lines whose
decision changed are grouped (by before, after and code) with one hash pass; Python touches groups, never
lines, so the comparison costs about one more batch run.

The comparison is ``ImpactTally``, fed with arrays, so the decision log's replay (``cmap-policy log replay``)
reports with the same tally, its *before* being the logged decision. A decision is compared by its outcome
and its reason codes; a transition is a change of outcome.

Where the file has an ``amount`` column (CSV or Parquet: the billed amount of the line), it is set aside
before the line is checked, and each transition carries the sum of its lines' amounts. A value that is not a
plain decimal number is left out of the sums and counted.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import formats
from ..errors import InputError, LineError
from ..lines import canonical_field
from ..model import ClaimLine, DecisionSummary, Policy
from .batch import Answered, Engine, pipeline, read_batches
from .checks import EPOCH, Encoded, encode_lines, first_rows
from .files import Batch, lines_table
from .slots import OUTCOMES

AMOUNT_COLUMN = "amount"  # the billed amount of a line, in dollars (CSV and Parquet files)
EXAMPLES = 5  # example lines shown for each transition
ERRORS_KEPT = 20  # malformed lines listed in the report (all are counted)
_AMOUNT_TEXT = r"^\s*-?[0-9]{1,12}(\.[0-9]{1,4})?\s*$"


@dataclass
class _Group:
    """The changed lines with one (outcome before, outcome after, reasons before, reasons after, code)."""

    lines: int = 0
    amount: float = 0.0
    example: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rows:
    """One batch of compared lines: each row's line number, code, date and ids, and its decision on each side
    (an index into ``OUTCOMES`` and an id from ``ImpactTally.reason_ids``)."""

    numbers: np.ndarray
    codes: Sequence[str | None]
    code_idx: np.ndarray
    days: Sequence[int | None]
    day_idx: np.ndarray
    line_ids: pa.Array
    claim_ids: pa.Array
    outcome_before: np.ndarray
    outcome_after: np.ndarray
    reasons_before: np.ndarray
    reasons_after: np.ndarray
    amounts: np.ndarray | None = None  # float64, NaN where the line has no amount


@dataclass
class ImpactTally:
    """The comparison of many lines' decisions, batch by batch: counts, groups of changed lines, errors."""

    compared: int = 0
    errors: int = 0
    error_examples: list[dict[str, Any]] = field(default_factory=list)
    header: str | None = None
    before: Counter[str] = field(default_factory=Counter)
    after: Counter[str] = field(default_factory=Counter)
    amount_column: bool = False
    amount_lines: int = 0
    amount_unread: int = 0
    groups: dict[tuple[str, str, str, str, str], _Group] = field(default_factory=dict)
    _reason_ids: dict[str, int] = field(default_factory=dict)
    _reason_texts: list[str] = field(default_factory=list)  # appended to only: read while another thread adds

    @property
    def read(self) -> int:
        return self.compared + self.errors

    def reason_ids(self, texts: Sequence[str | None]) -> np.ndarray:
        """Each text of reason codes as one id shared by both sides (so that two engines' answers compare)."""
        known, texts_ = self._reason_ids, self._reason_texts
        for t in texts:
            if (t or "") not in known:
                known[t or ""] = len(texts_)
                texts_.append(t or "")
        return np.array([known[t or ""] for t in texts] or [0], np.int64)

    def add_errors(self, errors: Sequence[LineError] | pa.Table) -> None:
        rows = [{"line": e.line, "field": e.field, "error": e.message} for e in errors] \
            if not isinstance(errors, pa.Table) else errors.to_pylist()
        self.errors += len(rows)
        self.error_examples.extend(rows[: max(0, ERRORS_KEPT - len(self.error_examples))])

    def add(self, rows: Rows) -> None:
        n = len(rows.numbers)
        self.compared += n
        for counter, outcomes in ((self.before, rows.outcome_before), (self.after, rows.outcome_after)):
            for i, count in enumerate(np.bincount(outcomes, minlength=len(OUTCOMES)).tolist()):
                if count:
                    counter[OUTCOMES[i]] += count
        if rows.amounts is not None:
            self.amount_lines += int(np.count_nonzero(~np.isnan(rows.amounts)))
        changed = np.flatnonzero((rows.outcome_before != rows.outcome_after)
                                 | (rows.reasons_before != rows.reasons_after))
        if not len(changed):
            return
        texts = self._reason_texts[:]
        n_texts, n_codes = max(len(texts), 1), max(len(rows.codes), 1)
        key = rows.outcome_before[changed].astype(np.int64) * len(OUTCOMES) + rows.outcome_after[changed]
        key = (key * n_texts + rows.reasons_before[changed]) * n_texts + rows.reasons_after[changed]
        key = key * n_codes + rows.code_idx[changed]
        slot, firsts = first_rows(key)
        counts = np.bincount(slot).tolist()
        sums = [0.0] * len(counts)
        if rows.amounts is not None:
            amounts = rows.amounts[changed]
            has = ~np.isnan(amounts)
            sums = np.bincount(slot[has], weights=amounts[has], minlength=len(counts)).tolist()
        for g, r in enumerate(changed[firsts].tolist()):
            k = (OUTCOMES[rows.outcome_before[r]], OUTCOMES[rows.outcome_after[r]],
                 texts[rows.reasons_before[r]], texts[rows.reasons_after[r]], rows.codes[rows.code_idx[r]] or "")
            group = self.groups.setdefault(k, _Group())
            group.lines += counts[g]
            group.amount += sums[g]
            if group.example is None:
                day = rows.days[rows.day_idx[r]]
                group.example = {"line": int(rows.numbers[r]), "line_id": rows.line_ids[r].as_py(),
                                 "claim_id": rows.claim_ids[r].as_py(), "code": k[4],
                                 "date": (EPOCH + dt.timedelta(days=day)).isoformat() if day is not None else None,
                                 "before": {"outcome": k[0], "reasons": k[2].split()},
                                 "after": {"outcome": k[1], "reasons": k[3].split()}}

    def report(self, file: str, base: dict[str, Any], head: dict[str, Any]) -> ImpactReport:
        return ImpactReport(file, base, head, self)


def _cents(value: float) -> float:
    return round(value, 2)


@dataclass(frozen=True)
class ImpactReport:
    """The impact of going from ``base`` to ``head`` on the lines of ``file``."""

    file: str
    base: dict[str, Any]
    head: dict[str, Any]
    tally: ImpactTally

    @property
    def changed_outcome(self) -> int:
        return sum(g.lines for k, g in self.tally.groups.items() if k[0] != k[1])

    @property
    def changed(self) -> int:
        return sum(g.lines for g in self.tally.groups.values())

    def transitions(self) -> list[dict[str, Any]]:
        by_pair: dict[tuple[str, str], dict[str, Any]] = {}
        for k, g in self.tally.groups.items():
            if k[0] == k[1]:
                continue
            t = by_pair.setdefault((k[0], k[1]), {"from": k[0], "to": k[1], "lines": 0, "amount": 0.0,
                                                  "by_code": Counter(), "examples": []})
            t["lines"] += g.lines
            t["amount"] += g.amount
            t["by_code"][k[4]] += g.lines
            t["examples"].append(g.example)
        out = []
        for t in sorted(by_pair.values(), key=lambda t: (-t["lines"], t["from"], t["to"])):
            examples = sorted(t["examples"], key=lambda e: e["line"])
            out.append({**t, "amount": _cents(t["amount"]) if self.tally.amount_column else None,
                        "by_code": dict(sorted(t["by_code"].items(), key=lambda kv: (-kv[1], kv[0]))),
                        "examples": examples[:EXAMPLES]})
        return out

    def reasons(self) -> dict[str, dict[str, int]]:
        appeared: Counter[str] = Counter()
        gone: Counter[str] = Counter()
        for k, g in self.tally.groups.items():
            before, after = set(k[2].split()), set(k[3].split())
            for r in after - before:
                appeared[r] += g.lines
            for r in before - after:
                gone[r] += g.lines
        return {"appeared": dict(sorted(appeared.items(), key=lambda kv: (-kv[1], kv[0]))),
                "gone": dict(sorted(gone.items(), key=lambda kv: (-kv[1], kv[0])))}

    def by_code(self) -> list[dict[str, Any]]:
        codes: dict[str, dict[str, Any]] = {}
        for k, g in self.tally.groups.items():
            c = codes.setdefault(k[4], {"code": k[4], "outcome_changed": 0, "reasons_changed": 0,
                                        "transitions": Counter()})
            if k[0] != k[1]:
                c["outcome_changed"] += g.lines
                c["transitions"][f"{k[0]} -> {k[1]}"] += g.lines
            else:
                c["reasons_changed"] += g.lines
        return [{**c, "transitions": dict(sorted(c["transitions"].items()))}
                for c in sorted(codes.values(), key=lambda c: (-c["outcome_changed"] - c["reasons_changed"],
                                                               c["code"]))]

    def as_dict(self) -> dict[str, Any]:
        t = self.tally
        return {
            "file": self.file, "base": self.base, "head": self.head,
            "lines": {"read": t.read, "compared": t.compared, "errors": t.errors,
                      "outcome_changed": self.changed_outcome,
                      "reasons_changed_only": self.changed - self.changed_outcome,
                      "unchanged": t.compared - self.changed},
            "outcomes": {"before": {o: t.before[o] for o in OUTCOMES}, "after": {o: t.after[o] for o in OUTCOMES}},
            "amount": ({"column": AMOUNT_COLUMN, "lines_with_amount": t.amount_lines, "unread": t.amount_unread}
                       if t.amount_column else None),
            "transitions": self.transitions(),
            "by_code": self.by_code(),
            "reasons": self.reasons(),
            "header_error": t.header,
            "errors": t.error_examples,
        }

    def to_markdown(self) -> str:
        from .impact_markdown import render_markdown

        return render_markdown(self.as_dict())


# --- a file, under two policies ---------------------------------------------------------------------------------


def _split_amount(raw: pa.Table, tally: ImpactTally) -> tuple[pa.Table, np.ndarray | None, np.ndarray | None]:
    """(the raw columns without the amount column, each row's amount or NaN, which rows have one not read)."""
    names = [n for n in raw.column_names if canonical_field(n) == AMOUNT_COLUMN]
    if not names:
        return raw, None, None
    tally.amount_column = True
    col = raw[names[0]]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
        values = pc.cast(col, pa.float64())
        given = pc.is_valid(col)
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        ok = pc.match_substring_regex(col, _AMOUNT_TEXT)
        values = pc.cast(pc.utf8_trim_whitespace(pc.if_else(ok, col, pa.scalar(None, col.type))), pa.float64())
        given = pc.and_(pc.is_valid(col), pc.not_equal(pc.utf8_trim_whitespace(col), ""))
    else:  # a column of another type (a list, a struct): no amount is read from it
        values = pa.nulls(len(col), pa.float64())
        given = pc.is_valid(col)
    amounts = values.to_numpy(zero_copy_only=False).astype(np.float64)
    unread = np.isnan(amounts) & pc.fill_null(given, False).to_numpy(zero_copy_only=False)
    return raw.drop_columns(names), amounts, unread


def _header_only_amount(batch: Batch) -> bool:
    assert batch.header is not None
    return bool(batch.header.fields) and all(canonical_field(f) == AMOUNT_COLUMN for f in batch.header.fields)


def _side(a: Answered, tally: ImpactTally) -> tuple[np.ndarray, np.ndarray]:
    """Each line's outcome (an index into ``OUTCOMES``) and reasons (an id of ``tally``) as one engine answered."""
    o_codes, _ = a.columns["outcome"]
    r_codes, r_texts = a.columns["reasons"]
    return o_codes[a.answers], tally.reason_ids(r_texts.to_pylist())[r_codes[a.answers]]


def _rows(enc: Encoded, before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray],
          amounts: np.ndarray | None) -> Rows:
    (ob, rb), (oh, rh) = before, after
    code, date = enc.fields["code"], enc.fields["date"]
    return Rows(enc.numbers, code.values, code.idx, date.values, date.idx, enc.free["line_id"],
                enc.free["claim_id"], ob, oh, rb, rh, amounts)


def _good_rows(numbers: np.ndarray, good: np.ndarray) -> np.ndarray:
    """The positions in the batch (whose rows have line ``numbers``) of the lines that passed the checks."""
    order = np.argsort(numbers, kind="stable")
    found: np.ndarray = order[np.searchsorted(numbers[order], good)]
    return found


def impact(path: str | Path, base: Policy, head: Policy, *, base_release: str | None = None,
           head_release: str | None = None, base_label: str = "BASE", head_label: str = "HEAD",
           input_fmt: str | None = None) -> ImpactReport:
    """Decide every line of ``path`` under ``base`` and ``head`` (each as of its release, default its latest) and
    compare: the ``ImpactReport``. Raises ``InputError`` when the file cannot be read."""
    src = Path(path)
    fmt = formats.of_file(src, input_fmt) or "jsonl"  # an empty file of no known suffix: no lines
    engines = (Engine(base, base_release), Engine(head, head_release))
    tally = ImpactTally()
    _, batches = read_batches(src, fmt, base)

    def check(batch: Batch) -> tuple[Encoded | None, np.ndarray | None]:
        if batch.header is not None and not _header_only_amount(batch):
            tally.header = batch.header.error.message
        if batch.raw is not None and batch.raw.num_rows and not batch.parts and batch.lines is None:
            assert batch.line_numbers is not None  # CSV, Parquet, Arrow: the columns may carry the amount
            tally.add_errors(batch.errors)
            raw, amounts, unread = _split_amount(batch.raw, tally)
            enc, errors = engines[0].check(raw, batch.line_numbers)
            tally.add_errors(errors)
            if amounts is None or unread is None:
                return enc, None
            numbers = batch.line_numbers.to_numpy(zero_copy_only=False).astype(np.int64)
            good = _good_rows(numbers, enc.numbers)
            tally.amount_unread += int(np.count_nonzero(unread[good]))
            return enc, amounts[good]
        checked, errors = engines[0].check_batch(batch)  # JSON Lines, JSON, X12: read as the batch engine reads them
        tally.add_errors(errors)
        return checked, None

    def decide(checked: tuple[Encoded | None, np.ndarray | None]) -> Rows | None:
        enc, amounts = checked
        if enc is None or not enc.rows:
            return None
        return _rows(enc, _side(engines[0].answer(enc), tally), _side(engines[1].answer(enc), tally), amounts)

    def add(rows: Rows | None) -> None:
        if rows is not None:
            tally.add(rows)

    try:
        pipeline((check(b) for b in batches), decide, add)
    except pa.ArrowException as err:
        raise InputError(str(err)) from None
    return tally.report(src.name, {"label": base_label, "release": engines[0].release, "policy_hash": base.hash},
                        {"label": head_label, "release": engines[1].release, "policy_hash": head.hash})


# --- a decision log, against a policy ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Logged:
    """A logged decision: its line (numbered through the log files in order), as read again, and the summary of
    what was decided (``model.DecisionSummary``, as the log kept it)."""

    number: int
    line: ClaimLine
    summary: DecisionSummary


def replay_impact(logged: Iterable[Logged], policy: Policy, *, release: str | None = None,
                  file: str = "decision log", batch_rows: int = 100_000) -> ImpactReport:
    """The impact of deciding the logged lines with ``policy`` (as of ``release``) instead of as they were: the
    *before* side is the logged decision, the *after* side the batch engine's. The records that cannot be read
    again are the caller's to report (and to count in ``report.tally.errors``)."""
    engine = Engine(policy, release)
    tally = ImpactTally()
    releases: set[str] = set()
    hashes: set[str] = set()
    it = iter(logged)
    while chunk := list(itertools.islice(it, batch_rows)):
        enc = encode_lines(lines_table((x.number, x.line) for x in chunk))
        before = (np.array([OUTCOMES.index(x.summary.outcome) for x in chunk], np.int64),
                  tally.reason_ids([" ".join(x.summary.reasons) for x in chunk]))
        releases.update(x.summary.release for x in chunk)
        hashes.update(x.summary.policy_hash for x in chunk)
        tally.add(_rows(enc, before, _side(engine.answer(enc), tally), None))
    return tally.report(file, {"label": "as logged", "release": ", ".join(sorted(releases)),
                               "policy_hash": ", ".join(sorted(hashes))},
                        {"label": "replayed", "release": engine.release, "policy_hash": policy.hash})
