"""The checks of ``lines.parse_line``, run once per distinct value of a column of claim lines.

A column of a batch has few distinct values (codes, dates, modifiers, places of
service), so each field is checked by ``lines.CHECKS`` -- the very functions
``parse_line`` calls -- once per distinct value, and the results are spread back to the
rows with an Arrow take. The checks stay exactly those of the reference, and cost next
to nothing. The Spark engine uses ``check_value`` in the same way.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LineError
from ..lines import CHECKS, FIELDS, MISSING, REQUIRED, canonical_field
from .slots import EPOCH

# What a checked batch of claim lines holds, as the engines read it. ``day`` is days since 1970-01-01;
# ``mod1``..``mod4`` are the line's modifiers in order (NULL when absent); ``claim_type`` is never NULL.
LINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("line_no", "BIGINT"),
    ("line_id", "VARCHAR"),
    ("claim_id", "VARCHAR"),
    ("code", "VARCHAR"),
    ("day", "INTEGER"),
    ("mod1", "VARCHAR"),
    ("mod2", "VARCHAR"),
    ("mod3", "VARCHAR"),
    ("mod4", "VARCHAR"),
    ("pos", "VARCHAR"),
    ("claim_type", "VARCHAR"),
    ("rcc", "VARCHAR"),
    ("modality", "VARCHAR"),
    ("member_age", "INTEGER"),
    ("provider_type", "VARCHAR"),
    ("units", "INTEGER"),
    ("established_patient", "BOOLEAN"),
)
ERROR_SCHEMA = pa.schema([("line", pa.int64()), ("field", pa.string()), ("error", pa.string())])
ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_()}
FREE_TEXT = ("provider_type", "line_id", "claim_id")  # trimmed text, checked in Arrow: any text passes
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


def check_value(name: str, value: Any, modalities: Collection[str]) -> tuple[tuple[Any, ...], str | None, int]:
    """(the value as columns, error message or None, stage) for one value of field ``name``, by ``lines.CHECKS``."""
    nothing = tuple(None for _ in OUTPUTS.get(name, ((name, None),)))
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
    """(lines with LINE_COLUMNS, errors) for a batch of columns as read from a file."""
    n = raw.num_rows
    numbers = line_numbers.cast(pa.int64())
    sources: dict[str, list[pa.ChunkedArray]] = {}
    for name_raw, col in zip(raw.column_names, raw.columns, strict=True):
        name = canonical_field(name_raw)
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
    target = ARROW_TYPES[sql_type]
    if pa.types.is_dictionary(arr.type) and target == pa.string():
        return arr
    return arr if arr.type == target else arr.cast(target)


def _empty_lines() -> pa.Table:
    return pa.schema([(name, ARROW_TYPES[typ]) for name, typ in LINE_COLUMNS]).empty_table()

