"""The batch engine: decide files of millions of claim lines on DuckDB, embedded.

A file is read in batches (pyarrow: Parquet row groups, CSV byte blocks, JSON
Lines chunks), so memory stays flat however large the input is. Each batch is
checked as ``lines.parse_line`` checks a line -- by the same Python code, run
once per distinct value of each column and spread back to the rows with Arrow
dictionary arrays (``normalize``) -- and then decided by one DuckDB query,
``sqlrules.decision_sql`` over the policy compiled to small tables
(``Engine.decide_lines``). Lines that fail a check go to the errors output
with their line number, field and reason; every other line is decided; so
lines in = decisions out + errors out.

Why this shape: DuckDB scans Arrow batches without copying and runs the
set-based query on every core; pyarrow reads and writes Parquet and CSV in C++.
Python touches batches and distinct values, never lines (except JSON Lines and
X12 input, whose values are typed per line: ``lines.parse_line`` checks those
one by one). DuckDB answers in numbers (the compact form of the query) and the
text of each distinct answer is made once. DuckDB and pyarrow are imported
here only, so the one-line path never loads them.

Line numbers: Parquet rows count from 1; CSV lines count records from the
header (line 1), which are the file's line numbers unless it has blank lines
or quoted line breaks; JSON Lines and X12 keep the interpreter's numbers (the
physical line, the segment position).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import LineError
from .lines import (
    ALIASES,
    CLAIM_TYPES,
    CODE_RE,
    FIELDS,
    POS_RE,
    RCC_RE,
    _bool,
    _int,
    _modifiers,
    _text,
    parse_date,
    read_jsonl,
)
from .model import ClaimLine, Policy
from .sqlrules import EPOCH, LINE_COLUMNS, PolicyTables, compile_tables, decision_sql, decode_reasons

BATCH_ROWS = 1_000_000
CSV_BLOCK_BYTES = 32 << 20
WS = " \t\n\r\x0b\x0c"  # what str.strip() removes from the text a claim line can hold, short of Unicode spaces
INPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet",
                 ".837": "x12", ".x12": "x12", ".edi": "x12"}
OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
ERROR_SCHEMA = pa.schema([("line", pa.int64()), ("field", pa.string()), ("error", pa.string())])
_ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_()}


def input_format(path: str | Path) -> str | None:
    """The batch format of ``path`` by extension, or x12 when a .txt file starts with an ISA header."""
    p = Path(path)
    fmt = INPUT_FORMATS.get(p.suffix.lower())
    if fmt is None and p.suffix.lower() == ".txt":
        from .x12 import looks_like_x12

        fmt = "x12" if looks_like_x12(p) else None
    return fmt


# --- the policy in DuckDB ---

def _arrow_table(columns: tuple[tuple[str, str], ...], rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return pa.table({name: pa.array(list(vals), type=_ARROW_TYPES[typ])
                     for (name, typ), vals in zip(columns, cols, strict=True)})


class Engine:
    """One DuckDB connection holding the policy tables of one release, deciding Arrow batches."""

    def __init__(self, policy: Policy, release: str | None = None, threads: int | None = None) -> None:
        self.policy = policy
        self.tables: PolicyTables = compile_tables(policy, release)
        self.con = duckdb.connect(config={"threads": threads} if threads else {})
        self.con.execute("SET enable_progress_bar = false")  # the engine draws its own, on terminals only
        for t in self.tables.tables.values():
            self.con.register(f"_{t.name}", _arrow_table(t.columns, t.rows))
            self.con.execute(f"CREATE TABLE {t.name} AS SELECT * FROM _{t.name}")
            self.con.unregister(f"_{t.name}")
        self._decide = decision_sql(self.tables, "batch_lines", extra=("_row",), compact=True)
        # lookups from the compact answer to text: segment row -> period id, modality bit -> modality
        segs = self.tables.tables["segments"]
        at = [c for c, _ in segs.columns].index("period_id")
        ids = [row[at] for row in segs.rows]
        self._periods = pa.array([i or "" for i in ids], pa.string())
        self._period_index = pa.array([None] + [i if ids[i] is not None else None for i in range(len(ids))],
                                      pa.int32())
        bits = self.tables.modality_bits
        self._modalities = pa.array(list(bits), pa.string())
        index: list[int | None] = [None] * (max(bits.values(), default=0) + 1)
        for i, bit in enumerate(bits.values()):
            index[bit] = i
        self._modality_index = pa.array(index, pa.int32())

    @property
    def release(self) -> str:
        return self.tables.release

    def decide_lines(self, lines: pa.Table) -> pa.Table:
        """Decide a table with ``sqlrules.LINE_COLUMNS``: the output rows, in the same order."""
        n = lines.num_rows
        rows = pa.array(np.arange(n, dtype=np.int32))
        self.con.register("batch_lines", lines.append_column("_row", rows))
        try:
            # DuckDB returns numbers only (the compact form of the same query); the text is made once per
            # distinct value below, and the line's own columns come from the Arrow batch without a copy
            got = self.con.sql(self._decide).to_arrow_table()
        finally:
            self.con.unregister("batch_lines")
        # a parallel hash join does not keep the input order: put each answer back at its row
        at = got["_row"].to_numpy()
        key = np.empty(n, np.int64)
        key[at] = got["reason_key"].to_numpy()
        seg = np.empty(n, np.int32)
        seg[at] = got["seg_no"].fill_null(-1).to_numpy()
        mbit = np.empty(n, np.int32)
        mbit[at] = got["mbit"].to_numpy()
        keys = pc.dictionary_encode(pa.array(key))
        decoded = [decode_reasons(k) for k in keys.dictionary.to_pylist()]
        outcome_of = pa.array([OUTCOMES.index(o) for o, _ in decoded], pa.int32())
        return pa.table({
            "line": lines["line_no"],
            "line_id": _plain(lines["line_id"]),
            "claim_id": _plain(lines["claim_id"]),
            "code": _dict(lines["code"]),
            "date": lines["day"].cast(pa.int32()).cast(pa.date32()),
            "outcome": pa.DictionaryArray.from_arrays(outcome_of.take(keys.indices), OUTCOME_VALUES),
            "reasons": pa.DictionaryArray.from_arrays(keys.indices.cast(pa.int32()),
                                                      pa.array([r for _, r in decoded], pa.string())),
            "period": pa.DictionaryArray.from_arrays(self._period_index.take(pa.array(seg + 1)), self._periods),
            "modality": pa.DictionaryArray.from_arrays(self._modality_index.take(pa.array(mbit)), self._modalities),
            "release": _constant(self.tables.release, n),
            "policy_hash": _constant(self.tables.policy_hash, n),
        }, schema=_OUTPUT_SCHEMA)

    def decide_raw(self, raw: pa.Table, line_numbers: pa.Array) -> tuple[pa.Table, pa.Table]:
        """(decisions, errors) for a batch of raw columns as read from a file, with each row's line number."""
        lines, errors = normalize(raw, line_numbers, tuple(self.policy.program.modalities))
        decisions = self.decide_lines(lines) if lines.num_rows else _empty_decisions()
        return decisions, errors


DICT = pa.dictionary(pa.int32(), pa.string())
OUTCOMES = ("payable", "not_payable", "not_telehealth")
OUTCOME_VALUES = pa.array(OUTCOMES, pa.string())


def _one(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _dict(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Low-cardinality text as a dictionary array: Parquet and Arrow keep it that way at no cost."""
    arr = _one(col)
    if pa.types.is_dictionary(arr.type):
        return arr if arr.type == DICT else arr.cast(DICT)
    return pc.dictionary_encode(arr).cast(DICT)


def _plain(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = _one(col)
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _constant(text: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()).fill_null(0), pa.array([text]))


_OUTPUT_SCHEMA = pa.schema([("line", pa.int64()), ("line_id", pa.string()), ("claim_id", pa.string()),
                            ("code", DICT), ("date", pa.date32()), ("outcome", DICT), ("reasons", DICT),
                            ("period", DICT), ("modality", DICT), ("release", DICT), ("policy_hash", DICT)])


def _empty_decisions() -> pa.Table:
    return _OUTPUT_SCHEMA.empty_table()


# --- the checks of lines.parse_line, once per distinct value of a column ---
#
# A column of a batch has few distinct values (codes, dates, modifiers, places of
# service), so each field is checked by the same Python code as parse_line, once
# per distinct value, and the results are spread back to the rows with an Arrow
# take. The checks stay exactly those of the reference, and cost next to nothing.

MISSING = "missing: every line needs a procedure code and a date of service"
FREE_TEXT = ("provider_type", "line_id", "claim_id")
# (field, stage) in the order parse_line meets them: the first failing one names the line's error
PRECEDENCE = (("code", 0), ("date", 0), ("code", 1), ("claim_type", 1), ("pos", 1), ("rcc", 1), ("modality", 1),
              ("date", 1), ("modifiers", 1), ("member_age", 1), ("provider_type", 1), ("units", 1),
              ("established_patient", 1), ("line_id", 1), ("claim_id", 1))
OUTPUTS: dict[str, tuple[tuple[str, pa.DataType], ...]] = {
    "code": (("code", pa.string()),),
    "date": (("day", pa.int32()),),
    "modifiers": tuple((f"mod{i}", pa.string()) for i in range(1, 5)),
    "pos": (("pos", pa.string()),),
    "claim_type": (("claim_type", pa.string()),),
    "rcc": (("rcc", pa.string()),),
    "modality": (("modality", pa.string()),),
    "member_age": (("member_age", pa.int32()),),
    "units": (("units", pa.int32()),),
    "established_patient": (("established_patient", pa.bool_()),),
}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_value(name: str, value: Any, modalities: Collection[str]) -> tuple[tuple[Any, ...], str | None, int]:
    """(normalized outputs, error message or None, stage) for one value of field ``name``, as parse_line has it."""
    blank = _blank(value)
    try:
        if name in ("code", "date") and blank:
            return (None,), MISSING, 0
        if name == "claim_type":
            ct = "professional" if blank else _text(value, name).lower()
            if ct not in CLAIM_TYPES:
                raise LineError(f"{ct!r} is not a claim type (professional or institutional)", field=name)
            return (ct,), None, 1
        if blank:
            return tuple(None for _ in OUTPUTS[name]), None, 1
        if name == "code":
            code = _text(value, name).upper()
            if not CODE_RE.match(code):
                raise LineError(f"{code!r} is not a procedure code (five characters: a CPT code such as 90834 or "
                                "a HCPCS code such as T1016)", field=name)
            return (code,), None, 1
        if name == "date":
            day = value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else parse_date(value)
            return ((day - EPOCH).days,), None, 1
        if name == "modifiers":
            mods = _modifiers(value)
            return (*mods, *([None] * (4 - len(mods)))), None, 1
        if name == "pos":
            pos = _text(value, name)
            pos = pos.zfill(2) if pos.isdigit() and len(pos) == 1 else pos
            if not POS_RE.match(pos):
                raise LineError(f"{pos!r} is not a place of service (two digits, such as 02, 10 or 11)", field=name)
            return (pos,), None, 1
        if name == "rcc":
            rcc = _text(value, name)
            rcc = rcc.zfill(4) if rcc.isdigit() and len(rcc) == 3 else rcc
            if not RCC_RE.match(rcc):
                raise LineError(f"{rcc!r} is not a revenue center code (four digits, such as 0900)", field=name)
            return (rcc,), None, 1
        if name == "modality":
            modality = _text(value, name).lower()
            if modality not in modalities:
                raise LineError(f"unknown modality {modality!r} (known: {', '.join(modalities)})", field=name)
            return (modality,), None, 1
        if name == "member_age":
            return (_int(value, name, 0, 130),), None, 1
        if name == "units":
            return (_int(value, name, 0, 100_000),), None, 1
        if name == "established_patient":
            return (_bool(value, name),), None, 1
        return (_text(value, name),), None, 1
    except LineError as err:
        return tuple(None for _ in OUTPUTS.get(name, ((name, None),))), err.message, 1


def _as_values(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Lists of modifiers as one string per line (parse_line splits strings on spaces, commas and the like)."""
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        return pc.binary_join(col, " ")
    return col


def _spread(name: str, col: pa.ChunkedArray, modalities: Collection[str]) -> tuple[list[pa.Array], pa.Array]:
    """Check each distinct value of ``col`` once: (output arrays, error array) row by row."""
    col = _as_values(col)
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    values = arr.dictionary.to_pylist()
    results = [check_value(name, v, modalities) for v in values]
    results.append(check_value(name, None, modalities))  # for null rows
    indices = pc.fill_null(arr.indices, len(values)).cast(pa.int32())
    outs = [pa.array([r[0][i] for r in results], type=typ) for i, (_, typ) in enumerate(OUTPUTS[name])]
    errs = pa.array([r[1] for r in results], pa.string())
    errors = errs.take(indices) if errs.null_count < len(errs) else pa.nulls(len(indices), pa.string())
    return [_by_index(o, indices) for o in outs], errors


def _by_index(values: pa.Array, indices: pa.Array) -> pa.Array:
    """``values`` spread to rows: a dictionary array for text (no copy), a take for numbers."""
    if not pa.types.is_string(values.type):
        return values.take(indices)
    if values.null_count:
        indices = pc.if_else(pc.is_valid(values).take(indices), indices, pa.scalar(None, pa.int32()))
        values = values.fill_null("")
    return pa.DictionaryArray.from_arrays(indices, values)


def _free_text(col: pa.ChunkedArray) -> pa.Array:
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _combine(cols: list[pa.ChunkedArray]) -> pa.ChunkedArray:
    """One field given by several columns (a name and its alias): the last non-blank value wins, as in parse_line."""
    texts = [_free_text(c.cast(pa.string()) if not pa.types.is_dictionary(c.type) else c) for c in cols]
    return pa.chunked_array([pc.coalesce(*reversed(texts))])


def normalize(raw: pa.Table, line_numbers: pa.Array, modalities: Collection[str]) -> tuple[pa.Table, pa.Table]:
    """(lines with sqlrules.LINE_COLUMNS, errors) for a batch of columns as read from a file."""
    n = raw.num_rows
    numbers = line_numbers.cast(pa.int64())
    sources: dict[str, list[pa.ChunkedArray]] = {}
    for name_raw, col in zip(raw.column_names, raw.columns, strict=True):
        name = ALIASES.get(name_raw.strip().lower(), name_raw.strip().lower())
        if name not in FIELDS:  # parse_line fails every line on an unknown field
            message = f"unknown field (known: {', '.join(FIELDS)})"
            return _empty_lines(), pa.table({"line": numbers, "field": pa.array([name_raw] * n, pa.string()),
                                             "error": pa.array([message] * n, pa.string())}, schema=ERROR_SCHEMA)
        sources.setdefault(name, []).append(col)
    fields = {name: (cols[0] if len(cols) == 1 else _combine(cols)) for name, cols in sources.items()}
    null = pa.nulls(n, pa.string())
    out: dict[str, pa.Array] = {"line_no": numbers}
    errors: dict[str, pa.Array] = {}
    missing: dict[str, pa.Array] = {}
    for name in OUTPUTS:
        col = fields.get(name, pa.chunked_array([null]))
        arrays, errs = _spread(name, col, modalities)
        for (out_name, _), arr in zip(OUTPUTS[name], arrays, strict=True):
            out[out_name] = arr
        if name in ("code", "date"):
            is_missing = pc.equal(errs, MISSING)
            missing[name] = pc.if_else(is_missing, errs, null)
            errs = pc.if_else(is_missing, null, errs)
        errors[name] = errs
    for name in FREE_TEXT:
        col = fields.get(name)
        out[name] = _free_text(col) if col is not None else null
    err_msg: pa.Array = null
    err_field: pa.Array = null
    for name, stage in PRECEDENCE:
        e = missing.get(name) if stage == 0 else errors.get(name)
        if e is None or e.null_count == n:
            continue
        take = pc.and_(pc.is_null(err_msg), pc.is_valid(e))
        err_msg = pc.if_else(take, e, err_msg)
        err_field = pc.if_else(take, pa.scalar(name), err_field)
    lines = pa.table({name: _typed(out[name], typ) for name, typ in LINE_COLUMNS})
    if err_msg.null_count == n:
        return lines, ERROR_SCHEMA.empty_table()
    good = pc.is_null(err_msg)
    bad = pc.invert(good)
    errors_table = pa.table({"line": numbers.filter(bad), "field": err_field.filter(bad),
                             "error": err_msg.filter(bad)}, schema=ERROR_SCHEMA)
    return lines.filter(good), errors_table


def _typed(arr: pa.Array, sql_type: str) -> pa.Array:
    target = _ARROW_TYPES[sql_type]
    if pa.types.is_dictionary(arr.type) and target == pa.string():
        return arr
    return arr if arr.type == target else arr.cast(target)


def _empty_lines() -> pa.Table:
    return pa.schema([(name, _ARROW_TYPES[typ]) for name, typ in LINE_COLUMNS]).empty_table()


# --- reading: each reader yields (raw or normalized table, line numbers, errors found while reading) ---

@dataclass
class Batch:
    raw: pa.Table | None = None  # columns as read, to check in SQL
    lines: pa.Table | None = None  # already checked: sqlrules.LINE_COLUMNS
    line_numbers: pa.Array | None = None
    errors: list[LineError] = field(default_factory=list)
    progress: int = 0  # bytes or rows consumed, for the progress bar


def read_parquet(path: Path, batch_rows: int = BATCH_ROWS) -> tuple[int, Iterator[Batch]]:
    schema = pq.read_schema(path)
    # checked text columns come as dictionaries: their distinct values are what the checks need, and the
    # strings are never materialized row by row
    checked = [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
               and ALIASES.get(f.name.strip().lower(), f.name.strip().lower()) in OUTPUTS]
    pf = pq.ParquetFile(path, read_dictionary=checked)
    total = pf.metadata.num_rows

    def gen() -> Iterator[Batch]:
        start = 1
        for rb in pf.iter_batches(batch_size=batch_rows):
            n = rb.num_rows
            yield Batch(raw=pa.Table.from_batches([rb]),
                        line_numbers=pa.array(np.arange(start, start + n, dtype=np.int64)), progress=n)
            start += n
    return total, gen()


def read_csv(path: Path, block_bytes: int = CSV_BLOCK_BYTES) -> tuple[int, Iterator[Batch]]:
    """CSV in byte blocks cut at line ends. Line numbers count records from the header (line 1)."""
    total = path.stat().st_size

    def gen() -> Iterator[Batch]:
        with path.open("rb") as f:
            head = f.readline()
            consumed = len(head)
            if head.startswith(b"\xef\xbb\xbf"):
                head = head[3:]
            if not head.strip():
                return
            import csv

            try:
                header = [h.strip().lower() for h in next(csv.reader([head.decode("utf-8")]))]
            except (UnicodeDecodeError, csv.Error, StopIteration):
                yield Batch(errors=[LineError("the header is not a CSV row of UTF-8 column names", line=1)],
                            progress=consumed)
                return
            line = 1  # records read so far, the header included
            rest = b""
            while True:
                chunk = f.read(block_bytes)
                block = rest + chunk
                if not chunk:
                    rest = b""
                elif b"\n" in block:
                    cut = block.rindex(b"\n") + 1
                    block, rest = block[:cut], block[cut:]
                else:
                    rest = block
                    continue
                if block.strip():
                    batch, records = _csv_block(block, header, line)
                    batch.progress = len(chunk) if chunk else len(block)
                    line += records
                    yield batch
                if not chunk:
                    return
    return total, gen()


def _csv_block(block: bytes, header: list[str], before: int) -> tuple[Batch, int]:
    invalid: list[tuple[int, str]] = []

    def handler(row: Any) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    names = [f"c{i}" for i in range(len(header))]
    try:
        block.decode("utf-8")  # pyarrow would stop at a bad byte; the slow path names the line instead
    except UnicodeDecodeError:
        return _csv_block_slow(block, header, before)
    try:
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=len(block) + 1),
            parse_options=pacsv.ParseOptions(invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return _csv_block_slow(block, header, before)
    table = table.rename_columns(header) if len(set(header)) == len(header) else table
    records = table.num_rows + len(invalid)
    bad = {n for n, _ in invalid}
    numbers = np.array([n for n in range(1, records + 1) if n not in bad], dtype=np.int64) if bad else \
        np.arange(1, records + 1, dtype=np.int64)
    errors = [LineError(_count_message(text, header), line=before + n) for n, text in invalid]
    return Batch(raw=table, line_numbers=pa.array(numbers + before), errors=errors), records


def _count_message(text: str, header: list[str]) -> str:
    import csv

    try:
        row = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return "not a valid CSV row"
    return f"{len(row)} values for {len(header)} columns ({', '.join(header)})"


def _csv_block_slow(block: bytes, header: list[str], before: int) -> tuple[Batch, int]:
    """A block pyarrow refused (bad UTF-8, broken quoting): checked line by line, as lines.read_csv does."""
    import csv

    rows: list[list[str]] = []
    numbers: list[int] = []
    errors: list[LineError] = []
    records = 0
    for raw_line in block.splitlines():
        if not raw_line.strip():
            continue
        records += 1
        number = before + records
        try:
            text = raw_line.decode("utf-8")
            row = next(csv.reader([text], strict=True))
        except UnicodeDecodeError as exc:
            errors.append(LineError(f"the line is not UTF-8 text (byte {exc.start})", line=number))
            continue
        except csv.Error as exc:
            errors.append(LineError(f"not a valid CSV row: {exc}", line=number))
            continue
        if len(row) != len(header):
            errors.append(LineError(f"{len(row)} values for {len(header)} columns ({', '.join(header)})",
                                    line=number))
            continue
        rows.append(row)
        numbers.append(number)
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    table = pa.table({h: pa.array(list(c), pa.string()) for h, c in zip(header, cols, strict=True)})
    return Batch(raw=table, line_numbers=pa.array(numbers, pa.int64()), errors=errors), records


def lines_table(items: Iterable[tuple[int, ClaimLine]], policy: Policy) -> pa.Table:
    """Checked claim lines as a table of ``sqlrules.LINE_COLUMNS``."""
    cols: dict[str, list[Any]] = {name: [] for name, _ in LINE_COLUMNS}
    for number, ln in items:
        mods = [*ln.modifiers[:4], None, None, None, None]
        cols["line_no"].append(number)
        cols["line_id"].append(ln.line_id)
        cols["claim_id"].append(ln.claim_id)
        cols["code"].append(ln.code)
        cols["day"].append((ln.date - EPOCH).days)
        for i in range(4):
            cols[f"mod{i + 1}"].append(mods[i])
        cols["pos"].append(ln.pos)
        cols["claim_type"].append(ln.claim_type)
        cols["rcc"].append(ln.rcc)
        cols["modality"].append(ln.modality)
        cols["member_age"].append(ln.member_age)
        cols["provider_type"].append(ln.provider_type)
        cols["units"].append(ln.units)
        cols["established_patient"].append(ln.established_patient)
    return pa.table({name: pa.array(cols[name], type=_ARROW_TYPES[typ]) for name, typ in LINE_COLUMNS})


def _parsed_batches(parsed: Iterator[tuple[int, ClaimLine | LineError]], policy: Policy,
                    progress: Callable[[], int], batch_rows: int) -> Iterator[Batch]:
    good: list[tuple[int, ClaimLine]] = []
    errors: list[LineError] = []
    last = 0

    def flush() -> Batch:
        nonlocal last
        now = progress()
        b = Batch(lines=lines_table(good, policy), errors=list(errors), progress=now - last)
        last = now
        good.clear()
        errors.clear()
        return b

    for number, item in parsed:
        if isinstance(item, LineError):
            errors.append(item if item.line is not None else item.at(number))
        else:
            good.append((number, item))
        if len(good) + len(errors) >= batch_rows:
            yield flush()
    yield flush()


def read_jsonl_batches(path: Path, policy: Policy, batch_rows: int = 200_000) -> tuple[int, Iterator[Batch]]:
    total = path.stat().st_size

    def gen() -> Iterator[Batch]:
        with path.open("rb") as raw:
            stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            yield from _parsed_batches(read_jsonl(stream, policy.program), policy, raw.tell, batch_rows)
    return total, gen()


def read_x12_batches(path: Path, policy: Policy) -> tuple[int, Iterator[Batch]]:
    from .x12 import read_x12

    total = path.stat().st_size

    def gen() -> Iterator[Batch]:
        yield from _parsed_batches(read_x12(path, policy.program), policy, lambda: total, BATCH_ROWS)
    return total, gen()


# --- writing ---

class _Writer:
    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _ParquetWriter(_Writer):
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.w = pq.ParquetWriter(path, schema)

    def write(self, table: pa.Table) -> None:
        self.w.write_table(table)

    def close(self) -> None:
        self.w.close()


class _CsvWriter(_Writer):
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.w = pacsv.CSVWriter(str(path), schema)

    def write(self, table: pa.Table) -> None:
        self.w.write_table(table)

    def close(self) -> None:
        self.w.close()


class _JsonlWriter(_Writer):
    def __init__(self, path: Path | None, schema: pa.Schema, stream: IO[str] | None = None) -> None:
        if stream is None:
            assert path is not None
            stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 -- closed in close()
            self.own = True
        else:
            self.own = False
        self.f = stream
        self.split_reasons = "reasons" in schema.names

    def write(self, table: pa.Table) -> None:
        out = []
        for row in table.to_pylist():
            rec = {k: (v.isoformat() if k == "date" and v is not None else v) for k, v in row.items()}
            if self.split_reasons:
                rec["reasons"] = row["reasons"].split(" ")
            out.append(json.dumps(rec, ensure_ascii=False))
        if out:
            self.f.write("\n".join(out) + "\n")

    def close(self) -> None:
        if self.own:
            self.f.close()
        else:
            self.f.flush()


def _writer(path: Path | None, fmt: str, schema: pa.Schema, stream: IO[str] | None = None) -> _Writer:
    if fmt == "parquet" and path is not None:
        return _ParquetWriter(path, schema)
    if fmt == "csv" and path is not None:
        return _CsvWriter(path, schema)
    return _JsonlWriter(path, schema, stream)


# --- the run ---

@dataclass
class Summary:
    read: int = 0
    decided: int = 0
    errors: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    denied_by_reason: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    def add(self, decisions: pa.Table, n_errors: int) -> None:
        self.decided += decisions.num_rows
        self.errors += n_errors
        self.read += decisions.num_rows + n_errors
        if decisions.num_rows == 0:
            return
        for item in pc.value_counts(decisions["outcome"]).to_pylist():
            self.outcomes[item["values"]] += item["counts"]
        denied = decisions.filter(pc.equal(decisions["outcome"], "not_payable"))["reasons"]
        for item in pc.value_counts(denied).to_pylist():
            for code in item["values"].split(" "):
                self.denied_by_reason[code] += item["counts"]

    def as_dict(self) -> dict[str, Any]:
        return {"lines_read": self.read, "decided": self.decided, "payable": self.outcomes["payable"],
                "not_payable": self.outcomes["not_payable"], "not_telehealth": self.outcomes["not_telehealth"],
                "denied_by_reason": dict(self.denied_by_reason.most_common()), "errors": self.errors,
                "elapsed_s": round(self.elapsed, 3),
                "lines_per_s": round(self.read / self.elapsed) if self.elapsed > 0 else None}

    def render(self) -> str:
        d = self.as_dict()
        out = [f"lines read     {d['lines_read']:>14,}",
               f"decided        {d['decided']:>14,}",
               f"  payable      {d['payable']:>14,}",
               f"  not payable  {d['not_payable']:>14,}",
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
    name = output.name
    for suffix in OUTPUT_FORMATS:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return output.with_name(name + ".errors.jsonl")


def run(
    input_path: str | Path,
    output: str | Path | None,
    *,
    policy: Policy,
    release: str | None = None,
    errors_path: str | Path | None = None,
    input_fmt: str | None = None,
    output_fmt: str | None = None,
    progress: bool | None = None,
    threads: int | None = None,
    stream: IO[str] | None = None,
) -> Summary:
    """Decide every line of ``input_path`` into ``output`` (or ``stream`` as JSON Lines when output is None)."""
    started = time.perf_counter()
    src = Path(input_path)
    fmt = input_fmt or input_format(src)
    if fmt is None:
        raise ValueError(f"cannot tell the format of {src.name}: name it .csv, .jsonl, .parquet or .837")
    out_path = Path(output) if output is not None else None
    ofmt = output_fmt or (OUTPUT_FORMATS.get(out_path.suffix.lower()) if out_path is not None else "jsonl")
    if ofmt is None:
        raise ValueError(f"cannot tell the output format of {out_path}: name it .csv, .jsonl or .parquet")
    err_path = Path(errors_path) if errors_path is not None else (
        default_errors_path(out_path) if out_path is not None else None)
    engine = Engine(policy, release, threads)
    if fmt == "parquet":
        total, batches = read_parquet(src)
    elif fmt == "csv":
        total, batches = read_csv(src)
    elif fmt == "jsonl":
        total, batches = read_jsonl_batches(src, policy)
    elif fmt == "x12":
        total, batches = read_x12_batches(src, policy)
    else:
        raise ValueError(f"unknown input format {fmt!r}")

    summary = Summary()
    out = _writer(out_path, ofmt, _OUTPUT_SCHEMA, stream)
    err_out = _JsonlWriter(err_path, ERROR_SCHEMA, None if err_path is not None else sys.stderr)
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(total, "bytes" if fmt in ("csv", "jsonl", "x12") else "lines") if show else None
    try:
        for batch in batches:
            read_errors = _errors_table(batch.errors)
            if batch.raw is not None and batch.raw.num_rows:
                assert batch.line_numbers is not None
                decisions, errors = engine.decide_raw(batch.raw, batch.line_numbers)
                errors = pa.concat_tables([read_errors, errors]).sort_by("line")
            elif batch.lines is not None and batch.lines.num_rows:
                decisions, errors = engine.decide_lines(batch.lines), read_errors.sort_by("line")
            else:
                decisions, errors = _empty_decisions(), read_errors.sort_by("line")
            if decisions.num_rows:
                out.write(decisions)
            if errors.num_rows:
                err_out.write(errors)
            summary.add(decisions, errors.num_rows)
            if bar is not None:
                bar.advance(batch.progress, summary.read)
    finally:
        out.close()
        err_out.close()
        if bar is not None:
            bar.close()
    summary.elapsed = time.perf_counter() - started
    return summary


class _Progress:
    """A rich progress bar on stderr, for terminals only."""

    def __init__(self, total: int, unit: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.p = Progress(TextColumn("deciding"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                          TextColumn("{task.fields[lines]:,} lines"), TimeElapsedColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True)
        self.task = self.p.add_task("deciding", total=total or None, lines=0)
        self.p.start()

    def advance(self, amount: int, lines: int) -> None:
        self.p.update(self.task, advance=amount, lines=lines)

    def close(self) -> None:
        self.p.stop()


def cli_run(input_file: str, output: str, *, policy: Policy, release: str | None, errors_file: str | None,
            input_format: str | None) -> int:
    """``cmap-policy eval INPUT -o OUTPUT`` on the batch engine: the exit code; the summary goes to stderr."""
    to_stdout = output == "-"
    try:
        summary = run(input_file, None if to_stdout else output, policy=policy, release=release,
                      errors_path=errors_file, input_fmt=input_format, stream=sys.stdout if to_stdout else None)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, pa.ArrowException, duckdb.Error) as err:
        print(f"error: cannot read or write: {err}", file=sys.stderr)
        return 1
    print(summary.render(), file=sys.stderr)
    if summary.errors:
        where = errors_file or (default_errors_path(Path(output)) if not to_stdout else "standard error")
        print(f"{summary.errors:,} line(s) could not be decided (see {where}); every other line was",
              file=sys.stderr)
        return 1
    return 0
