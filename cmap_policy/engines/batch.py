"""The batch engine: decide files of millions of claim lines, with the interpreter's own decisions.

A file is read in batches (pyarrow: Parquet row groups, Arrow IPC record batches, CSV and JSON Lines
byte blocks, X12 and JSON documents as the interpreter reads them), so memory stays flat however large
the input is. Each batch is checked as ``lines.parse_line`` checks a line -- by the same Python code,
run once per distinct value of each column and spread back to the rows with Arrow dictionary arrays
(``checks.encode``) -- and then decided slot by slot (``slots.SlotPolicy``): each row's slot is computed
with vectorised look-ups, ``interpreter.decide`` decides each distinct slot once, and the answers are
spread back to the rows. Lines that fail a check go to the errors output with their line number, field
and reason; every other line is decided; so lines in = decisions out + errors out.

Why this shape: a decision is a pure function of its slot, and a file of millions of lines has thousands
of distinct slots, so deciding with the reference interpreter costs next to nothing and there is no
second definition of the decision to keep in step with it. pyarrow reads and writes Parquet, Arrow, CSV
and JSON Lines in C++, numpy does the per-row look-ups; Python touches batches and distinct values, never
lines (except the few lines a bulk reader hands to the interpreter's own reader, and X12, whose values
are typed per line). pyarrow and numpy are imported by the engines only, so the one-line path never
loads them.

Line numbers: Parquet and Arrow rows count from 1; CSV and JSON Lines lines are the file's physical
lines (a CSV header is line 1; blank lines are skipped and counted); X12 lines are segment positions.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import formats
from ..errors import InputError, LineError
from ..model import Policy
from .checks import ERROR_SCHEMA, TEXT_DICT, Encoded, encode, encode_lines, indices_of
from .files import (
    Batch,
    JsonlWriter,
    Writer,
    read_arrow,
    read_csv,
    read_json_batches,
    read_parquet,
    read_x12_batches,
    writer_for,
)
from .jsonl import read_jsonl_batches
from .slots import OUTCOMES, SlotPolicy

S = TypeVar("S")
T = TypeVar("T")


def _read_parquet(path: Path, policy: Policy) -> tuple[int, Iterator[Batch]]:
    return read_parquet(path)


def _read_csv(path: Path, policy: Policy) -> tuple[int, Iterator[Batch]]:
    return read_csv(path)


# each format of ``formats.INPUTS`` and its reader: (the progress bar's total, the batches)
READERS: dict[str, Callable[[Path, Policy], tuple[int, Iterator[Batch]]]] = {
    "parquet": _read_parquet, "csv": _read_csv, "jsonl": read_jsonl_batches, "json": read_json_batches,
    "arrow": read_arrow, "x12": read_x12_batches,
}


def read_batches(src: Path, fmt: str, policy: Policy) -> tuple[int, Iterator[Batch]]:
    """(the size to show progress against, the batches) of a file in one of ``formats.INPUTS``."""
    return READERS[formats.checked_input(fmt)](src, policy)


# --- deciding a batch ---

class Engine:
    """The policy of one release, deciding batches of checked lines with the interpreter, slot by slot.

    What each decision writes (outcome, reasons, period, modality) is kept as small integers per decision,
    so a batch's output columns are dictionary arrays made with one numpy look-up each.
    """

    def __init__(self, policy: Policy, release: str | None = None, threads: int | None = None) -> None:
        self.policy = policy
        self.slots = SlotPolicy(policy, release)
        self._generation = -1

    @property
    def release(self) -> str:
        return self.slots.release

    def _columns_of_new_decisions(self) -> dict[str, tuple[np.ndarray, pa.Array]]:
        """For each output column of a decision: (each decision's index into the texts, the texts), taken
        together after the last batch's new decisions. The arrays are never changed once made, so a batch
        carries its own to the thread that writes it while this one goes on deciding."""
        if self._generation != self.slots.generation:  # the slot cache started afresh
            self._generation = self.slots.generation
            self._texts: dict[str, dict[str | None, int]] = {"reasons": {}, "period": {}, "modality": {}}
            self._codes: dict[str, list[int]] = {"outcome": [], "reasons": [], "period": [], "modality": []}
            self._arrays: dict[str, tuple[np.ndarray, pa.Array]] = {}
        answers = self.slots.decided
        codes, texts = self._codes, self._texts
        if len(codes["outcome"]) == len(answers) and self._arrays:
            return self._arrays
        for a in answers[len(codes["outcome"]):]:
            codes["outcome"].append(OUTCOMES.index(a.outcome))
            for name, text in (("reasons", a.reasons), ("period", a.period), ("modality", a.modality)):
                codes[name].append(texts[name].setdefault(text, len(texts[name])))
        arrays = {"outcome": (np.array(codes["outcome"], np.int32), OUTCOME_VALUES)}
        for name in ("reasons", "period", "modality"):
            arrays[name] = (np.array(codes[name], np.int32), pa.array(list(texts[name]), pa.string()))
        self._arrays = arrays
        return arrays

    def answer(self, enc: Encoded) -> Answered:
        """Each good line's decision (deciding the slots not seen before): what ``table`` writes out."""
        if not enc.rows:
            return Answered(enc, np.zeros(0, np.int64), {}, self.release, self.policy.hash)
        answers = self.slots.answers(enc)
        return Answered(enc, answers, self._columns_of_new_decisions(), self.release, self.policy.hash)

    def decide_encoded(self, enc: Encoded) -> pa.Table:
        """Decide the good lines of a batch: the output rows, in the same order."""
        return self.answer(enc).table()

    def decide_lines(self, lines: pa.Table) -> pa.Table:
        """Decide a table with ``checks.LINE_COLUMNS``: the output rows, in the same order."""
        return self.decide_encoded(encode_lines(lines)) if lines.num_rows else _empty_decisions()

    def check(self, raw: pa.Table, line_numbers: pa.Array) -> tuple[Encoded, pa.Table]:
        """(the good lines, errors) of a batch of raw columns as read from a file, with each row's line number."""
        return encode(raw, line_numbers, tuple(self.policy.program.modalities))

    def check_batch(self, batch: Batch) -> tuple[Encoded | None, pa.Table]:
        """(the good lines, every error in line order) of a batch as a reader gives it: raw columns (a file's
        block, and any ``parts`` of it read apart), and lines the interpreter's reader read one by one."""
        errors = [_errors_table(batch.errors)]
        pieces = [(batch.raw, batch.line_numbers)] if batch.raw is not None and batch.raw.num_rows else []
        pieces += [(table, pa.array(numbers)) for table, numbers in batch.parts]
        enc: Encoded | None = None
        for raw, numbers in pieces:
            assert numbers is not None
            checked, errs = self.check(raw, numbers)
            errors.append(errs)
            enc = checked if enc is None else enc.concat(checked)
        if batch.lines is not None and batch.lines.num_rows:
            checked = encode_lines(batch.lines)
            enc = checked if enc is None else enc.concat(checked)
        return enc, pa.concat_tables(errors).sort_by("line")

    def decide_raw(self, raw: pa.Table, line_numbers: pa.Array) -> tuple[pa.Table, pa.Table]:
        """(decisions, errors) for a batch of raw columns as read from a file, with each row's line number."""
        enc, errors = self.check(raw, line_numbers)
        return self.decide_encoded(enc), errors


@dataclass(frozen=True)
class Answered:
    """The good lines of a batch with each line's decision (its number in the engine's list of decisions),
    and the texts of those decisions: all a batch's output table is made of."""

    enc: Encoded
    answers: np.ndarray
    columns: dict[str, tuple[np.ndarray, pa.Array]]
    release: str
    policy_hash: str

    def _column(self, name: str) -> pa.Array:
        codes, values = self.columns[name]
        indices = codes[self.answers]
        if values.null_count:  # a period or modality that is None: a null row
            nulls = values.is_null().to_numpy(zero_copy_only=False)[indices]
            return pa.DictionaryArray.from_arrays(pa.array(indices, mask=nulls), values.fill_null(""))
        return pa.DictionaryArray.from_arrays(pa.array(indices), values)

    def table(self) -> pa.Table:
        """The output rows, in the order of the lines."""
        enc = self.enc
        n = enc.rows
        if not n:
            return _empty_decisions()
        code, date = enc.fields["code"], enc.fields["date"]
        days = pa.array([d if d is not None else 0 for d in date.values], pa.int32())
        return pa.table({
            "line": pa.array(enc.numbers, pa.int64()),
            "line_id": _plain(enc.free["line_id"]),
            "claim_id": _plain(enc.free["claim_id"]),
            "code": pa.DictionaryArray.from_arrays(pa.array(code.idx.astype(np.int32)),
                                                   pa.array([c or "" for c in code.values], pa.string())),
            "date": days.take(pa.array(date.idx)).cast(pa.date32()),
            "outcome": self._column("outcome"),
            "reasons": self._column("reasons"),
            "period": self._column("period"),
            "modality": self._column("modality"),
            "release": _constant(self.release, n),
            "policy_hash": _constant(self.policy_hash, n),
        }, schema=_OUTPUT_SCHEMA)


OUTCOME_VALUES = pa.array(OUTCOMES, pa.string())


def _one(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _dict(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Low-cardinality text as a dictionary array: Parquet and Arrow keep it that way at no cost."""
    arr = _one(col)
    if pa.types.is_dictionary(arr.type):
        return arr if arr.type == TEXT_DICT else arr.cast(TEXT_DICT)
    return pc.dictionary_encode(arr).cast(TEXT_DICT)


def _plain(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = _one(col)
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _constant(text: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()).fill_null(0), pa.array([text]))


_OUTPUT_SCHEMA = pa.schema([("line", pa.int64()), ("line_id", pa.string()), ("claim_id", pa.string()),
                            ("code", TEXT_DICT), ("date", pa.date32()),
                            *((name, TEXT_DICT) for name in ("outcome", "reasons", "period", "modality", "release",
                                                             "policy_hash"))])


def _empty_decisions() -> pa.Table:
    return _OUTPUT_SCHEMA.empty_table()


# --- the run ---

@dataclass
class Summary:
    read: int = 0
    decided: int = 0
    errors: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    denied_by_reason: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    # the header's (or Parquet schema's) problem that every line of the file fails by, said once
    header: LineError | None = None

    def add(self, decisions: pa.Table, n_errors: int) -> None:
        self.decided += decisions.num_rows
        self.errors += n_errors
        self.read += decisions.num_rows + n_errors
        if decisions.num_rows == 0:
            return
        # counted on the dictionary indices (one bincount over the rows), never on the rows' text; a null
        # (which the engine never writes) would count under the index one past the values, and is not kept
        outcome, reasons = _dict(decisions["outcome"]), _dict(decisions["reasons"])
        outcomes, texts = outcome.dictionary.to_pylist(), reasons.dictionary.to_pylist()
        o_idx = indices_of(outcome.indices, len(outcomes))
        for name, count in zip(outcomes, np.bincount(o_idx, minlength=len(outcomes)).tolist(), strict=False):
            if count:
                self.outcomes[name] += count
        if "not_payable" not in outcomes:
            return
        denied = indices_of(reasons.indices, len(texts))[o_idx == outcomes.index("not_payable")]
        for text, count in zip(texts, np.bincount(denied, minlength=len(texts)).tolist(), strict=False):
            if count:
                for code in text.split(" "):
                    self.denied_by_reason[code] += count

    def as_dict(self) -> dict[str, Any]:
        return {"lines_read": self.read, "decided": self.decided, "payable": self.outcomes["payable"],
                "not_payable": self.outcomes["not_payable"], "undetermined": self.outcomes["undetermined"],
                "not_telehealth": self.outcomes["not_telehealth"],
                "denied_by_reason": dict(self.denied_by_reason.most_common()), "errors": self.errors,
                "elapsed_s": round(self.elapsed, 3),
                "lines_per_s": round(self.read / self.elapsed) if self.elapsed > 0 else None}

    def render(self) -> str:
        d = self.as_dict()
        out = [f"lines read     {d['lines_read']:>14,}",
               f"decided        {d['decided']:>14,}",
               f"  payable      {d['payable']:>14,}",
               f"  not payable  {d['not_payable']:>14,}",
               f"  undetermined {d['undetermined']:>14,}",
               f"  not telehealth {d['not_telehealth']:>12,}",
               f"errors         {d['errors']:>14,}"]
        if self.denied_by_reason:
            out.append("denied by reason (a line may have several):")
            out.extend(f"  {code:<30} {n:>12,}" for code, n in self.denied_by_reason.most_common())
        rate = f"{d['lines_per_s']:,}" if d["lines_per_s"] is not None else "-"
        out.append(f"elapsed        {self.elapsed:>13.2f}s  ({rate} lines/s)")
        return "\n".join(out)


def _errors_table(errors: list[LineError]) -> pa.Table:
    return pa.table({"line": pa.array([e.line for e in errors], pa.int64()),
                     "field": pa.array([e.field for e in errors], pa.string()),
                     "error": pa.array([e.message for e in errors], pa.string())}, schema=ERROR_SCHEMA)


def default_errors_path(output: Path) -> Path:
    """Where a run writing ``output`` writes its errors when not told (``formats.errors_path_for``)."""
    return formats.errors_path_for(output)


def run(
    input_path: str | Path,
    output: str | Path | None,
    *,
    policy: Policy,
    release: str | None = None,
    errors_path: str | Path | None = None,
    input_fmt: str | None = None,
    output_fmt: str | None = None,
    progress: Progress | None = None,
    threads: int | None = None,
    stream: IO[str] | None = None,
    errors_stream: IO[str] | None = None,
) -> Summary:
    """Decide every line of ``input_path`` into ``output`` (or ``stream`` as JSON Lines when output is None).

    Malformed lines go to ``errors_path`` (default: beside ``output``), or to ``errors_stream`` (default:
    standard error) when there is no output file. Raises ``InputError`` when the input cannot be read, and
    ``formats.FormatError`` (before anything is written) when an output would overwrite the input or each
    other. Each output file is written under a temporary name and renamed when whole: a failed run leaves
    none behind.
    """
    _check_run_arguments(policy=policy, progress=progress, threads=threads, stream=stream,
                         errors_stream=errors_stream)
    try:
        return _run(input_path, output, policy=policy, release=release, errors_path=errors_path,
                    input_fmt=input_fmt, output_fmt=output_fmt, progress=progress, threads=threads,
                    stream=stream, errors_stream=errors_stream)
    except pa.ArrowException as err:
        raise InputError(str(err)) from None


def _check_run_arguments(*, policy: Any, progress: Any, threads: Any, stream: Any, errors_stream: Any) -> None:
    """Name the wrong argument of ``run`` rather than fail deep inside a pipeline thread."""
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a Policy (load_policy()), not {type(policy).__name__}")
    if progress is not None and not all(callable(getattr(progress, m, None)) for m in ("start", "advance", "close")):
        raise TypeError(f"progress must have start, advance and close methods (or be None), not "
                        f"{type(progress).__name__}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a whole number of at least 1 (or None), not {threads!r}")
    for name, value in (("stream", stream), ("errors_stream", errors_stream)):
        if value is not None and not callable(getattr(value, "write", None)):
            raise TypeError(f"{name} must be a text stream (or None), not {type(value).__name__}")


_END = object()


def _taken(q: queue.Queue[Any], stop: threading.Event) -> Iterator[Any]:
    """The items put on ``q`` until its end marker, or until another thread of the pipeline stops it."""
    while not stop.is_set():
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            continue
        if item is _END:
            return
        yield item


def pipeline(items: Iterator[S], decide: Callable[[S], T], write: Callable[[T], None]) -> None:
    """Read, decide and write in three threads, in order, one batch apart (the reader thread is the one that
    draws ``items``).

    pyarrow reads and writes files in C++ without the GIL, so reading the next batch and writing the last
    one overlap deciding this one (on a machine of two cores, the run takes about as long as its slowest
    stage). Each queue holds one batch, so memory stays a few batches whatever the input's size. An error
    in any stage stops the others and is raised here.
    """
    read_q: queue.Queue[object] = queue.Queue(maxsize=1)
    write_q: queue.Queue[object] = queue.Queue(maxsize=1)
    failed: list[BaseException] = []
    stop = threading.Event()

    def put(q: queue.Queue[object], item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in items:
                if not put(read_q, item):
                    return
        except BaseException as exc:
            failed.append(exc)
            stop.set()
        put(read_q, _END)

    def writer() -> None:
        try:
            for item in _taken(write_q, stop):
                write(item)
        except BaseException as exc:
            failed.append(exc)
            stop.set()

    threads = [threading.Thread(target=reader, name="cmap-read", daemon=True),
               threading.Thread(target=writer, name="cmap-write", daemon=True)]
    for t in threads:
        t.start()
    try:
        for item in _taken(read_q, stop):
            if not put(write_q, decide(item)):
                break
    except BaseException:
        stop.set()
        raise
    finally:
        if not stop.is_set():
            write_q.put(_END)
            threads[1].join()
        stop.set()
        while True:  # let a reader blocked on a full queue see the stop
            try:
                read_q.get_nowait()
            except queue.Empty:
                break
        for t in threads:
            t.join()
    if failed:
        raise failed[0]


class Progress(Protocol):
    """What a caller may watch a run with (the command line draws a bar on terminals)."""

    def start(self, total: int, unit: str) -> None: ...

    def advance(self, amount: int, lines: int) -> None: ...

    def close(self) -> None: ...


def _run(input_path: str | Path, output: str | Path | None, *, policy: Policy, release: str | None,
         errors_path: str | Path | None, input_fmt: str | None, output_fmt: str | None, progress: Progress | None,
         threads: int | None, stream: IO[str] | None, errors_stream: IO[str] | None) -> Summary:
    started = time.perf_counter()
    src = Path(input_path)
    fmt = formats.of_file(src, input_fmt) or "jsonl"  # an empty file of no known suffix: no lines
    out_path = Path(output) if output is not None else None
    ofmt = output_fmt or (formats.output_of(out_path) if out_path is not None else "jsonl")
    if ofmt is None or ofmt not in formats.OUTPUTS:
        raise formats.FormatError(f"cannot tell the output format of {out_path}: name it "
                                  f"{', '.join(formats.SUFFIX_OF[f] for f in formats.OUTPUTS)}")
    err_path = Path(errors_path) if errors_path is not None else (
        default_errors_path(out_path) if out_path is not None else None)
    formats.refuse_overlap({"the input": src}, {"the output": out_path, "the errors file": err_path})
    engine = Engine(policy, release, threads)
    total, batches = read_batches(src, fmt, policy)
    summary = Summary()
    out_tmp = formats.temporary_beside(out_path) if out_path is not None else None
    err_tmp = formats.temporary_beside(err_path) if err_path is not None else None
    out = writer_for(out_tmp, ofmt, _OUTPUT_SCHEMA, stream)
    try:
        err_out: Writer = JsonlWriter(err_tmp, ERROR_SCHEMA, None if err_tmp is not None else (
            errors_stream or sys.stderr))
    except BaseException:
        out.abandon()
        raise
    bar = progress
    if bar is not None:
        bar.start(total, "bytes" if fmt in ("csv", "jsonl", "json", "x12") else "lines")

    # Three stages, each in its own thread (``pipeline``): the reader reads and checks a batch, the decider
    # finds each line's decision, the writer makes the output table, counts it and writes it. The checks
    # and the output table are per-row Arrow and numpy work, so they are put beside the file's reading and
    # writing, and each stage costs about the same.
    def check(batch: Batch) -> tuple[Encoded | None, pa.Table, int]:
        if batch.header is not None:
            summary.header = batch.header.error
        enc, errors = engine.check_batch(batch)
        return enc, errors, batch.progress

    def decide(checked: tuple[Encoded | None, pa.Table, int]) -> tuple[Answered | None, pa.Table, int]:
        enc, errors, progressed = checked
        return (engine.answer(enc) if enc is not None else None), errors, progressed

    def write(done: tuple[Answered | None, pa.Table, int]) -> None:
        answered, errors, progressed = done
        decisions = answered.table() if answered is not None else _empty_decisions()
        summary.add(decisions, errors.num_rows)
        if bar is not None:
            bar.advance(progressed, summary.read)
        if decisions.num_rows:
            out.write(decisions)
        if errors.num_rows:
            err_out.write(errors)

    try:
        if threads == 1:
            for batch in batches:
                write(decide(check(batch)))
        else:
            pipeline((check(batch) for batch in batches), decide, write)
    except BaseException:
        out.abandon()
        err_out.abandon()
        raise
    finally:
        if bar is not None:
            bar.close()
    out.close()
    err_out.close()
    for tmp, final in ((out_tmp, out_path), (err_tmp, err_path)):
        if tmp is not None and final is not None:
            os.replace(tmp, final)
    summary.elapsed = time.perf_counter() - started
    return summary
