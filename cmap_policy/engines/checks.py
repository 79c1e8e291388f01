"""The checks of ``lines.parse_line``, run once per distinct value of a column of claim lines.

A column of a batch has few distinct values (codes, dates, modifiers, places of
service), so each field is checked by ``lines.CHECKS`` -- the very functions
``parse_line`` calls -- once per distinct value, and the results are spread back to the
rows with an Arrow take. The checks stay exactly those of the reference, and cost next
to nothing. The Spark engine uses ``check_value`` in the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LineError
from ..lines import CHECKS, FIELDS, MISSING, REQUIRED, canonical_field

EPOCH = dt.date(1970, 1, 1)  # day numbers count from here, as Arrow's date32 does

# What a checked batch of claim lines holds, as the engines read it. ``day`` is days since 1970-01-01;
# ``mod1``..``mod4`` are the line's modifiers in order (NULL when absent); ``claim_type`` is never NULL.
LINE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("line_no", pa.int64()),
    ("line_id", pa.string()),
    ("claim_id", pa.string()),
    ("code", pa.string()),
    ("day", pa.int32()),
    ("mod1", pa.string()),
    ("mod2", pa.string()),
    ("mod3", pa.string()),
    ("mod4", pa.string()),
    ("pos", pa.string()),
    ("claim_type", pa.string()),
    ("rcc", pa.string()),
    ("modality", pa.string()),
    ("member_age", pa.int32()),
    ("provider_type", pa.string()),
    ("units", pa.int32()),
    ("established_patient", pa.bool_()),
)
ERROR_SCHEMA = pa.schema([("line", pa.int64()), ("field", pa.string()), ("error", pa.string())])
# (field, stage) in the order parse_line meets them: the first failing one names the line's error. Stage 0 is
# a required field that is missing, which parse_line reports before it checks any value.
PRECEDENCE = (*((name, 0) for name in REQUIRED), *((name, 1) for name in CHECKS))
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


class Refused:
    """A value of a column the checks are not given: a type no claim line field has (a struct, a list where
    text belongs), or a value Arrow cannot hand to Python (a date past 9999, text that is not UTF-8)."""

    def __init__(self, message: str) -> None:
        self.message = message


def check_value(name: str, value: Any, modalities: Collection[str]) -> tuple[tuple[Any, ...], str | None, int]:
    """(the value as columns, error message or None, stage) for one value of field ``name``, by ``lines.CHECKS``."""
    nothing = tuple(None for _ in OUTPUTS.get(name, ((name, None),)))
    if isinstance(value, Refused):
        return nothing, value.message, 1
    if _blank(value):
        if name in REQUIRED:
            return nothing, MISSING, 0
        return (("professional",) if name == "claim_type" else nothing), None, 1
    try:
        checked = CHECKS[name](value, modalities)
    except LineError as err:
        return nothing, err.message, 1
    if name == "date":
        return ((checked - EPOCH).days,), None, 1
    if name == "modifiers":
        return (*checked, *([None] * (4 - len(checked)))), None, 1
    return (checked,), None, 1


def one_array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column as one Arrow array (chunks combined only when there are several)."""
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _python(values: pa.Array) -> list[Any]:
    """The distinct values of a column as Python values; one that Arrow cannot convert becomes a Refused."""
    try:
        return list(values.to_pylist())
    except (OverflowError, ValueError, UnicodeDecodeError, pa.ArrowException):
        pass
    out: list[Any] = []
    for i in range(len(values)):
        try:
            out.append(values[i].as_py())
        except UnicodeDecodeError:
            out.append(Refused("the text is not UTF-8"))
        except (OverflowError, ValueError, pa.ArrowException) as exc:
            what = "a date past 9999-12-31" if pa.types.is_temporal(values.type) else f"a value ({exc})"
            out.append(Refused(f"{what} cannot be read"))
    return out


# the escapes that make a list of texts one text with no two lists alike (modifiers are checked as lists,
# as parse_line checks a JSON list, and a column's distinct lists found by Arrow's hashing of text)
_ITEM, _NULL_ITEM = "\x1f", "\\N"


def _list_keys(col: pa.Array) -> pa.Array | None:
    """Each list of text or whole numbers as one text, or None for lists of anything else."""
    if pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        try:
            col = col.cast(pa.list_(col.type.value_type))
        except pa.ArrowException:
            return None
    if not pa.types.is_list(col.type):
        return None
    items = col.values
    if pa.types.is_dictionary(items.type):
        items = items.dictionary_decode()
    if not (pa.types.is_string(items.type) or pa.types.is_large_string(items.type)
            or pa.types.is_integer(items.type)):
        return None
    text = items.cast(pa.string())
    text = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), _ITEM, "\\u")
    text = pc.binary_join_element_wise(pa.scalar(_ITEM), pc.fill_null(text, _NULL_ITEM), "")
    # col.values holds only the items of this slice's lists once the offsets are rebased
    lists = pa.ListArray.from_arrays(pc.subtract(col.offsets, col.offsets[0]), text, mask=col.is_null())
    return pc.binary_join(lists, "")


def _from_key(key: str) -> list[str | None]:
    items = key.split(_ITEM)[1:]
    return [None if i == _NULL_ITEM else i.replace("\\u", _ITEM).replace("\\\\", "\\") for i in items]


def _distinct(name: str, col: pa.ChunkedArray | Refused, n: int) -> tuple[list[Any], np.ndarray]:
    """(the distinct values of a column, as Python values; each row's index into them, ``len(values)`` for a
    null row)."""
    if isinstance(col, Refused):
        return [col], np.zeros(n, np.int64)
    arr = one_array(col)
    kind = arr.type
    if pa.types.is_null(kind):
        return [], np.zeros(len(arr), np.int64)
    if name == "modifiers" and pa.types.is_dictionary(kind) and pa.types.is_nested(kind.value_type):
        arr = arr.dictionary_decode()
        kind = arr.type
    if pa.types.is_nested(kind) or pa.types.is_union(kind):
        keys = _list_keys(arr) if name == "modifiers" else None
        if keys is not None:
            encoded = pc.dictionary_encode(keys)
            values = [_from_key(k) for k in encoded.dictionary.to_pylist()]
            return values, indices_of(encoded.indices, len(values))
        what = "a list of modifiers, each text" if name == "modifiers" else "text or a number"
        refused = Refused(f"the column holds {kind} values; this field takes {what}")
        return [refused], _nulls_out(arr)
    narrow = _by_range(arr)
    if narrow is not None:
        return _python(narrow[0]), narrow[1]
    if not pa.types.is_dictionary(kind):
        try:
            arr = pc.dictionary_encode(arr)
        except pa.ArrowNotImplementedError:
            refused = Refused(f"the column holds {kind} values, which no field of a claim line takes")
            return [refused], _nulls_out(arr)
    values = _python(arr.dictionary)
    if _binary(arr.dictionary.type):  # bytes are read as UTF-8 text, as a CSV file's are
        values = [_utf8(v) for v in values]
    return values, indices_of(arr.indices, len(values))


def _nulls_out(arr: pa.Array) -> np.ndarray:
    """0 for each row that holds a value, 1 (one past the single value) for each null row."""
    out: np.ndarray = 1 - _valid(arr) if arr.null_count else np.zeros(len(arr), np.int64)
    return out


def _valid(arr: pa.Array) -> np.ndarray:
    """1 for each row that holds a value, 0 for each null row, as int64 (for ``pick``)."""
    out: np.ndarray = arr.is_valid().to_numpy(zero_copy_only=False).astype(np.int64)
    return out


def pick(cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
    """``np.where(cond, a, b)`` for whole numbers (``cond`` of booleans or 0/1), by arithmetic: numpy's
    ``where`` and masked assignment branch on each row and cost ten times as much on a random mask (measured:
    3.4 ms against 0.35 ms a pass for a million rows)."""
    out: np.ndarray = b + cond * (np.asarray(a) - b)
    return out


def _buffer_ints(arr: pa.Array) -> np.ndarray | None:
    """The values of a column of booleans, dates or whole numbers of 32 bits at most, as int64, read from Arrow's
    own buffer (``to_numpy`` goes through floating point when there are nulls), or None for any other type.
    A null row's slot in the buffer holds anything: callers blend it out."""
    kind, n = arr.type, len(arr)
    if pa.types.is_boolean(kind):
        bits = np.frombuffer(arr.buffers()[1], np.uint8)
        out: np.ndarray = np.unpackbits(bits, bitorder="little", count=arr.offset + n)[arr.offset:]
        return out.astype(np.int64)
    if pa.types.is_date32(kind) or (pa.types.is_integer(kind) and kind.bit_width <= 32):
        sign = "u" if pa.types.is_unsigned_integer(kind) else "i"
        raw = np.frombuffer(arr.buffers()[1], np.dtype(f"<{sign}{kind.bit_width // 8}"), count=arr.offset + n)
        return raw[arr.offset:].astype(np.int64)
    return None


def indices_of(indices: pa.Array, null: int) -> np.ndarray:
    """Integer indices (a dictionary array's) as numpy int64, ``null`` where the index is null."""
    n = len(indices)
    if indices.null_count == n:  # no row has a value (and the buffer of values may be absent)
        return np.full(n, null, np.int64)
    data = _buffer_ints(indices)
    if data is None:  # 64-bit indices
        data = indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return pick(_valid(indices), data, null) if indices.null_count else data


def _by_range(arr: pa.Array) -> tuple[pa.Array, np.ndarray] | None:
    """(every value from the least to the greatest; each row's offset from the least, the number of values
    for a null row) of a column of whole numbers, dates or booleans whose values lie close together, or None.

    Ages, units, dates and flags span a few hundred values at most, so numpy numbers them with a
    subtraction on Arrow's own buffer, where hashing each row would cost several times more. Values in the
    range that no row holds are checked too, which is harmless (no row points at them) and bounded.
    """
    n = len(arr)
    if not n or arr.null_count == n:
        return None
    data = _buffer_ints(arr)
    if data is None:  # 64-bit numbers may not fit the arithmetic below: hashed instead
        return None
    valid = _valid(arr) if arr.null_count else None
    if valid is not None:  # null rows take a value some row holds, so that they do not widen the range
        data = pick(valid, data, int(data[int(np.argmax(valid))]))
    lo, hi = int(data.min()), int(data.max())
    size = hi - lo + 1
    if size > min(NARROW_MAX, max(64, n // 16)):
        return None
    offsets = data - lo
    if valid is not None:
        offsets = pick(valid, offsets, size)
    kind = arr.type
    every = pa.array(np.arange(lo, hi + 1, dtype=np.int64))
    dictionary = every.cast(pa.int8()).cast(kind) if pa.types.is_boolean(kind) else (
        every.cast(pa.int32()).cast(kind) if pa.types.is_date32(kind) else every.cast(kind))
    return dictionary, offsets


TEXT_DICT = pa.dictionary(pa.int32(), pa.string())  # how the engines keep a column of text with few values
NARROW_MAX = 4096  # the widest range of values numbered by ``_by_range``


def _utf8(value: Any) -> Any:
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return Refused("the text is not UTF-8")


def _binary(kind: pa.DataType) -> bool:
    return bool(pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind))


def _textual(kind: pa.DataType) -> bool:
    """Text, whole numbers, or bytes (many Parquet writers store text as plain bytes): read as text."""
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
            or _binary(kind) or (pa.types.is_dictionary(kind) and _textual(kind.value_type)))


def _free_text(name: str, col: pa.ChunkedArray | Refused, modalities: Collection[str],
               n: int) -> tuple[pa.Array, pa.Array]:
    """(the trimmed text, null when blank; errors) of a free-text field. Text and whole numbers are trimmed in
    Arrow (``utf8_trim_whitespace`` trims what ``str.strip`` does); anything else, or text that is not
    UTF-8, is checked value by value by ``lines.CHECKS``."""
    arr = None if isinstance(col, Refused) else one_array(col)
    if arr is not None and _textual(arr.type):
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        try:
            text = arr.cast(pa.string())
            text.validate(full=True)  # Parquet text is not checked for UTF-8 when read
            trimmed = pc.utf8_trim_whitespace(text)
            out = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
            return out, pa.nulls(n, pa.string())
        except pa.ArrowInvalid:
            pass
    values, idx = _distinct(name, col, n)
    results = [check_value(name, v, modalities) for v in values]
    results.append(((None,), None, 1))
    indices = pa.array(idx)
    out = pa.array([r[0][0] for r in results], pa.string()).take(indices)
    errs = pa.array([r[1] for r in results], pa.string()).take(indices)
    return out, errs


def _combine(names: list[str], cols: list[pa.ChunkedArray]) -> pa.ChunkedArray | Refused:
    """One field given by several columns (a name and its alias): the last non-blank value wins, as in parse_line.
    Only columns of text (or whole numbers) are combined: any other kind refuses every row."""
    if not all(_textual(one_array(c).type) for c in cols):
        return Refused(f"the columns {', '.join(names)} give the same field, and only columns of text can be "
                       "combined")
    texts = []
    for c in cols:
        arr = one_array(c)
        arr = arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr
        try:
            trimmed = pc.utf8_trim_whitespace(arr.cast(pa.string()))
        except pa.ArrowInvalid:
            return Refused(f"the columns {', '.join(names)} give the same field, and one of them holds text that is "
                           "not UTF-8")
        texts.append(pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed))
    return pa.chunked_array([pc.coalesce(*reversed(texts))])


# --- a batch as distinct checked values ---

# The fields a batch is decided by, each kept as its distinct checked values (free text aside).
FIELDS_CHECKED = (*OUTPUTS, "provider_type")


@dataclass(frozen=True)
class Field:
    """One field of a batch: its distinct values, checked once each, and each row's index into them.

    ``values[i]`` is the checked value of the i-th distinct raw value (a tuple for modifiers, a day
    number for the date); the last entry is what a null or absent value checks to.
    """

    values: list[Any]
    idx: np.ndarray  # integers (int32 or int64), one per row
    errors: list[str | None]
    stages: list[int]

    def take(self, rows: np.ndarray) -> Field:
        return Field(self.values, self.idx[rows], self.errors, self.stages)

    def column(self, typ: pa.DataType) -> pa.Array:
        """The checked values row by row, as a column (text as a dictionary array: no copy of strings)."""
        values = pa.array(self.values, type=typ)
        if not pa.types.is_string(typ):
            return values.take(pa.array(self.idx))
        indices = self.idx.astype(np.int32, copy=False)
        if values.null_count:  # a null row is a null index, not an index to a null value
            nulls = values.is_null().to_numpy(zero_copy_only=False)[self.idx]
            return pa.DictionaryArray.from_arrays(pa.array(indices, mask=nulls), values.fill_null(""))
        return pa.DictionaryArray.from_arrays(pa.array(indices), values)


@dataclass(frozen=True)
class Encoded:
    """The good lines of a batch: their line numbers, each checked field as a ``Field``, and the free text."""

    numbers: np.ndarray  # int64 line numbers
    fields: dict[str, Field]
    free: dict[str, pa.Array]  # line_id, claim_id: trimmed text or null

    @property
    def rows(self) -> int:
        return len(self.numbers)

    def concat(self, other: Encoded) -> Encoded:
        """These lines and ``other``'s, in the order of their line numbers (a JSON Lines block read partly by
        Arrow and partly line by line is one batch again)."""
        if not other.rows:
            return self
        if not self.rows:
            return other
        numbers = np.concatenate([self.numbers, other.numbers])
        order = np.argsort(numbers, kind="stable")
        fields = {}
        for name, mine in self.fields.items():
            theirs = other.fields[name]
            idx = np.concatenate([mine.idx.astype(np.int64), theirs.idx.astype(np.int64) + len(mine.values)])
            fields[name] = Field([*mine.values, *theirs.values], idx[order], [*mine.errors, *theirs.errors],
                                 [*mine.stages, *theirs.stages])
        keep = pa.array(order)
        free = {name: pa.concat_arrays([self.free[name].cast(pa.string()),
                                        other.free[name].cast(pa.string())]).take(keep) for name in self.free}
        return Encoded(numbers[order], fields, free)

    def lines(self) -> pa.Table:
        """The lines as ``LINE_COLUMNS`` (the JSON Lines, X12 and Spark engines' shape; and for tests)."""
        f = self.fields
        mods = f["modifiers"]
        padded = [(*m, None, None, None, None)[:4] if m is not None else (None,) * 4 for m in mods.values]
        cols: dict[str, pa.Array] = {"line_no": pa.array(self.numbers, pa.int64()),
                                     "line_id": self.free["line_id"], "claim_id": self.free["claim_id"],
                                     "day": f["date"].column(pa.int32())}
        for i in range(4):
            cols[f"mod{i + 1}"] = Field([m[i] for m in padded], mods.idx, [], []).column(pa.string())
        for name in ("code", "pos", "claim_type", "rcc", "modality", "provider_type"):
            cols[name] = f[name].column(pa.string())
        for name in ("member_age", "units"):
            cols[name] = f[name].column(pa.int32())
        cols["established_patient"] = f["established_patient"].column(pa.bool_())
        return pa.table({name: _typed(cols[name], typ) for name, typ in LINE_COLUMNS})


def _field(name: str, col: pa.ChunkedArray | Refused, modalities: Collection[str], n: int) -> Field:
    values, idx = _distinct(name, col, n)
    results = [check_value(name, v, modalities) for v in values]
    results.append(check_value(name, None, modalities))  # for null rows
    if name == "modifiers":
        checked: list[Any] = [tuple(m for m in r[0] if m is not None) if r[1] is None else None for r in results]
    else:
        checked = [r[0][0] for r in results]
    return Field(checked, idx, [r[1] for r in results], [r[2] for r in results])


def encode(raw: pa.Table, line_numbers: pa.Array, modalities: Collection[str]) -> tuple[Encoded, pa.Table]:
    """(the good lines, errors) of a batch of columns as read from a file.

    Each field is checked once per distinct value by ``lines.CHECKS``; a line's error is the one
    ``parse_line`` would meet first (``PRECEDENCE``). The rows stay indices into the distinct values.
    """
    n = raw.num_rows
    numbers = line_numbers.cast(pa.int64()).to_numpy(zero_copy_only=False)
    sources: dict[str, list[tuple[str, pa.ChunkedArray]]] = {}
    for name_raw, col in zip(raw.column_names, raw.columns, strict=True):
        name = canonical_field(name_raw)
        if name not in FIELDS:  # parse_line fails every line on an unknown field
            message = f"unknown field (known: {', '.join(FIELDS)})"
            return _empty(), pa.table({"line": numbers, "field": pa.array([name_raw] * n, pa.string()),
                                       "error": pa.array([message] * n, pa.string())}, schema=ERROR_SCHEMA)
        sources.setdefault(name, []).append((name_raw, col))
    given = {name: (cols[0][1] if len(cols) == 1 else _combine([c for c, _ in cols], [c for _, c in cols]))
             for name, cols in sources.items()}
    null = pa.chunked_array([pa.nulls(n, pa.string())])
    fields = {name: _field(name, given.get(name, null), modalities, n) for name in FIELDS_CHECKED}
    free: dict[str, pa.Array] = {}
    free_errors: dict[str, pa.Array] = {}
    for name in ("line_id", "claim_id"):
        if name in given:
            free[name], free_errors[name] = _free_text(name, given[name], modalities, n)
        else:
            free[name] = pa.nulls(n, pa.string())
    # the first error of each row, in parse_line's order; most batches have none, and skip this
    err_msg: np.ndarray | None = None
    err_field: np.ndarray | None = None
    assigned = np.zeros(n, bool)
    for name, stage in PRECEDENCE:
        if name in free_errors:
            e = free_errors[name]
            if stage != 1 or e.null_count == n:
                continue
            has = e.is_valid().to_numpy(zero_copy_only=False)
            messages = np.array(e.to_pylist(), dtype=object)
        elif name in fields:
            f = fields[name]
            failing = np.array([m is not None and st == stage for m, st in zip(f.errors, f.stages, strict=True)])
            if not failing.any():
                continue
            has = failing[f.idx]
            if not has.any():
                continue
            messages = np.array(f.errors, dtype=object)[f.idx]
        else:
            continue
        if err_msg is None:
            err_msg, err_field = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
        assert err_field is not None
        take = has & ~assigned
        assigned |= take
        err_msg[take] = messages[take]
        err_field[take] = name
    if err_msg is None:
        return Encoded(numbers, fields, free), ERROR_SCHEMA.empty_table()
    bad = assigned
    assert err_field is not None
    errors_table = pa.table({"line": numbers[bad], "field": pa.array(err_field[bad].tolist(), pa.string()),
                             "error": pa.array(err_msg[bad].tolist(), pa.string())}, schema=ERROR_SCHEMA)
    good = np.flatnonzero(~bad)
    keep = pa.array(good)
    return (Encoded(numbers[good], {k: f.take(good) for k, f in fields.items()},
                    {k: v.take(keep) for k, v in free.items()}), errors_table)


def encode_lines(lines: pa.Table) -> Encoded:
    """A table of checked lines (``LINE_COLUMNS``: the JSON Lines and X12 readers' output) as ``Encoded``."""
    n = lines.num_rows

    def distinct(col: pa.ChunkedArray | pa.Array) -> tuple[list[Any], np.ndarray]:
        arr = one_array(col)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        enc = pc.dictionary_encode(arr)
        values = enc.dictionary.to_pylist()
        return [*values, None], pc.fill_null(enc.indices, len(values)).to_numpy(zero_copy_only=False).astype(np.int64)

    fields: dict[str, Field] = {}
    for name, column in (("code", "code"), ("date", "day"), ("pos", "pos"), ("claim_type", "claim_type"),
                         ("rcc", "rcc"), ("modality", "modality"), ("member_age", "member_age"),
                         ("units", "units"), ("established_patient", "established_patient"),
                         ("provider_type", "provider_type")):
        values, idx = distinct(lines[column])
        fields[name] = Field(values, idx, [], [])
    parts = [distinct(lines[f"mod{i}"]) for i in range(1, 5)]
    slot = np.zeros(n, np.int64)
    for values, idx in parts:  # squeezed after each column: the key never outgrows rows x values
        slot = first_rows(slot * len(values) + idx)[0]
    slot, firsts = first_rows(slot)
    mods = [tuple(v for v in (parts[k][0][int(parts[k][1][r])] for k in range(4)) if v is not None)
            for r in firsts.tolist()]
    fields["modifiers"] = Field(mods, slot, [], [])
    numbers = one_array(lines["line_no"]).to_numpy(zero_copy_only=False).astype(np.int64)
    return Encoded(numbers, fields, {"line_id": one_array(lines["line_id"]), "claim_id": one_array(lines["claim_id"])})


def first_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each row's distinct key, numbered by first appearance; the first row of each)."""
    if not len(key):
        return key.astype(np.int64), key.astype(np.int64)
    slot = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    # dictionary indices come in order of first appearance: a key's first row is where the running
    # maximum first reaches it
    firsts = np.flatnonzero(np.diff(np.maximum.accumulate(slot), prepend=-1) > 0)
    return slot, firsts


def _empty() -> Encoded:
    return encode_lines(_empty_lines())


def _typed(arr: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(arr.type) and target == pa.string():
        return arr
    return arr if arr.type == target else arr.cast(target)


def _empty_lines() -> pa.Table:
    return pa.schema(list(LINE_COLUMNS)).empty_table()

