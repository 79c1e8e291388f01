"""Claim lines from Parquet and Arrow IPC files, for the interpreter: each row a record, read as a JSON line is.

The batch engine reads these files as columns (``engines.files``); the interpreter, line by line, reads
each row as the mapping of its columns and checks it with ``lines.parse_line``, so both read every Arrow
type alike (bytes as UTF-8 text, dates, decimals, lists as modifiers). pyarrow is imported only when such a
file is read: a one-line ``eval`` never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InputError, LineError
from .lines import Parsed, canonical_field, parse_at
from .model import Program


def unreadable(temporal: bool, exc: BaseException) -> str:
    """The error of a column's value that Arrow cannot hand over as a Python value."""
    return "a date past 9999-12-31 cannot be read" if temporal else f"a value ({exc}) cannot be read"


def arrow_batches(path: str | Path, fmt: str, batch_rows: int = 65_536) -> Iterator[Any]:
    """The record batches of a Parquet or Arrow IPC (file or stream) file, pyarrow imported only here."""
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    if fmt == "parquet":
        yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=batch_rows)
        return
    with pa.memory_map(str(path)) as source:
        try:
            reader = ipc.open_file(source)
        except pa.ArrowInvalid:  # not the file format: the stream format (what a service or a pipe sends)
            source.seek(0)
            yield from ipc.open_stream(source)
            return
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def read_columnar(path: str | Path, fmt: str, program: Program) -> Iterator[Parsed]:
    """Each row of a Parquet or Arrow IPC file as a record (its columns by name), numbered from 1."""
    import pyarrow as pa

    number = 0
    batches = arrow_batches(path, fmt)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:  # a file that is not the format it says: no line is read
            raise InputError(f"the {fmt} file cannot be read: {exc}") from None
        try:
            rows = batch.to_pylist()
        except (OverflowError, ValueError, UnicodeDecodeError, ArithmeticError) as exc:
            rows = [_row_by_row(batch, i, exc) for i in range(batch.num_rows)]
        for row in rows:
            number += 1
            yield number, row.at(number) if isinstance(row, LineError) else parse_at(row, program, number)


def _row_by_row(batch: Any, i: int, exc: BaseException) -> dict[str, Any] | LineError:
    """One row of a batch whose rows Arrow could not all convert: its values, or the first that cannot be read."""
    import pyarrow as pa

    out: dict[str, Any] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            out[name] = column[i].as_py()
        except (OverflowError, ValueError, UnicodeDecodeError, ArithmeticError, pa.ArrowException) as err:
            return LineError(unreadable(pa.types.is_temporal(column.type), err), field=canonical_field(name))
    return out
