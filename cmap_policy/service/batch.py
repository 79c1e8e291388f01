"""``POST /v1/decide/batch`` on the batch engine's columnar road: a body of many lines in, answers streamed out.

The service decides a batch request with the batch engine (``engines.batch.Engine``), the same code as
``cmap-policy eval FILE -o OUT``: the body is read in batches into Arrow columns, each batch is checked once
per distinct value (``Engine.check``) and decided once per distinct slot (``Engine.answer``), so a request
of a million lines costs a few thousand interpreter calls, not a million.

Bodies come as JSON Lines, a JSON array, an Arrow IPC stream or a Parquet file; the answer comes in the
request's format (JSON Lines for JSON Lines, a JSON array for a JSON array, Arrow for Arrow, Parquet for
Parquet), or in the one ``Accept`` names. A JSON answer is, line for line, what ``cmap-policy eval`` prints
for the line (``results.LineResult.as_dict``) plus its ``decision_id``; an Arrow or Parquet answer has the batch
engine's output columns plus ``decision_id``, ``error`` and ``field``. Either way the results are in the
lines' order, a line's error in its place: lines in = results out.

A JSON answer needs each decision's whole JSON (messages, citations, attestations), which the batch engine
does not keep: it is the interpreter's decision of the first line of each distinct slot, serialised once
(``Decider.decision_json``). The engine's slot puts together values that one limit refuses (ages below a
row's minimum, say), whose messages name the value; lines whose decision has such a reason are told apart
by those values too (``_NAMED``), so every line gets its own message.

Why the body is spooled (to memory, then a temporary file) before the answer starts: most HTTP/1.1 clients
write the whole body before they read the answer, and a service that answered while it read would fill the
connection both ways and stall. Spooled, a body of ten million lines costs disk, not memory; the answer is
then made and sent a batch at a time, so memory stays a few batches whatever the request's size.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .. import formats
from ..engines.batch import OUTPUT_SCHEMA as DECISION_SCHEMA
from ..engines.batch import Answered, Engine
from ..engines.checks import EPOCH, Encoded, encode_lines, first_rows
from ..engines.files import Batch, lines_table
from ..engines.jsonl import jsonl_batches
from ..engines.slots import claim_lines_of
from ..errors import LineError
from ..guard import BOM, MAX_LINE_BYTES
from ..interpreter import evaluate
from ..lines import MAX_DOCUMENT_BYTES, parse_at
from ..model import ClaimLine, Decision, Policy
from ..results import LineResult
from .decisions import PREFIX, Answer, Decider, read_json, reserve_decision_numbers

ANSWERS = ("jsonl", "json", "arrow", "parquet")  # the formats a batch request comes in and is answered in


# Lines decided together. A JSON answer is about 1.5 KB a line, so its batches are smaller: a batch's answer
# is held whole while it is sent.
JSON_ROWS = 16_384
COLUMN_ROWS = 131_072
READ_BYTES = 1 << 20  # the pieces a spooled body is read in
JSONL_LINE_BYTES = 128  # about what a JSON line of a claim takes: a JSON Lines block of ``rows`` lines

# The reasons whose message names a value of the line (interpreter: a limit that refuses the value), and so
# the fields by which lines of one batch slot may need different JSON.
_NAMED = {"AGE_OUTSIDE_LIMIT": "member_age", "PROVIDER_TYPE_NOT_ALLOWED": "provider_type",
          "UNITS_OVER_LIMIT": "units"}


class BodyError(Exception):
    """A body that cannot be read as its format at all (so no line of it can be numbered): the request fails."""

    def __init__(self, status: int, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail


def request_format(content_type: str | None, head: bytes) -> str:
    """The body's format (``formats``): Arrow or Parquet by their first bytes or media type; else a JSON array
    when it starts with ``[``, else JSON Lines. ``BodyError`` (415) for a format the endpoint does not take."""
    sniffed, named = formats.sniff(head), formats.by_media_type(content_type)
    if sniffed in ("arrow", "parquet"):
        return sniffed
    if named in ("arrow", "parquet"):
        return named
    if named is not None and named not in ANSWERS:
        raise BodyError(415, "unsupported-media-type", f"{formats.MEDIA_TYPE_OF[named]} is not taken here: send "
                        "JSON Lines, a JSON array of lines, an Arrow IPC stream or a Parquet file")
    return "json" if sniffed == "json" else "jsonl"


def answer_format(accept: str | None, fmt: str) -> str:
    """The answer's format: the first of ``ANSWERS`` that ``Accept`` names, else the request's."""
    for media in (accept or "").split(","):
        named = formats.by_media_type(media)
        if named in ANSWERS:
            return named
    return fmt


# --- reading the body ---

@dataclass(frozen=True)
class Read:
    """A batch of the body, and the input records of its lines (by line number) for the decision log."""

    batch: Batch
    records: Callable[[np.ndarray], list[Any]]


def _pieces(body: IO[bytes]) -> Iterator[bytes]:
    while chunk := body.read(READ_BYTES):
        yield chunk


def _records_of(table: pa.Table, numbers: np.ndarray) -> Callable[[np.ndarray], list[Any]]:
    """The rows of ``table`` (whose rows have the line numbers ``numbers``, ascending) as records, without
    their null fields (a field a line did not give comes out of the columns as null)."""

    def records(wanted: np.ndarray) -> list[Any]:
        rows = table.take(pa.array(np.searchsorted(numbers, wanted))).to_pylist()
        return [{k: _jsonable(v) for k, v in row.items() if v is not None} for row in rows]
    return records


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool, dt.date, dt.datetime, dt.time)):
        return value
    return str(value)


class _Lines:
    """The lines of a JSON Lines body by number, each kept from when it is read until its batch asks for it:
    the decision log's record of a line is the line as the client sent it, read as it was read to decide."""

    def __init__(self) -> None:
        self.kept: dict[int, bytes] = {}
        self.rest = b""
        self.number = 0
        self.first = 1  # no line before this one is kept

    def _keep(self, line: bytes) -> None:
        self.number += 1
        self.kept[self.number] = line if len(line) <= MAX_LINE_BYTES + 1 else b""  # a line too long is an error

    def tee(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            lines = (self.rest + chunk).split(b"\n")
            self.rest = lines.pop()
            if len(self.rest) > MAX_LINE_BYTES + 1:
                self.rest = self.rest[:MAX_LINE_BYTES + 2]  # never held whole: it is that line's error
            for line in lines:
                self._keep(line)
            yield chunk
        if self.rest:
            self._keep(self.rest)

    def records(self, wanted: np.ndarray) -> list[Any]:
        kept = self.kept
        out = [read_json(kept[n].removeprefix(BOM) if n == 1 else kept[n]) for n in wanted.tolist()]
        last = int(wanted.max()) if len(wanted) else 0
        # the lines of this batch and before are never asked for again; dropped by number, since finding a
        # dict's first key walks past every key deleted before it (quadratic in a batch: 69 us a line at
        # 100,000-line requests)
        for n in range(self.first, last + 1):
            kept.pop(n, None)
        self.first = max(self.first, last + 1)
        return out


def read_body(fmt: str, body: IO[bytes], policy: Policy, rows: int, *, records: bool = True) -> Iterator[Read]:
    """The body in batches of about ``rows`` lines, with each line's record when ``records`` (for the decision
    log). ``BodyError`` before the first batch when the body cannot be read at all."""
    if fmt == "jsonl":
        lines = _Lines() if records else None
        pieces = lines.tee(_pieces(body)) if lines is not None else _pieces(body)
        return (Read(b, lines.records if lines is not None else _no_records)
                for b in jsonl_batches(pieces, policy.program, block_bytes=rows * JSONL_LINE_BYTES))
    if fmt == "json":
        return _json_array(body, policy, rows)
    if fmt == "arrow":
        return _arrow(body, rows)
    return _parquet(body, rows)


def _no_records(wanted: np.ndarray) -> list[Any]:
    return [None] * len(wanted)


def _json_array(body: IO[bytes], policy: Policy, rows: int) -> Iterator[Read]:
    """A JSON array of line objects (or one object), numbered from 1, as ``cmap-policy eval`` reads one."""
    raw = body.read(MAX_DOCUMENT_BYTES + 1)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise BodyError(413, "too-large", f"a JSON document larger than {MAX_DOCUMENT_BYTES >> 20} MB: send the "
                                          "lines as JSON Lines (one object per line) or Arrow")
    try:
        data = read_json(raw)
    except ValueError as exc:
        raise BodyError(400, "invalid-json", str(exc)) from None
    items = data if isinstance(data, list) else [data]

    def batches() -> Iterator[Read]:
        for start in range(0, len(items), rows):
            part = items[start:start + rows]
            good: list[tuple[int, ClaimLine]] = []
            errors: list[LineError] = []
            for number, item in enumerate(part, start + 1):
                parsed = parse_at(item, policy.program, number)
                if isinstance(parsed, LineError):
                    errors.append(parsed)
                else:
                    good.append((number, parsed))
            yield Read(Batch(lines=lines_table(good), errors=errors),
                       lambda wanted: [items[int(n) - 1] for n in wanted])
    return batches()


def _numbered(table: pa.Table, first: int) -> Read:
    numbers = np.arange(first, first + table.num_rows, dtype=np.int64)
    return Read(Batch(raw=table, line_numbers=pa.array(numbers)), _records_of(table, numbers))


def _gathered(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[Read]:
    """Record batches put together into batches of about ``rows`` rows, numbered from 1 (as Parquet rows are)."""
    pending: list[pa.RecordBatch] = []
    size, first = 0, 1
    for rb in batches:
        pending.append(rb)
        size += rb.num_rows
        if size >= rows:
            yield _numbered(pa.Table.from_batches(pending), first)
            first += size
            pending, size = [], 0
    if size:
        yield _numbered(pa.Table.from_batches(pending), first)


def _arrow(body: IO[bytes], rows: int) -> Iterator[Read]:
    """An Arrow IPC stream. Read through once before the answer starts, so that a stream broken halfway fails
    the request instead of ending the answer early (reading it costs little beside deciding it)."""
    try:
        reader = ipc.open_stream(body)
        for _ in reader:
            pass
        body.seek(0)
        reader = ipc.open_stream(body)
    except (pa.ArrowException, OSError) as exc:
        raise BodyError(400, "invalid-request", f"not an Arrow IPC stream: {exc}") from None
    return _gathered(iter(reader), rows)


def _parquet(body: IO[bytes], rows: int) -> Iterator[Read]:
    try:
        pf = pq.ParquetFile(body, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise BodyError(400, "invalid-request", f"not a Parquet file: {exc}") from None
    return _gathered(pf.iter_batches(batch_size=min(rows, 65_536)), rows)


# --- deciding ---

class Columnar:
    """The batch engine of one loaded policy, an ``Engine`` per release asked for, and the interpreter's
    decision of each slot the engine has decided (the engine keeps only what its output columns need).

    An engine keeps the slots it has decided across requests, so a busy service calls the interpreter for
    new slots only; it is not made for two threads at once, so batches are decided one at a time (``lock``).
    """

    def __init__(self, decider: Decider) -> None:
        self.decider = decider
        self.policy = decider.policy
        self.lock = threading.Lock()
        self._engines: dict[str | None, Engine] = {}
        # per release: (the engine's cache generation, the decision of each of its decision numbers)
        self._decisions: dict[str, tuple[int, list[Decision | None]]] = {}

    def engine(self, release: str | None) -> Engine:
        found = self._engines.get(release)
        if found is None:
            found = self._engines[release] = Engine(self.policy, release)
        return found

    def decisions(self, engine: Engine, enc: Encoded, numbers: np.ndarray) -> tuple[list[Decision], np.ndarray]:
        """(the decision of each distinct engine decision number in ``numbers``, each line's index into them):
        the interpreter's, for the first line of each number not met before."""
        generation, known = self._decisions.get(engine.release, (-1, []))
        if generation != engine.slots.generation:  # the engine's slots started afresh: so do their decisions
            generation, known = engine.slots.generation, []
            self._decisions[engine.release] = (generation, known)
        slot, firsts = first_rows(numbers)
        distinct = numbers[firsts].tolist()
        if distinct and max(distinct) >= len(known):
            known.extend([None] * (max(distinct) + 1 - len(known)))
        new = [i for i, n in enumerate(distinct) if known[n] is None]
        if new:
            lines = claim_lines_of(enc, firsts[new])
            for i, line in zip(new, lines, strict=True):
                known[distinct[i]] = evaluate(self.policy, line, release=engine.release)
        return [cast(Decision, known[n]) for n in distinct], slot


@dataclass(frozen=True)
class Decided:
    """A batch decided: the good lines, each one's decision (an index into ``decisions``), and the errors."""

    answered: Answered
    decisions: list[Decision]  # the interpreter's decision of each distinct slot of the batch
    slot: np.ndarray  # each good line's index into ``decisions``
    errors: list[LineError]  # the batch's errors, by line number
    read: Read
    release: str
    started: float
    seconds: float

    @property
    def enc(self) -> Encoded:
        return self.answered.enc


def _errors(checked: pa.Table) -> list[LineError]:
    return [LineError(m, field=f, line=n) for n, f, m in zip(
        checked["line"].to_pylist(), checked["field"].to_pylist(), checked["error"].to_pylist(), strict=True)]


def decide(columnar: Columnar, read: Read, release: str | None) -> Decided:
    """Check and decide one batch with the engine; each distinct slot's decision from the interpreter."""
    started, t0 = time.time(), time.perf_counter()
    with columnar.lock:
        engine = columnar.engine(release)
        enc, checked = engine.check_batch(read.batch)
        if enc is None:
            enc = encode_lines(lines_table([]))
        answered = engine.answer(enc)
        decisions, slot = columnar.decisions(engine, enc, answered.answers)
    return Decided(answered, decisions, slot, _errors(checked), read, engine.release, started,
                   time.perf_counter() - t0)


def _named(policy: Policy, d: Decided) -> tuple[list[Decision], np.ndarray]:
    """``d``'s decisions and each line's index into them, the lines whose decision names a value of theirs
    (``_NAMED``) decided apart by those values: the interpreter's decision of the first line of each."""
    naming = np.array([any(r.code in _NAMED for r in dec.reasons) for dec in d.decisions], bool)
    if not naming.any():
        return d.decisions, d.slot
    rows = np.flatnonzero(naming[d.slot])
    key = d.slot[rows]
    for name in sorted(set(_NAMED.values())):
        f = d.enc.fields[name]
        key = first_rows(key * (len(f.values) + 1) + f.idx[rows].astype(np.int64))[0]
    sub, firsts = first_rows(key)
    apart = [evaluate(policy, line, release=d.release) for line in claim_lines_of(d.enc, rows[firsts])]
    slot = d.slot.copy()
    slot[rows] = len(d.decisions) + sub
    return [*d.decisions, *apart], slot


# --- answering ---

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def decision_ids(n: int) -> pa.Array:
    """``n`` new decision ids (``decisions.new_decision_id``'s form), made a column at a time."""
    first = reserve_decision_numbers(n)
    numbers = np.arange(first, first + n, dtype=np.uint64)
    width = max(1, ((first + n).bit_length() + 3) // 4)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    digits = _HEX[(numbers[:, None] >> shifts) & np.uint64(15)]  # a row of hexadecimal digits per id
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(digits.tobytes())])
    hexadecimal = pc.utf8_ltrim(fixed.cast(pa.binary()).cast(pa.string()), characters="0")
    return pc.binary_join_element_wise(f"{PREFIX}-", hexadecimal, "")

def _date_json(day: int | None) -> bytes:
    return b"null" if day is None else b'"%s"' % (EPOCH + dt.timedelta(days=day)).isoformat().encode()


_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), *((chr(c), f"\\u{c:04x}") for c in range(32))]
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_text(arr: pa.Array) -> pa.Array:
    """Text as JSON string literals (null stays null): only a quote, a backslash and control characters
    need escaping in JSON, so most columns are only quoted."""
    arr = arr.cast(pa.string())
    if pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py():
        for char, escaped in _ESCAPES:
            arr = pc.replace_substring(arr, char, escaped)
    return pc.binary_join_element_wise(b'"', arr.cast(pa.binary()), b'"', b"")


def _member(name: str, arr: pa.Array) -> pa.Array:
    """``,"name":"value"`` for each row that has a value, else nothing (as ``LineResult.line_fields`` leaves out
    an id the line does not have)."""
    return pc.fill_null(pc.binary_join_element_wise(b',"%s":' % name.encode(), _json_text(arr), b""), b"")


def _by_index(texts: list[bytes], idx: np.ndarray) -> pa.Array:
    return pa.array(texts, pa.binary()).take(pa.array(idx))


def json_texts(decider: Decider, d: Decided, ids: pa.Array, end: bytes) -> tuple[np.ndarray, pa.Array]:
    """(the line numbers, each line's JSON followed by ``end``) for the good lines of ``d``, made a column at
    a time: what ``cmap-policy eval`` prints for the line (``LineResult.as_dict``), plus its decision id."""
    enc = d.enc
    decisions, slot = _named(decider.policy, d)
    members = [decider.decision_json(dec) for dec in decisions]
    code, date = enc.fields["code"], enc.fields["date"]
    texts = pc.binary_join_element_wise(
        b'{"line":', pa.array(enc.numbers).cast(pa.string()).cast(pa.binary()),
        _member("claim_id", enc.free["claim_id"]), _member("line_id", enc.free["line_id"]),
        b',"code":', _by_index([orjson.dumps(c) for c in code.values], code.idx),
        b',"date":', _by_index([_date_json(day) for day in date.values], date.idx),
        b',"decision_id":"', ids.cast(pa.binary()), b'",', _by_index(members, slot),
        b"}" + end, b"")
    return enc.numbers, texts


def json_answer(decider: Decider, d: Decided, ids: pa.Array, end: bytes) -> bytes:
    """Every line's JSON followed by ``end``, in line order: the good lines' made a column at a time, the
    errors' one by one (``LineResult.as_dict`` of each)."""
    numbers, texts = json_texts(decider, d, ids, end) if d.enc.rows else (np.zeros(0, np.int64),
                                                                          pa.array([], pa.binary()))
    if d.errors:
        errors = [orjson.dumps(LineResult(e.line or 0, None, None, e).as_dict()) + end for e in d.errors]
        numbers = np.concatenate([numbers, np.array([e.line or 0 for e in d.errors], np.int64)])
        texts = pa.concat_arrays([texts, pa.array(errors, pa.binary())])
        texts = texts.take(pa.array(np.argsort(numbers, kind="stable")))
    if not len(texts):
        return b""
    # the texts of an Arrow string array lie one after another in its data buffer: that is the answer
    offsets = np.frombuffer(texts.buffers()[1], np.int32, count=len(texts) + 1, offset=texts.offset * 4)
    return bytes(memoryview(texts.buffers()[2])[int(offsets[0]):int(offsets[-1])])


ANSWER_SCHEMA = DECISION_SCHEMA.append(pa.field("decision_id", pa.string())).append(
    pa.field("error", pa.string())).append(pa.field("field", pa.string()))


def table_answer(d: Decided, ids: pa.Array) -> pa.Table:
    """Every line's row (the batch engine's output columns, ``decision_id``, ``error``, ``field``), in line order.
    Text columns stay dictionaries, as the engine makes them (an Arrow stream sends each batch's dictionary)."""
    decided = d.answered.table()
    n = decided.num_rows
    good = decided.append_column("decision_id", ids).append_column(
        "error", pa.nulls(n, pa.string())).append_column("field", pa.nulls(n, pa.string()))
    if not d.errors:  # the engine's lines are in line order (``Encoded.concat`` keeps them so)
        return good
    columns = {f.name: pa.nulls(len(d.errors), f.type) for f in ANSWER_SCHEMA}
    columns["line"] = pa.array([e.line for e in d.errors], pa.int64())
    columns["error"] = pa.array([e.message for e in d.errors], pa.string())
    columns["field"] = pa.array([e.field for e in d.errors], pa.string())
    both = pa.concat_tables([good, pa.table(columns, schema=ANSWER_SCHEMA)]).unify_dictionaries()
    return both.take(pc.sort_indices(both["line"]))


# --- the log and the metrics ---

def answers_for_log(d: Decided, ids: pa.Array, mask: bool) -> list[Answer]:
    """One ``Answer`` a decided line, as the decision log's writer takes them (the record, the decision)."""
    numbers = d.enc.numbers
    if not len(numbers):
        return []
    records = d.read.records(numbers)
    if mask:  # the log drops masked fields of a record that is a mapping: every record must be one
        records = [r if isinstance(r, dict) else {} for r in records]
    seconds = d.seconds / max(1, len(numbers) + len(d.errors))
    decisions = d.decisions
    return [Answer(LineResult(n, None, decisions[k], None), i, b"", r, d.started, seconds)
            for n, k, i, r in zip(numbers.tolist(), d.slot.tolist(), ids.to_pylist(), records, strict=True)]


def decision_counts(d: Decided) -> list[tuple[Decision, int]]:
    counts = np.bincount(d.slot, minlength=len(d.decisions)).tolist() if len(d.slot) else []
    return [(dec, n) for dec, n in zip(d.decisions, counts, strict=True) if n]


# --- the answer's bytes ---

class _Sink:
    """A write-only stream that hands over what was written since the last look (for Arrow's writers)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        b = bytes(data)
        self.parts.append(b)
        self.size += len(b)
        return len(b)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class Encoder:
    """The answer's bytes, a batch at a time: JSON Lines, a JSON array, an Arrow IPC stream or Parquet."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.first = True
        self.sink = _Sink()
        self.writer: Any = None
        if fmt == "arrow":
            self.writer = ipc.new_stream(self.sink, ANSWER_SCHEMA)
        elif fmt == "parquet":
            self.writer = pq.ParquetWriter(self.sink, ANSWER_SCHEMA)

    def piece(self, decider: Decider, d: Decided, ids: pa.Array) -> bytes:
        if self.writer is not None:
            self.writer.write_table(table_answer(d, ids))
            return self.sink.take()
        if self.fmt == "jsonl":
            return json_answer(decider, d, ids, b"\n")
        text = json_answer(decider, d, ids, b",")[:-1]  # the results of a JSON array: commas between them
        if not text:
            return b""
        head, self.first = (b"[" if self.first else b","), False
        return head + text

    def end(self) -> bytes:
        if self.writer is not None:
            self.writer.close()
            return self.sink.take()
        return (b"[" if self.first else b"") + b"]" if self.fmt == "json" else b""


def rows_for(fmt: str) -> int:
    return JSON_ROWS if fmt in ("json", "jsonl") else COLUMN_ROWS

