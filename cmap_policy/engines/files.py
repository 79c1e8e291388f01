"""Claim files in, in batches (Parquet row groups, CSV byte blocks, JSON Lines and X12 chunks), and decisions out.

Each reader yields ``Batch`` values: raw columns to check (Parquet, CSV) or lines already
checked by ``lines.parse_line`` (JSON Lines, X12, whose values are typed per line), with
each row's line number and the errors found while reading.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc
import pyarrow.parquet as pq

from ..columnar import arrow_batches
from ..errors import LineError
from ..guard import MAX_LINE_BYTES, byte_source, physical_lines, too_long
from ..lines import (
    CSV_FIELD_LIMIT,
    HeaderProblem,
    canonical_field,
    csv_header,
    csv_line,
    csv_values,
    header_problem,
    quotes_close,
    read_json_document,
    width_error,
)
from ..model import ClaimLine, Policy
from ..x12 import read_x12
from .checks import EPOCH, FIELDS_CHECKED, LINE_COLUMNS, TEXT_DICT

# rows a batch: with the pipeline's five batches in flight (one in each stage, one in each queue), 500,000-row
# batches keep a run under 0.75 GB at any size; 1,000,000-row batches were no faster and passed 1 GB
BATCH_ROWS = 500_000
CSV_PARSE_BYTES = 4 << 20  # the chunks of a block Arrow parses in parallel
MIN_BATCH_ROWS = 65_536  # row groups are put together up to this many rows a batch
CSV_BLOCK_BYTES = 32 << 20


# --- reading: each reader yields (raw or normalized table, line numbers, errors found while reading) ---

@dataclass
class Batch:
    raw: pa.Table | None = None  # columns as read, to check with checks.encode
    lines: pa.Table | None = None  # already checked: checks.LINE_COLUMNS
    line_numbers: pa.Array | None = None
    errors: list[LineError] = field(default_factory=list)
    progress: int = 0  # bytes or rows consumed, for the progress bar
    header: HeaderProblem | None = None  # a CSV header's or Parquet schema's problem, once, in its own batch
    parts: list[tuple[pa.Table, np.ndarray]] = field(default_factory=list)  # more raw columns, with line numbers


def read_parquet(path: Path, batch_rows: int = BATCH_ROWS) -> tuple[int, Iterator[Batch]]:
    """Parquet in batches of whole row groups: small row groups are put together until a batch has at least
    MIN_BATCH_ROWS rows, so that a file of many tiny groups is not decided one batch per group."""
    schema = pq.read_schema(path)
    # checked text columns come as dictionaries: their distinct values are what the checks need, and the
    # strings are never materialized row by row
    checked = [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
               and canonical_field(f.name) in FIELDS_CHECKED]
    # pre_buffer off: with it, pyarrow's reader kept the bytes of every row group it had read until the end of
    # the file (some 5 MB a batch), so 100 M lines ended above 1.5 GB; without it memory stays flat, and
    # reading is faster (measured on 20 M lines: 0.84 s holding nothing, against 1.9 s holding 200 MB)
    pf = pq.ParquetFile(path, read_dictionary=checked, pre_buffer=False)
    total = pf.metadata.num_rows

    problem = header_problem(schema.names, None)

    def gen() -> Iterator[Batch]:
        if problem is not None:
            yield Batch(header=problem)
        start = 1
        pending: list[pa.RecordBatch] = []
        rows = 0

        def flush() -> Batch:
            nonlocal start, rows
            table = pa.Table.from_batches(pending)
            batch = Batch(raw=table, line_numbers=pa.array(np.arange(start, start + rows, dtype=np.int64)),
                          progress=rows)
            start += rows
            pending.clear()
            rows = 0
            return batch

        for rb in pf.iter_batches(batch_size=batch_rows):
            pending.append(rb)
            rows += rb.num_rows
            if rows >= min(MIN_BATCH_ROWS, batch_rows):
                yield flush()
        if pending:
            yield flush()
    return total, gen()


def read_csv(path: Path, block_bytes: int | None = None) -> tuple[int, Iterator[Batch]]:
    """CSV in byte blocks cut at line ends, numbered and read line for line as ``lines.read_csv`` reads them.

    The header is read by ``lines.csv_header``. In each block, Arrow reads the lines it reads exactly as
    ``lines.csv_line`` does: lines with an ASCII character that is not a blank, an even number of quotes
    (so no value spans lines), no carriage return but the one before the line feed, and no longer than one
    value may be. Every other line (blank, an unclosed quote, a stray carriage return, very long, not
    UTF-8) goes through ``lines.csv_line`` itself. So both engines skip, number and read every line alike.
    """
    block_bytes = block_bytes or CSV_BLOCK_BYTES
    total = path.stat().st_size

    def gen() -> Iterator[Batch]:
        with path.open("rb") as f:
            src = byte_source(f)
            header: list[str] | LineError | None = None
            line = 0  # physical lines read so far, the header and any blank lines before it included
            for line, raw in physical_lines(src):
                header = csv_header(raw, line)
                if header is not None:
                    break
            if header is None:
                return
            if isinstance(header, list) and (problem := header_problem(header, line)) is not None:
                yield Batch(header=problem)
            last = 0

            def moved() -> int:  # bytes read since the last batch, for the progress bar
                nonlocal last
                now = f.tell()
                step, last = now - last, now
                return step

            rest = b""
            while True:
                chunk = src.read(block_bytes)
                block = rest + chunk
                if chunk:
                    cut = block.rfind(b"\n") + 1
                    if cut == 0:
                        if len(block) > MAX_LINE_BYTES + 1:  # one line longer than any may be: skip it unread
                            while chunk and not chunk.endswith(b"\n"):
                                chunk = src.readline(MAX_LINE_BYTES)
                            line += 1
                            rest = b""
                            yield Batch(errors=[too_long(line)], progress=moved())
                        else:
                            rest = block
                        continue
                    block, rest = block[:cut], block[cut:]
                elif not block:
                    return
                batch, n = _csv_block(block, header, line)
                batch.progress = moved()
                line += n
                yield batch
                if not chunk:
                    return
    return total, gen()


# bytes that are ASCII and not blank (str.isspace): a line with one of them is not a blank line
_ASCII_INK = np.array([i < 128 and not chr(i).isspace() for i in range(256)])


def _csv_block(block: bytes, header: list[str] | LineError, before: int) -> tuple[Batch, int]:
    """(the batch, the number of physical lines) of a block of whole lines, the first being line before + 1."""
    arr = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(arr == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))  # the last line of the file, without a line feed
    starts = np.concatenate(([0], ends[:-1] + 1))
    n = len(ends)
    numbers = np.arange(before + 1, before + n + 1, dtype=np.int64)
    special = (ends - starts) > CSV_FIELD_LIMIT
    if isinstance(header, LineError):
        special[:] = True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        special[:] = True
    # a line that may be blank: its first byte is a blank or not ASCII (csv_line, which knows, reads it)
    firsts = arr[np.minimum(starts, len(arr) - 1)]
    special |= (ends == starts) | ~_ASCII_INK[firsts]
    if b"\r" in block:  # a carriage return but the one before the line feed: Arrow would end the line there
        crs = np.add.reduceat(arr == 13, starts, dtype=np.int64)
        last = arr[np.maximum(ends - 1, 0)]
        special |= crs > ((last == 13) & (ends > starts))
    rows: list[dict[str, str]] = []
    row_numbers: list[int] = []
    errors: list[LineError] = []
    names = header if isinstance(header, list) else []
    tables: list[pa.Table] = []
    kept_numbers: list[np.ndarray] = []
    plain = ~special
    if plain.any() and names:
        arrow = _arrow_lines(block, arr, starts, ends, plain, names, numbers)
        if arrow is None:  # a quoted value Arrow would carry on to the next line: csv_line reads that line
            plain &= _quotes_close(block, starts, ends)
            arrow = _arrow_lines(block, arr, starts, ends, plain, names, numbers)
        if arrow is None:
            plain[:] = False
        else:
            table, kept, width_errors = arrow
            tables.append(table)
            kept_numbers.append(kept)
            errors.extend(width_errors)
    for i in np.flatnonzero(~plain):
        number = int(numbers[i])
        raw = block[starts[i]:ends[i] + 1]
        item = csv_line(raw if ends[i] - starts[i] <= MAX_LINE_BYTES else None, number, header)
        if isinstance(item, LineError):
            errors.append(item)
        elif item is not None:
            rows.append(item)
            row_numbers.append(number)
    if not names:
        return Batch(errors=errors), n
    if rows:
        read_one_by_one = pa.table({h: pa.array([r[h] for r in rows], pa.string()) for h in names})
        tables.append(read_one_by_one.cast(tables[0].schema) if tables else read_one_by_one)
        kept_numbers.append(np.array(row_numbers, dtype=np.int64))
    if len(tables) == 1 and not rows:
        return Batch(raw=tables[0], line_numbers=pa.array(kept_numbers[0]), errors=errors), n
    if not tables:
        return Batch(errors=errors), n
    table = pa.concat_tables(tables)
    order = np.concatenate(kept_numbers)
    by_line = np.argsort(order, kind="stable")  # the output keeps the lines' order
    return Batch(raw=table.take(pa.array(by_line)), line_numbers=pa.array(order[by_line]), errors=errors), n


def _quotes_close(block: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per line: whether its quoted values close on it (``lines.quotes_close``, line by line: the slow check,
    run only on a block where Arrow found a value running on past its line)."""
    closed = np.ones(len(starts), dtype=bool)
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        line = block[a:b]
        if b'"' in line:
            closed[i] = quotes_close(line.decode("utf-8", "replace"))
    return closed


def _arrow_lines(block: bytes, arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, plain: np.ndarray,
                 names: list[str], numbers: np.ndarray) -> tuple[pa.Table, np.ndarray, list[LineError]] | None:
    """The ``plain`` lines read by Arrow, or None if Arrow read them otherwise than line by line: fewer rows
    than lines (a quoted value carried on to the next line), or a last line whose quote does not close."""
    if not plain.any():
        return pa.table({h: pa.array([], pa.string()) for h in names}), np.array([], np.int64), []
    if plain.all():
        data = block
    else:
        keep = np.repeat(plain, np.diff(np.append(starts, len(arr))))
        data = arr[keep].tobytes()
    last = int(np.flatnonzero(plain)[-1])
    if not quotes_close(block[starts[last]:ends[last]].decode("utf-8", "replace")):
        return None
    try:
        table, kept, width_errors, rows = _arrow_rows(data, names, numbers[plain])
    except pa.ArrowInvalid:
        return None
    return (table, kept, width_errors) if rows == int(plain.sum()) else None


def _arrow_rows(block: bytes, header: list[str], numbers: np.ndarray) -> tuple[pa.Table, np.ndarray,
                                                                                  list[LineError], int]:
    """Lines read by Arrow: (the table, the numbers of its rows, errors of rows of the wrong width, the rows
    Arrow saw in all). ``numbers`` holds each line's number, in order."""
    invalid: list[tuple[int, str]] = []

    def handler(row: Any) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    names = [f"c{i}" for i in range(len(header))]
    # the checked fields' columns as dictionaries, encoded by Arrow as it converts each chunk (on both cores):
    # the checks want each column's distinct values, and hashing the text after the read cost the reader
    # thread more than parsing it
    types = {name: TEXT_DICT if canonical_field(h) in FIELDS_CHECKED else pa.string()
             for name, h in zip(names, header, strict=True)}

    def read(threads: bool) -> pa.Table:
        # Arrow parses a block's chunks in parallel, but then cannot number the rows it skips, so a block with
        # a row of the wrong width (rare) is read again on one thread, where it can
        return pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=threads,
                                           block_size=CSV_PARSE_BYTES if threads else len(block) + 1),
            parse_options=pacsv.ParseOptions(invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        ).rename_columns(header)

    table = read(True)
    if invalid:
        invalid.clear()
        table = read(False)
    seen = table.num_rows + len(invalid)
    if not invalid or seen != len(numbers):
        return table, numbers, [], seen
    bad = np.array([n - 1 for n, _ in invalid], dtype=np.int64)  # Arrow counts the rows it was given from 1
    errors = []
    for (_, text), at in zip(invalid, bad, strict=True):
        values = csv_values(text)
        message = values if isinstance(values, str) else width_error(len(values), header)
        errors.append(LineError(message, line=int(numbers[at])))
    return table, np.delete(numbers, bad), errors, seen


def lines_table(items: Iterable[tuple[int, ClaimLine]]) -> pa.Table:
    """Checked claim lines as a table of ``checks.LINE_COLUMNS``."""
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
    return pa.table({name: pa.array(cols[name], type=typ) for name, typ in LINE_COLUMNS})


def _parsed_batches(parsed: Iterator[tuple[int, ClaimLine | LineError]], policy: Policy,
                    progress: Callable[[], int], batch_rows: int) -> Iterator[Batch]:
    good: list[tuple[int, ClaimLine]] = []
    errors: list[LineError] = []
    last = 0

    def flush() -> Batch:
        nonlocal last
        now = progress()
        b = Batch(lines=lines_table(good), errors=list(errors), progress=now - last)
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


def read_x12_batches(path: Path, policy: Policy) -> tuple[int, Iterator[Batch]]:
    total = path.stat().st_size

    def gen() -> Iterator[Batch]:
        yield from _parsed_batches(read_x12(path, policy.program), policy, lambda: total, BATCH_ROWS)
    return total, gen()


def read_json_batches(path: Path, policy: Policy) -> tuple[int, Iterator[Batch]]:
    """A JSON document (an array of lines) in batches, read as the interpreter reads it (one document is at
    most ``lines.MAX_DOCUMENT_BYTES``: its lines are typed one by one, and few)."""
    total = path.stat().st_size

    def gen() -> Iterator[Batch]:
        with path.open("rb") as f:
            yield from _parsed_batches(read_json_document(f, policy.program), policy, lambda: total, BATCH_ROWS)
    return total, gen()


def read_arrow(path: Path, policy: Policy, batch_rows: int = BATCH_ROWS) -> tuple[int, Iterator[Batch]]:
    """An Arrow IPC file or stream (``.arrow``, ``.feather``) in batches of raw columns, checked as Parquet's are.
    (A stream does not say how many rows it holds: the progress bar counts lines with no total.)"""
    total = 0

    def gen() -> Iterator[Batch]:
        start = 1
        problem_said = False
        for rb in arrow_batches(path, "arrow", batch_rows):
            if not problem_said:
                problem_said = True
                problem = header_problem(rb.schema.names, None)
                if problem is not None:
                    yield Batch(header=problem)
            n = rb.num_rows
            yield Batch(raw=pa.Table.from_batches([rb]),
                        line_numbers=pa.array(np.arange(start, start + n, dtype=np.int64)), progress=n)
            start += n
    return total, gen()


# --- writing ---

class Writer:
    path: Path | None = None

    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abandon(self) -> None:
        """Close after a failure, and remove the file (a half-written output is never left behind)."""
        with contextlib.suppress(Exception):  # closing a half-written file may fail too; the file goes either way
            self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class ParquetWriter(Writer):
    """Parquet with the settings that make writing decisions cheap: dictionary pages only for the columns
    that are dictionaries already (Arrow hands them over as they are), delta encoding for the line numbers
    (which count up by one), no dictionary attempt on unique text like line ids, and min/max statistics only
    on the columns that are not dictionaries: Arrow computes a dictionary column's statistics over its
    rows' text, which cost as much as writing the column (measured: 159 ms against 92 ms for a million
    decisions), while a reader filters such a column through its dictionary page anyway."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        dictionaries = [f.name for f in schema if pa.types.is_dictionary(f.type)]
        plain = [f.name for f in schema if not pa.types.is_dictionary(f.type)]
        numbers = {f.name: "DELTA_BINARY_PACKED" for f in schema if f.name == "line" and pa.types.is_int64(f.type)}
        self.w = pq.ParquetWriter(path, schema, use_dictionary=dictionaries or False,
                                  column_encoding=numbers or None, write_statistics=plain or False)

    def write(self, table: pa.Table) -> None:
        self.w.write_table(table)

    def close(self) -> None:
        self.w.close()


class CsvWriter(Writer):
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.w = pacsv.CSVWriter(str(path), schema)

    def write(self, table: pa.Table) -> None:
        self.w.write_table(table)

    def close(self) -> None:
        self.w.close()


class JsonlWriter(Writer):
    def __init__(self, path: Path | None, schema: pa.Schema, stream: IO[str] | None = None) -> None:
        if stream is None:
            assert path is not None
            stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 -- closed in close()
            self.own = True
            self.path = path
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


class ArrowWriter(Writer):
    """An Arrow IPC file (``.arrow``, ``.feather``): the decision columns as they are, for readers that map it."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.w = pa.ipc.new_file(str(path), schema)

    def write(self, table: pa.Table) -> None:
        self.w.write_table(table)

    def close(self) -> None:
        self.w.close()


def writer_for(path: Path | None, fmt: str, schema: pa.Schema, stream: IO[str] | None = None) -> Writer:
    """The writer of ``fmt`` (``formats.OUTPUTS``) to ``path``; JSON Lines to ``stream`` when there is no path."""
    if path is not None and fmt in _WRITERS:
        return _WRITERS[fmt](path, schema)
    return JsonlWriter(path, schema, stream)


_WRITERS: dict[str, Callable[[Path, pa.Schema], Writer]] = {
    "parquet": ParquetWriter, "csv": CsvWriter, "arrow": ArrowWriter}

