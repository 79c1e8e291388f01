"""Analysts' tables in memory: a table of claim lines in, a pyarrow table of decisions out, line for line.

    >>> import pandas as pd
    >>> from cmap_policy import decide_table
    >>> decide_table(pd.DataFrame({"code": ["T1016"], "date": ["2026-01-05"], "modifiers": ["93"]}))

Anything that speaks the Arrow PyCapsule interface is read -- a pyarrow Table, RecordBatch or
RecordBatchReader, a pandas or Polars DataFrame, a DuckDB result -- through ``__arrow_c_stream__`` (or
``__arrow_c_array__`` for a single batch), so no DataFrame library is imported here and none is needed.

Why this shape: a table in memory is the batch engine's input without the file. Its columns go to
``batch.Engine.check`` (``checks.encode``: each distinct value of a column checked once by ``lines.CHECKS``,
columns of any Arrow type) and ``Engine.answer`` (each distinct slot decided once by the interpreter), exactly
as a Parquet file's row groups do; so a table gets the decisions and errors ``cmap-policy eval`` gives the same
rows written as a Parquet file, with the same line numbers (row 1 is the table's first row). A stream is read
and decided a chunk at a time (``decide_batches``), so only the chunk in hand and its answers are held.

The output has the batch engine's columns (``line``, ``line_id``, ``claim_id``, ``code``, ``date``,
``outcome``, ``reasons``, ``period``, ``modality``, ``release``, ``policy_hash``). A malformed line is either
a row of its own in input order, with ``error`` and ``field`` set and the decision's columns null (as Spark's
``evaluate`` keeps it), or a row of a second table of ``line``, ``field``, ``error`` (as ``eval`` writes its
errors file): ``errors="rows"`` or ``errors="table"``. Either way, rows in = decisions + errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, overload

import numpy as np
import pyarrow as pa

from ..api import policy_for
from ..arguments import expect_choice
from ..errors import InputError
from ..model import Policy
from .batch import OUTPUT_SCHEMA, Engine
from .checks import ERROR_SCHEMA

ERRORS = ("rows", "table")  # where a malformed line goes: a row in place, or a second table
CHUNK_ROWS = 1 << 18  # rows decided together: each distinct value is checked once a chunk, so larger is cheaper
MAX_CHUNK_ROWS = 1 << 19  # and a larger batch is cut, so that the chunk in hand stays a few tens of MB
# the output of errors="rows": the batch engine's columns, then the error's message and field
ROWS_SCHEMA = OUTPUT_SCHEMA.append(pa.field("error", pa.string())).append(pa.field("field", pa.string()))
# the columns pandas adds for an index it was not told to keep by name (a named index is a column of the user's)
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")
_FUNCTION = "decide_table"


def record_batches(data: object, function: str = _FUNCTION) -> Iterator[pa.RecordBatch]:
    """The record batches of ``data``, anything that speaks the Arrow PyCapsule interface, read one at a time.

    Raises ``TypeError`` for an object that does not speak it, and ``InputError`` for one whose columns
    Arrow cannot read (a pandas column of Python objects of mixed kinds, say).
    """
    if isinstance(data, pa.Table):
        return iter(data.to_batches())
    if isinstance(data, pa.RecordBatch):
        return iter([data])
    try:
        if hasattr(data, "__arrow_c_stream__"):
            reader = pa.RecordBatchReader.from_stream(data)
            return _read(reader, function)
        if hasattr(data, "__arrow_c_array__"):
            return iter([pa.record_batch(data)])
    except (pa.ArrowException, ValueError, TypeError) as err:
        raise InputError(f"{function}: data cannot be read as a table of claim lines: {_first_line(err)}") from None
    raise TypeError(f"{function}: data must be a table that speaks the Arrow PyCapsule interface (a pyarrow Table "
                    "or RecordBatchReader, a pandas or Polars DataFrame, a DuckDB result), not "
                    f"{type(data).__name__} (records go to eval_lines, or to pyarrow.table first)")


def _read(reader: pa.RecordBatchReader, function: str) -> Iterator[pa.RecordBatch]:
    """A reader's batches; an error while reading is an ``InputError`` that says after which row it came."""
    rows = 0
    with reader:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, ValueError, TypeError) as err:
                raise InputError(f"{function}: data could not be read after row {rows:,}: "
                                 f"{_first_line(err)}") from None
            rows += batch.num_rows
            yield batch


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def chunks(batches: Iterable[pa.RecordBatch], rows: int = CHUNK_ROWS,
           largest: int = MAX_CHUNK_ROWS) -> Iterator[pa.Table]:
    """Record batches gathered into tables of ``rows`` rows or more (a large batch cut at ``largest``): the
    engine checks each distinct value once per table, so a few large tables cost less than many small ones.

    Spark's workers decide their partitions' batches (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows:
    10,000 by default, 100,000 in a session ``spark.session`` makes) in these tables too: on 10 M lines, 4.7 s
    of the engine's time in tables of 65,536 rows against 3.3 s in tables of 262,144.
    """
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        for start in range(0, batch.num_rows, largest):
            piece = batch.slice(start, largest)
            held.append(piece)
            count += piece.num_rows
            if count >= rows:
                yield pa.Table.from_batches(held)
                held, count = [], 0
    if held:
        yield pa.Table.from_batches(held)


def _columns(table: pa.Table) -> pa.Table:
    """The table without the columns pandas made of an unnamed index (its line numbers are its rows)."""
    meta = (table.schema.metadata or {}).get(b"pandas")
    if meta is None:
        return table
    try:
        index = set(json.loads(meta).get("index_columns", ()))
    except (ValueError, AttributeError, TypeError):
        return table
    drop = [n for n in table.column_names if n in index and _PANDAS_INDEX.fullmatch(n)]
    return table.drop_columns(drop) if drop else table


def decide_batches(data: object, *, policy: Policy | str | Path | None = None,
                   release: str | None = None) -> Iterator[tuple[pa.Table, pa.Table]]:
    """(decisions, errors) of each chunk of ``data``, in order: the table read and decided a chunk at a time,
    so a stream of any length is decided in the memory of a chunk. Lines are numbered from 1, the table's
    first row, across chunks. The arguments are checked when this is called, before anything is read."""
    pol = policy_for("decide_batches", policy, release)
    return _decided(record_batches(data, "decide_batches"), Engine(pol, release))


def _decided(batches: Iterator[pa.RecordBatch], engine: Engine) -> Iterator[tuple[pa.Table, pa.Table]]:
    first = 1
    for chunk in chunks(batches, CHUNK_ROWS, MAX_CHUNK_ROWS):  # read here, so that a test may set them
        table = _columns(chunk)
        numbers = pa.array(np.arange(first, first + table.num_rows, dtype=np.int64))
        first += table.num_rows
        enc, errors = engine.check(table, numbers)
        yield engine.answer(enc).table(), errors


@overload
def decide_table(data: object, *, policy: Policy | str | Path | None = None, release: str | None = None,
                 errors: Literal["rows"] = "rows") -> pa.Table: ...


@overload
def decide_table(data: object, *, policy: Policy | str | Path | None = None, release: str | None = None,
                 errors: Literal["table"]) -> tuple[pa.Table, pa.Table]: ...


def decide_table(data: object, *, policy: Policy | str | Path | None = None, release: str | None = None,
                 errors: Literal["rows", "table"] = "rows") -> pa.Table | tuple[pa.Table, pa.Table]:
    """Decide every row of ``data`` (a pyarrow, pandas or Polars table, a DuckDB result: anything that speaks
    the Arrow PyCapsule interface), each row a claim line numbered from 1.

    ``errors="rows"``: one table, a row per input row in input order, malformed lines with ``error`` and
    ``field`` set and no decision. ``errors="table"``: (the decisions, the errors as ``line``, ``field``,
    ``error``). ``policy`` is a loaded policy, a policy folder, or None for the bundled one; ``release``
    decides as of an earlier release.
    """
    expect_choice(_FUNCTION, "errors", errors, ERRORS)
    pol = policy_for(_FUNCTION, policy, release)
    parts = list(_decided(record_batches(data), Engine(pol, release)))
    if errors == "table":
        return (pa.concat_tables([d for d, _ in parts]) if parts else OUTPUT_SCHEMA.empty_table(),
                pa.concat_tables([e for _, e in parts]) if parts else ERROR_SCHEMA.empty_table())
    return pa.concat_tables([in_place(d, e) for d, e in parts]) if parts else ROWS_SCHEMA.empty_table()


def in_place(decisions: pa.Table, errors: pa.Table) -> pa.Table:
    """A chunk's decisions and errors as one table in line order, an error's row with no decision."""
    decided = decisions.append_column("error", pa.nulls(decisions.num_rows, pa.string())).append_column(
        "field", pa.nulls(decisions.num_rows, pa.string()))
    if not errors.num_rows:
        return decided
    n = errors.num_rows
    failed = pa.table({f.name: errors[f.name] if f.name in ("line", "error", "field") else pa.nulls(n, f.type)
                       for f in ROWS_SCHEMA}, schema=ROWS_SCHEMA)
    return pa.concat_tables([decided, failed]).sort_by("line")
