"""JSON Lines in bulk: blocks of lines read by Arrow's JSON reader, each line the interpreter's own reading.

Why a reader of its own: reading JSON Lines a line at a time in Python (``json.loads``, then ``parse_line``)
cost 50 times what Arrow's reader costs, and made JSON Lines the one slow format of the batch engine and the
decision service. Arrow parses a block on every core into columns; the columns are checked once per distinct
value by ``checks.encode``, as a Parquet file's are. Arrow is trusted only with the lines it reads exactly as
``lines.jsonl_line`` does; every other line is read by ``jsonl_line`` itself, so the lines, their numbers and
their errors are the interpreter's whatever the input holds (``tests/test_batch_engine.py`` checks it on
hostile files, in blocks of every size).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from ..errors import LineError
from ..guard import BOM, MAX_LINE_BYTES, too_long
from ..lines import FIELDS, canonical_field, jsonl_line
from ..model import ClaimLine, Policy, Program
from .files import Batch, lines_table

JSONL_BLOCK_BYTES = 16 << 20  # a JSON Lines block: some 150,000 lines, parsed by Arrow on every core
_JSONL_SPLIT_LINES = 512  # a block Arrow refuses is halved until this small; then its lines are read one by one
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # an escaped surrogate: Arrow refuses one alone, json reads it
# Arrow types a line's value may come as and be checked exactly as ``lines.parse_line`` checks the value
# ``json.loads`` gives (a double is not: 5.0 against 5, and long integers lose digits, in what an error shows)
_PLAIN = (pa.types.is_string, pa.types.is_int64, pa.types.is_boolean, pa.types.is_null)


def jsonl_batches(chunks: Iterable[bytes], program: Program, *, first_line: int = 1,
                  block_bytes: int | None = None) -> Iterator[Batch]:
    """JSON Lines in batches, from bytes in pieces cut anywhere (a file's blocks, a request body's chunks).

    Each block of whole lines is read in bulk by Arrow's JSON reader, which makes columns of the lines' values
    in C++ on every core; the columns are then checked once per distinct value (``checks.encode``), as a
    Parquet file's are. Arrow reads only the lines it reads exactly as ``lines.jsonl_line`` does: one object
    on its own line, nothing nested but a list of modifiers, values of the types of ``_PLAIN``, no escaped
    surrogate, no key a claim line does not have, no field given twice. Every other line (blank, broken,
    long, not UTF-8, anything unusual) is read by ``lines.jsonl_line`` itself, so the lines, their numbers and
    their errors are the interpreter's whatever the input holds. A line longer than ``MAX_LINE_BYTES`` is
    read past, never held whole.
    """
    block_bytes = block_bytes or JSONL_BLOCK_BYTES
    known_dates: set[str] = set()  # keys Arrow would read as timestamps: read as text, as json gives them
    line = first_line - 1
    pending: list[bytes] = []
    size = 0
    skipping = False  # inside a line longer than any may be
    first = first_line == 1
    for chunk in chunks:
        if first and chunk:
            chunk, first = chunk.removeprefix(BOM), False
        if skipping:
            cut = chunk.find(b"\n")
            if cut < 0:
                continue
            skipping, line = False, line + 1
            yield Batch(errors=[too_long(line)])
            chunk = chunk[cut + 1:]
        if not chunk:
            continue
        pending.append(chunk)
        size += len(chunk)
        if size < block_bytes:
            continue
        data = b"".join(pending)
        pending.clear()
        cut = data.rfind(b"\n") + 1
        if cut:
            batch, n = _jsonl_block(data[:cut], line, program, known_dates)
            line += n
            yield batch
        tail = data[cut:]
        skipping = len(tail) > MAX_LINE_BYTES  # a line already longer than any may be: read past its end
        pending, size = ([tail], len(tail)) if tail and not skipping else ([], 0)
    if skipping:
        yield Batch(errors=[too_long(line + 1)])
    elif pending:
        yield _jsonl_block(b"".join(pending), line, program, known_dates)[0]


def _jsonl_block(block: bytes, before: int, program: Program, known_dates: set[str]) -> tuple[Batch, int]:
    """(the batch, the number of physical lines) of a block of whole lines, the first being line before + 1."""
    arr = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(arr == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    n = len(ends)
    numbers = np.arange(before + 1, before + n + 1, dtype=np.int64)
    fast = _plain_lines(block, arr, starts, ends)
    parts: list[tuple[pa.Table, np.ndarray]] = []
    if fast.any():
        parts, refused = _arrow_json(arr, starts, ends, np.flatnonzero(fast), numbers, known_dates)
        fast[refused] = False
    good: list[tuple[int, ClaimLine]] = []
    errors: list[LineError] = []
    for i in np.flatnonzero(~fast).tolist():
        size = int(ends[i] - starts[i])
        raw = block[starts[i]:ends[i] + 1] if size <= MAX_LINE_BYTES else None
        item = jsonl_line(raw, int(numbers[i]), program)
        if isinstance(item, LineError):
            errors.append(item)
        elif item is not None:
            good.append((int(numbers[i]), item))
    batch = Batch(errors=errors, progress=len(block), parts=parts)
    if good:
        batch.lines = lines_table(good)
    return batch, n


def _plain_lines(block: bytes, arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The lines Arrow may read: ``{`` first and ``}`` last (a carriage return aside), no other brace, at most
    one ``[``, within the length limit, in a block that is UTF-8 with no escaped surrogate."""
    if not len(starts):
        return np.zeros(0, bool)
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return np.zeros(len(starts), bool)
    top = len(arr) - 1
    cr = (ends > starts) & (arr[np.clip(ends - 1, 0, top)] == 13)  # a line ending \r\n
    last = ends - 1 - cr
    ok = (last > starts) & (ends - starts <= MAX_LINE_BYTES)
    ok &= (arr[np.clip(starts, 0, top)] == 123) & (arr[np.clip(last, 0, top)] == 125)
    ok = np.asarray(ok, dtype=bool)
    # Each of these bytes at most where a plain line has it: a brace only first and last, a carriage return only
    # before the newline. Counted in the whole block first (one pass each): when the count is the number of
    # lines that have the byte at that place, no line has it elsewhere, and the positions are never found.
    hit = np.empty(len(arr), bool)  # one buffer for every comparison: a fresh one a pass costs twice the pass
    for byte, where in ((123, starts), (125, last), (13, last + 1)):
        total = int(np.count_nonzero(np.equal(arr, byte, out=hit)))
        if total and total != int(np.count_nonzero(arr[np.clip(where, 0, top)] == byte)):
            at = np.flatnonzero(hit)
            ok &= np.bincount(np.searchsorted(starts, at, side="right") - 1, minlength=len(starts)) <= (
                1 if byte != 13 else cr)
    # a bracket at most once a line: the lines of two brackets in a row of the sorted positions
    line_of = np.searchsorted(starts, np.flatnonzero(np.equal(arr, 91, out=hit)), side="right") - 1
    ok[line_of[1:][line_of[1:] == line_of[:-1]]] = False
    if b"\\" in block and b"\\u" in block:  # one byte is found by memchr: 0.7 ms a 16 MB block against 17 ms
        at = np.array([m.start() for m in _SURROGATE.finditer(block)], np.int64)
        if len(at):
            ok[np.searchsorted(starts, at, side="right") - 1] = False
    result: np.ndarray = ok
    return result


def _arrow_json(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray, numbers: np.ndarray,
                known_dates: set[str]) -> tuple[list[tuple[pa.Table, np.ndarray]], np.ndarray]:
    """The lines ``rows`` read by Arrow: (tables with their line numbers, the rows left to read one by one).
    A range Arrow refuses (a value of another type than the lines before it, a field given twice) is halved
    and tried again, down to a few hundred lines."""
    tables: list[tuple[pa.Table, np.ndarray]] = []
    refused: list[np.ndarray] = []
    todo = [rows]
    while todo:
        part = todo.pop()
        table = _read_json(arr, starts, ends, part, known_dates)
        if table is not None:
            tables.append((table, numbers[part]))
        elif len(part) > _JSONL_SPLIT_LINES:
            half = len(part) // 2
            todo += [part[half:], part[:half]]
        else:
            refused.append(part)
    tables.sort(key=lambda t: int(t[1][0]))
    return tables, (np.concatenate(refused) if refused else np.zeros(0, np.int64))


def _read_json(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
               known_dates: set[str]) -> pa.Table | None:
    """The lines ``rows`` as one Arrow table, or None when Arrow cannot read them as ``lines.jsonl_line`` does."""
    lengths = ends[rows] - starts[rows] + 1
    if len(rows) == len(starts) and lengths.sum() >= len(arr):
        data = arr.tobytes()
    else:
        take = np.repeat(starts[rows], lengths) + (np.arange(int(lengths.sum())) - np.repeat(
            np.cumsum(lengths) - lengths, lengths))
        data = arr[np.minimum(take, len(arr) - 1)].tobytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    for _ in range(2):
        schema = pa.schema([(k, pa.string()) for k in sorted(known_dates)])
        try:
            table = pajson.read_json(io.BytesIO(data), read_options=pajson.ReadOptions(block_size=4 << 20),
                                     parse_options=pajson.ParseOptions(explicit_schema=schema,
                                                                       unexpected_field_behavior="infer"))
        except pa.ArrowInvalid:
            return None
        temporal = {f.name for f in table.schema if pa.types.is_temporal(f.type)}
        if not temporal:
            break
        known_dates |= temporal  # read again with those keys as text
    else:
        return None
    if table.num_rows != len(rows):
        return None
    keep = [name for name, col in zip(table.column_names, table.columns, strict=True)
            if not (name in known_dates and col.null_count == len(col))]  # a date key these lines do not have
    table = table.select(keep)
    names = [canonical_field(name) for name in table.column_names]
    if len(set(names)) != len(names) or not all(name in FIELDS for name in names):
        return None  # a field given twice, or unknown: the interpreter's reading decides which line it fails
    for f in table.schema:
        kind = f.type
        if pa.types.is_list(kind):
            kind = kind.value_type
        if not any(test(kind) for test in _PLAIN):
            return None
    return table


def read_jsonl_batches(path: Path, policy: Policy, block_bytes: int | None = None) -> tuple[int, Iterator[Batch]]:
    """A JSON Lines file in batches (``jsonl_batches``)."""
    total = path.stat().st_size
    block_bytes = block_bytes or JSONL_BLOCK_BYTES

    def gen() -> Iterator[Batch]:
        with path.open("rb") as f:  # jsonl_batches drops a byte-order mark before the first line
            yield from jsonl_batches(iter(lambda: f.read(block_bytes), b""), policy.program, block_bytes=block_bytes)
    return total, gen()
