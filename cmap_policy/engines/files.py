"""Claim files in, in batches (Parquet row groups, CSV byte blocks, JSON Lines and X12 chunks), and decisions out.

Each reader yields ``Batch`` values: raw columns to check (Parquet, CSV) or lines already
checked by ``lines.parse_line`` (JSON Lines, X12, whose values are typed per line), with
each row's line number and the errors found while reading.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import LineError
from ..lines import canonical_field, read_jsonl
from ..model import ClaimLine, Policy
from ..x12 import read_x12
from .checks import ARROW_TYPES, LINE_COLUMNS, OUTPUTS
from .slots import EPOCH

BATCH_ROWS = 1_000_000
CSV_BLOCK_BYTES = 32 << 20


# --- reading: each reader yields (raw or normalized table, line numbers, errors found while reading) ---

@dataclass
class Batch:
    raw: pa.Table | None = None  # columns as read, to check in SQL
    lines: pa.Table | None = None  # already checked: checks.LINE_COLUMNS
    line_numbers: pa.Array | None = None
    errors: list[LineError] = field(default_factory=list)
    progress: int = 0  # bytes or rows consumed, for the progress bar


def read_parquet(path: Path, batch_rows: int = BATCH_ROWS) -> tuple[int, Iterator[Batch]]:
    schema = pq.read_schema(path)
    # checked text columns come as dictionaries: their distinct values are what the checks need, and the
    # strings are never materialized row by row
    checked = [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
               and canonical_field(f.name) in OUTPUTS]
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


def read_csv(path: Path, block_bytes: int | None = None) -> tuple[int, Iterator[Batch]]:
    """CSV in byte blocks cut at line ends. Line numbers count records from the header (line 1)."""
    block_bytes = block_bytes or CSV_BLOCK_BYTES
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
    return pa.table({name: pa.array(cols[name], type=ARROW_TYPES[typ]) for name, typ in LINE_COLUMNS})


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
    total = path.stat().st_size

    def gen() -> Iterator[Batch]:
        yield from _parsed_batches(read_x12(path, policy.program), policy, lambda: total, BATCH_ROWS)
    return total, gen()


# --- writing ---

class Writer:
    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ParquetWriter(Writer):
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.w = pq.ParquetWriter(path, schema)

    def write(self, table: pa.Table) -> None:
        self.w.write_table(table)

    def close(self) -> None:
        self.w.close()


class CsvWriter(Writer):
    def __init__(self, path: Path, schema: pa.Schema) -> None:
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


def writer_for(path: Path | None, fmt: str, schema: pa.Schema, stream: IO[str] | None = None) -> Writer:
    if fmt == "parquet" and path is not None:
        return ParquetWriter(path, schema)
    if fmt == "csv" and path is not None:
        return CsvWriter(path, schema)
    return JsonlWriter(path, schema, stream)

