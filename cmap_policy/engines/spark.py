"""Decide claim lines on Apache Spark, with the decisions of the interpreter itself.

    >>> from cmap_policy import load_policy
    >>> from cmap_policy.spark import evaluate
    >>> decided = evaluate(spark.read.parquet("claims/"), load_policy())
    >>> decided.groupBy("outcome").count().show()

``evaluate(df, policy, release=None)`` returns ``df`` with the decision columns
added: ``outcome``, ``reasons`` (reason codes joined by single spaces),
``period``, ``modality``, ``release``, ``policy_hash`` -- the names and values of
the batch engine -- and ``error`` and ``error_field``. A malformed line keeps
its row: its ``error`` says what is wrong, ``error_field`` names the field, and
its decision columns are null. So rows in = rows out, and ``split`` parts them
into decisions and errors.

Nothing of the decision is restated here. It comes from one definition, the
interpreter's, used as is by every engine:

- The line checks are those of ``lines.parse_line``, run by ``checks.check_value``
  (the batch engine's checks) once per distinct value of each checked column.
  The distinct values are gathered in one small job, checked on the driver and
  joined back from one broadcast lookup table. A claim file's codes, dates,
  modifiers and places of service take few values, so this costs one scan of
  those columns, and no Spark expression has to mimic Python's parsing. (A list
  of modifiers is checked as the list it is, as parse_line does.)
- The decision: each line's slot (``slots.SlotPolicy``: the code's row or gap
  on the date, the program's dated rules in force, the fields the row reads) is
  computed in Spark SQL from a broadcast table of the code's spans; one job
  gathers the distinct slots with one line each; the driver decides each with
  ``interpreter.evaluate``; a broadcast join spreads the decisions back. A claim
  file has thousands of distinct slots, however many lines it has.

The module needs pyspark (``pip install 'cmap-policy[spark]'``); the rest of
the package never imports it.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..errors import InputError
from ..interpreter import evaluate as evaluate_line
from ..lines import ALIASES, FIELDS, header_problem
from ..model import Policy
from ..reasons import DENIALS
from .batch import Summary, default_errors_path
from .checks import EPOCH, FREE_TEXT, LINE_COLUMNS, OUTPUTS, PRECEDENCE, check_value
from .slots import ACCEPTED, MISSING, NOT_READ, OUTCOMES, VALUE, Segment, SlotPolicy, claim_line

DECISION_COLUMNS = ("outcome", "reasons", "period", "modality", "release", "policy_hash")
ERROR_COLUMNS = ("error", "error_field")

# Python's str.strip() removes exactly these (str.isspace); Java's \s knows only six of them.
_WS = "[\\t\\n\\x0B\\f\\r\\x1C-\\x20\\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
_SQL_TYPES: dict[str, T.DataType] = {"VARCHAR": T.StringType(), "INTEGER": T.IntegerType(),
                                     "BIGINT": T.LongType(), "BOOLEAN": T.BooleanType()}
_ARROW_TO_SPARK: dict[pa.DataType, T.DataType] = {pa.string(): T.StringType(), pa.int32(): T.IntegerType(),
                                                  pa.bool_(): T.BooleanType()}
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_P = "__cmap_"  # prefix of the working columns, so that they never meet an input column's name


# --- the line checks: checks.check_value once per distinct value, joined back as lookup tables ---

def _key_type(dtype: T.DataType) -> bool:
    """Whether a column's values reach ``check_value`` as they are (else as text, which the checks then judge)."""
    if isinstance(dtype, T.ArrayType):
        return isinstance(dtype.elementType, (T.StringType, *_INTEGRAL))
    return isinstance(dtype, (T.StringType, T.BooleanType, T.FloatType, T.DoubleType, T.DateType, *_INTEGRAL))


def _as_key(col: Column, dtype: T.DataType) -> Column:
    # Timestamps, decimals, maps and the like have no counterpart in a JSON or CSV line: they are checked as
    # their text, so a timestamp is "not a date in the form YYYY-MM-DD" rather than a silent conversion.
    if _key_type(dtype):
        return col
    if isinstance(dtype, (T.ArrayType, T.MapType, T.StructType)):
        return F.to_json(col)
    return col.cast("string")


def _free_text(col: Column, dtype: T.DataType) -> Column:
    text = _as_key(col, dtype).cast("string") if not isinstance(dtype, T.StringType) else col
    trimmed = F.regexp_replace(text, f"^{_WS}+|{_WS}+$", "")
    return F.when(trimmed != "", trimmed)


@dataclass
class _Fields:
    """The input columns behind each line field, found by name as ``lines.parse_line`` finds them."""

    columns: dict[str, list[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def _fields(df: DataFrame) -> _Fields:
    out = _Fields()
    for name in df.columns:
        if name.startswith(_P):
            continue
        key = name.strip().lower()
        target = ALIASES.get(key, key)
        if target in FIELDS:
            out.columns.setdefault(target, []).append(name)
        else:
            out.unknown.append(name)
    return out


def _source(types: Mapping[str, T.DataType], names: list[str]) -> tuple[Column, T.DataType]:
    """One field's input: its column, or for a field given twice (a name and its alias) the last non-blank text."""
    if len(names) == 1:
        return F.col(_quote(names[0])), types[names[0]]
    texts = [_free_text(F.col(_quote(n)), types[n]) for n in names]
    return F.coalesce(*reversed(texts)), T.StringType()


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _sql_text(value: str) -> str:
    """A Spark SQL string literal of any text: hex-encoded, so that no quote or backslash needs escaping."""
    return f"CAST(X'{value.encode('utf-8').hex()}' AS STRING)"


def _sql_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return _sql_text(str(value))


def _text_of(value: Any) -> str:
    """A checked output as text, read back by a CAST to its column's type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# One lookup table serves every checked field, so that Spark broadcasts it once and reuses it for each
# join: a row per (field, distinct value), keyed by the field's name and the value's text, with the
# checked outputs in typed slots.
_SLOTS: dict[pa.DataType, tuple[str, ...]] = {pa.string(): ("s1", "s2", "s3", "s4"), pa.int32(): ("i1",),
                                              pa.bool_(): ("b1",)}
_LOOKUP_CELLS = (*(slot for slots in _SLOTS.values() for slot in slots), "err", "stage")
# The outputs travel as one array of texts, so that every join reads the same columns of the table:
# as separate columns (or a struct's fields) Spark prunes each join's copy differently and broadcasts
# each copy anew.
_LOOKUP_SCHEMA = T.StructType([T.StructField("key", T.StringType()),
                               T.StructField("v", T.ArrayType(T.StringType()))])


def _cell(join: str, cell: str) -> str:
    return f"{join}.v[{_LOOKUP_CELLS.index(cell)}]"


def _slots(name: str) -> list[tuple[str, str]]:
    """(output column, lookup slot) for each output of field ``name``."""
    used: dict[pa.DataType, int] = {}
    out = []
    for out_name, typ in OUTPUTS[name]:
        i = used.get(typ, 0)
        used[typ] = i + 1
        out.append((out_name, _SLOTS[typ][i]))
    return out


def _key_text(name: str, value: Column, dtype: T.DataType) -> Column:
    """The lookup key of a value of field ``name``: one text per field and distinct value, null included."""
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        value = F.when(value == 0, F.lit(0.0).cast(dtype)).otherwise(value)  # -0.0 and 0.0 are one value
    text = F.to_json(value) if isinstance(dtype, T.ArrayType) else value.cast("string")
    return F.when(value.isNull(), F.lit(name)).otherwise(F.concat(F.lit(name + ":"), text))


def _check(df: DataFrame, policy: Policy, *, line_no: Column, carry: Column, strict: bool) -> DataFrame:
    """The lines of ``df`` as the decision query reads them (``sqlrules.LINE_COLUMNS``), with the carried
    input and each line's first error (or null)."""
    spark = df.sparkSession
    fields = _fields(df)
    modalities = tuple(policy.program.modalities)
    types = {f.name: f.dataType for f in df.schema.fields}
    head = [line_no.cast("bigint").alias(f"{_P}line_no"), carry.alias(f"{_P}src")]
    nulls = ", ".join(f"CAST(NULL AS {_SQL_TYPES[typ].simpleString()}) AS {name}"
                      for name, typ in LINE_COLUMNS if name != "line_no")
    if strict and fields.unknown:
        # parse_line (and so the batch engine) fails every line of a file with a column it does not know
        message = f"unknown field (known: {', '.join(FIELDS)})"
        lines = spark.sql(f"SELECT {_P}line_no AS line_no, {nulls}, {_P}src, {_sql_text(message)} AS {_P}err, "
                          f"{_sql_text(fields.unknown[0])} AS {_P}err_field FROM {{input}}", input=df.select(*head))
        return lines

    sources = {name: _source(types, cols) for name, cols in fields.columns.items()}
    checked = [name for name in OUTPUTS if name in sources]
    work = list(head)
    for name in checked:
        col, dtype = sources[name]
        key_type = dtype if _key_type(dtype) else T.StringType()
        value = _as_key(col, dtype)
        work += [value.alias(f"{_P}in_{name}"), _key_text(name, value, key_type).alias(f"{_P}key_{name}")]
    for name in FREE_TEXT:
        work.append((_free_text(*sources[name]) if name in sources else F.lit(None).cast("string")).alias(name))
    inp = df.select(*work)

    # One small job gathers the distinct values of every checked column, with their keys; the driver
    # checks each once, as parse_line would.
    rows: list[tuple[Any, ...]] = []
    if checked:
        found = inp.agg(*(F.collect_set(F.struct(F.col(f"{_P}key_{name}"), F.col(f"{_P}in_{name}"))).alias(name)
                          for name in checked)).first()
        for name in checked:
            slots = _slots(name)
            for key, value in (found[name] if found is not None else []):
                outputs, error, stage = check_value(name, value, modalities)
                cells = {slot: out for (_, slot), out in zip(slots, outputs, strict=True)}
                cells.update(err=error, stage=stage)
                rows.append((key, [None if cells.get(c) is None else _text_of(cells[c]) for c in _LOOKUP_CELLS]))

    out: dict[str, str] = {}
    errors: dict[tuple[str, int], str] = {}
    for name in OUTPUTS:
        if name in checked:
            for out_name, slot in _slots(name):
                out[out_name] = _cell(f"k_{name}", slot)
            for stage in (0, 1):
                errors[(name, stage)] = (f"CASE WHEN {_cell(f'k_{name}', 'stage')} = '{stage}' "
                                         f"THEN {_cell(f'k_{name}', 'err')} END")
        else:
            outputs, error, stage = check_value(name, None, modalities)  # an absent column: every value is null
            for (out_name, _), value in zip(OUTPUTS[name], outputs, strict=True):
                out[out_name] = _sql_value(value)
            if error is not None:
                errors[(name, stage)] = _sql_text(error)
    for name in FREE_TEXT:
        out[name] = f"i.{name}"
    ordered = [(errors[key], key[0]) for key in PRECEDENCE if key in errors]
    first_error = f"COALESCE({', '.join(e for e, _ in ordered)})" if ordered else "NULL"
    first_field = (f"COALESCE({', '.join(f'CASE WHEN {e} IS NOT NULL THEN {_sql_text(n)} END' for e, n in ordered)})"
                   if ordered else "NULL")
    columns = ",\n  ".join(f"CAST({out[name]} AS {_SQL_TYPES[typ].simpleString()}) AS {name}"
                           for name, typ in LINE_COLUMNS if name != "line_no")
    joins = "\n".join(f"LEFT JOIN {{lookup}} AS k_{name} ON k_{name}.key = i.{_P}key_{name}" for name in checked)
    query = (f"SELECT i.{_P}line_no AS line_no,\n  {columns},\n  i.{_P}src,\n"
             f"  CAST({first_error} AS STRING) AS {_P}err,\n  CAST({first_field} AS STRING) AS {_P}err_field\n"
             f"FROM {{input}} AS i\n{joins}")
    lookup = F.broadcast(spark.createDataFrame(rows, _LOOKUP_SCHEMA))
    return spark.sql(query, input=inp, lookup=lookup)


# --- the decision: the interpreter, once per distinct slot ---

_SLOT_SCHEMA = T.StructType([
    # seg_code, not code: after the join every bare column name must be the line's
    T.StructField("seg_no", T.IntegerType()), T.StructField("seg_code", T.StringType()),
    T.StructField("lo", T.IntegerType()), T.StructField("hi", T.IntegerType()),
    T.StructField("reads_rcc", T.BooleanType()), T.StructField("reads_age", T.BooleanType()),
    T.StructField("age_lo", T.LongType()), T.StructField("age_hi", T.LongType()),
    T.StructField("reads_units", T.BooleanType()), T.StructField("max_units", T.LongType()),
    T.StructField("reads_est", T.BooleanType()), T.StructField("reads_types", T.BooleanType()),
    T.StructField("types", T.ArrayType(T.StringType())),
])
_KEYS = ("k_where", "k_bound", "k_mod1", "k_mod2", "k_mod3", "k_mod4", "k_pos", "k_claim_type", "k_modality",
         "k_rcc", "k_age", "k_units", "k_est", "k_type")


def _segments_frame(spark: SparkSession, segs: list[Segment]) -> DataFrame:
    rows = [(i, s.code, s.lo, s.hi, s.reads_rcc, s.age_range is not None,
             s.age_range[0] if s.age_range else 0, s.age_range[1] if s.age_range else 0,
             s.reads_units, s.max_units if s.max_units is not None else 0, s.reads_established,
             s.provider_types is not None, sorted(s.provider_types or ()))
            for i, s in enumerate(segs)]
    return F.broadcast(spark.createDataFrame(rows, _SLOT_SCHEMA))


def _slot_columns(slots: SlotPolicy) -> list[Column]:
    """The columns of ``slots.SlotPolicy.slots``, as Spark expressions: never null, so that they join as keys."""
    program = slots.policy.program
    day = F.col("day")
    bound = F.lit(0)
    for i, b in enumerate(slots.bounds.tolist(), 1):
        bound = F.when(day >= F.lit(int(b)), F.lit(i)).otherwise(bound)
    seg = F.col("s.seg_no")

    def known(col: str, values: Any) -> Column:
        return F.when(F.col(col).isin(list(values)), F.col(col)).otherwise(F.lit(""))

    def limit(reads: str, value: Column, ok: Column) -> Column:
        return (F.when(~F.coalesce(F.col(reads), F.lit(False)), F.lit(NOT_READ))
                .when(value.isNull(), F.lit(MISSING)).when(ok, F.lit(ACCEPTED))
                .otherwise(F.lit(VALUE) + value.cast("bigint")))

    age, units, est, ptype = F.col("member_age"), F.col("units"), F.col("established_patient"), F.col("provider_type")
    institutional = F.col("claim_type") == "institutional"
    return [
        # l.code: the segments (s) have a code column too
        F.when(seg.isNotNull(), seg.cast("string"))
        .otherwise(F.concat(F.lit("code:"), F.col("l.code"))).alias("k_where"),
        bound.alias("k_bound"),
        *(known(f"mod{i}", program.modifiers).alias(f"k_mod{i}") for i in range(1, 5)),
        known("pos", program.places_of_service).alias("k_pos"),
        F.col("claim_type").alias("k_claim_type"),
        F.coalesce(F.col("modality"), F.lit("")).alias("k_modality"),
        F.when(F.coalesce(F.col("s.reads_rcc"), F.lit(False)) & institutional,
               F.coalesce(F.concat(F.lit("rcc:"), F.col("rcc")), F.lit("none"))).otherwise(F.lit("")).alias("k_rcc"),
        limit("s.reads_age", age, (age >= F.col("s.age_lo")) & (age <= F.col("s.age_hi"))).alias("k_age"),
        limit("s.reads_units", units, units <= F.col("s.max_units")).alias("k_units"),
        limit("s.reads_est", est.cast("int"), F.lit(False)).alias("k_est"),
        (F.when(~F.coalesce(F.col("s.reads_types"), F.lit(False)), F.lit("-"))
         .when(ptype.isNull(), F.lit("")).when(F.array_contains(F.col("s.types"), ptype), F.lit("ok"))
         .otherwise(F.concat(F.lit("type:"), ptype))).alias("k_type"),
    ]


def _decide(df: DataFrame, policy: Policy, release: str | None, *, line_no: Column, carry: Column,
            strict: bool) -> DataFrame:
    """The checked lines with their decision columns, the carried input and the error columns.

    One job gathers the distinct slots of the checked lines (with one line of each); the driver decides
    each with the interpreter; a broadcast join spreads the decisions back to the lines.
    """
    slots = SlotPolicy(policy, release)
    lines = _check(df, policy, line_no=line_no, carry=carry, strict=strict)
    spark = df.sparkSession
    keyed = (lines.alias("l")
             .join(_segments_frame(spark, slots.segments).alias("s"),
                   (F.col("l.code") == F.col("s.seg_code")) & F.col("l.day").between(F.col("s.lo"), F.col("s.hi")),
                   "left")
             .select("l.*", *_slot_columns(slots)))
    fields = [name for name, _ in LINE_COLUMNS if name not in ("line_no", "line_id", "claim_id")]
    found = (keyed.where(F.col(f"{_P}err").isNull())
             .groupBy(*_KEYS).agg(F.first(F.struct(*fields)).alias("line")).collect())
    rows = []
    for row in found:
        rec = {**row["line"].asDict(), "line_id": None, "claim_id": None}
        d = evaluate_line(policy, claim_line(rec), release=slots.release)
        rows.append((*(row[k] for k in _KEYS), d.outcome.value, " ".join(d.reason_codes),
                     d.period.id if d.period else None, d.modality))
    schema = T.StructType([*(T.StructField(k, keyed.schema[k].dataType) for k in _KEYS),
                           *(T.StructField(c, T.StringType()) for c in ("outcome", "reasons", "period", "d_modality"))])
    answers = F.broadcast(spark.createDataFrame(rows, schema))
    decided = keyed.join(answers, list(_KEYS), "left")
    return decided.select(
        *(F.col(name) for name, _ in LINE_COLUMNS if name != "modality"),
        F.col(f"{_P}src"), F.col(f"{_P}err"), F.col(f"{_P}err_field"),
        F.col("outcome"), F.col("reasons"), F.col("period"), F.col("d_modality").alias("modality"),
        F.lit(slots.release).alias("release"), F.lit(policy.hash).alias("policy_hash"))


def evaluate(df: DataFrame, policy: Policy, *, release: str | None = None) -> DataFrame:
    """``df`` with the decision columns added; a malformed line keeps its row, with ``error`` set.

    ``df`` has a column per line field (``lines.FIELDS``, by name or alias, any
    case); other columns are carried through untouched. An input column named
    like a decision column is replaced by it -- including a stated ``modality``,
    for the decision names the modality it found (null when the line's signals
    conflict). Runs one small Spark job at once, to check the distinct values of
    the checked columns; the decisions themselves are computed lazily.
    """
    policy.release(release)  # an unknown release fails here, before any job
    added = {*DECISION_COLUMNS, *ERROR_COLUMNS}
    kept = [c for c in df.columns if c not in added]
    carry = F.struct(*(F.col(_quote(c)) for c in kept)) if kept else F.lit(None)
    decided = _decide(df, policy, release, line_no=F.lit(None), carry=carry, strict=False)
    ok = F.col(f"{_P}err").isNull()
    return decided.select(
        *(F.col(f"{_P}src").getField(c).alias(c) for c in kept),
        *(F.when(ok, F.col(c)).alias(c) for c in DECISION_COLUMNS),
        F.col(f"{_P}err").alias("error"),
        F.col(f"{_P}err_field").alias("error_field"),
    )


def split(decided: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(the decided lines, the malformed ones) of ``evaluate``'s result; together, every input line."""
    ok = F.col("error").isNull()
    return decided.where(ok).drop(*ERROR_COLUMNS), decided.where(~ok).drop(*DECISION_COLUMNS)


# --- files: what `cmap-policy eval --engine spark` runs ---

def _occurrences(reasons: Column, code: str) -> Column:
    return F.size(F.filter(reasons, lambda r: r == code))


def _metrics() -> list[Column]:
    ok = F.col(f"{_P}err").isNull()
    denied = ok & (F.col("outcome") == "not_payable")
    reasons = F.split(F.col("reasons"), " ")
    return [
        F.count(F.lit(1)).alias("read"),
        F.count(F.col(f"{_P}err")).alias("errors"),
        *(F.sum(F.when(ok & (F.col("outcome") == o), 1).otherwise(0)).alias(o)
          for o in OUTCOMES),
        *(F.sum(F.when(denied, _occurrences(reasons, code)).otherwise(0)).alias(code) for code in DENIALS),
    ]


def read_input(spark: SparkSession, path: str) -> tuple[DataFrame, bool]:
    """(the Parquet file or directory at ``path`` with each row's file and 1-based row, whether it is a directory)."""
    df = spark.read.parquet(path)
    meta = F.col("_metadata")
    return (df.select("*", meta.getField("file_path").alias(f"{_P}file"),
                      (meta.getField("row_index") + 1).alias(f"{_P}row")),
            _is_directory(spark, path))


def _is_directory(spark: SparkSession, path: str) -> bool:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.getFileStatus(hpath).isDirectory())


def run(spark: SparkSession, input_path: str, output: str, *, policy: Policy, release: str | None = None,
        errors_path: str | None = None) -> Summary:
    """Decide every line of the Parquet file or directory ``input_path`` into the Parquet directory ``output``.

    The output has the batch engine's columns; the errors (``line``, ``field``,
    ``error``) go to ``errors_path`` (default: beside ``output``, named as the
    batch engine names it), as a directory of JSON Lines files. When the input
    is a directory, both also name each line's ``file``.
    """
    started = time.perf_counter()
    policy.release(release)
    try:
        summary = _run(spark, input_path, output, policy=policy, release=release, errors_path=errors_path)
    except (PySparkException, Py4JError) as err:
        raise InputError(f"Spark could not read {input_path} or write {output}: {first_line(err)}") from None
    summary.elapsed = time.perf_counter() - started
    return summary


def _run(spark: SparkSession, input_path: str, output: str, *, policy: Policy, release: str | None,
         errors_path: str | None) -> Summary:
    raw, many = read_input(spark, input_path)
    inputs = [c for c in raw.columns if not c.startswith(_P)]
    file_name = F.regexp_extract(F.col(f"{_P}file"), r"([^/]*)$", 1)
    carry = F.struct(file_name.alias("file")) if many else F.lit(None)
    decided = _decide(raw.select(*(F.col(_quote(c)) for c in inputs), f"{_P}row", f"{_P}file"),
                                       policy, release, line_no=F.col(f"{_P}row"), carry=carry, strict=True)
    # the summary is counted while the decisions are written, not by another pass over the input
    observation = Observation("cmap_policy")
    observed = decided.observe(observation, *_metrics())
    lead = [F.col(f"{_P}src").getField("file").alias("file")] if many else []
    decisions = observed.where(F.col(f"{_P}err").isNull()).select(
        *lead, F.col("line_no").alias("line"), "line_id", "claim_id", "code",
        F.date_add(F.lit(EPOCH), F.col("day")).alias("date"), *DECISION_COLUMNS)
    decisions.write.mode("overwrite").parquet(output)
    metrics = observation.get
    summary = Summary(read=int(metrics["read"]), errors=int(metrics["errors"]))
    summary.decided = summary.read - summary.errors
    summary.outcomes = Counter({o: int(metrics[o] or 0) for o in OUTCOMES})
    summary.denied_by_reason = Counter({c: int(metrics[c] or 0) for c in DENIALS if metrics[c]})
    problem = header_problem(inputs, None)  # said once, as the batch engine says it, besides each row's error
    summary.header = problem.error if problem is not None else None
    err_path = errors_path or errors_path_for(output)
    errors = decided.where(F.col(f"{_P}err").isNotNull()).select(
        *lead, F.col("line_no").alias("line"), F.col(f"{_P}err_field").alias("field"),
        F.col(f"{_P}err").alias("error"))
    if not summary.errors:
        # no value failed a check: skip the pass over the input, but still leave an (empty) errors output
        errors = spark.createDataFrame([], errors.schema)
    errors.write.mode("overwrite").json(err_path)
    return summary


# --- the session ---

_QUIET_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
"""


def active_session() -> SparkSession | None:
    """The session a platform (spark-submit, Databricks, a notebook) already runs, if any."""
    return SparkSession.getActiveSession()


def session(master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The active Spark session, or a new one on ``master`` (default ``local[*]``) with Spark's chatter quieted.

    Under spark-submit, a Databricks job or an EMR step the session (and its
    master) already exists and is used as it is.
    """
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName("cmap-policy")
    from pyspark import SparkConf

    preset = SparkConf().get("spark.master")  # set by spark-submit
    chosen = master or preset or "local[*]"
    builder = builder.master(chosen)
    if chosen.startswith("local"):
        # a laptop or CI machine: stay on the loopback interface, no web UI, no progress bars on the terminal
        log4j = Path(tempfile.gettempdir()) / "cmap-policy-spark-log4j2.properties"
        log4j.write_text(_QUIET_LOG4J, encoding="utf-8")
        builder = (builder.config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile=file:{log4j}"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# --- `cmap-policy eval --engine spark` ---

def errors_path_for(output: str) -> str:
    """Where the errors of ``output`` go by default: beside it, named as the batch engine names them.

    Works on URIs too (``s3://bucket/decisions/`` gives ``s3://bucket/decisions.errors.jsonl``).
    """
    head, _, name = output.rstrip("/").rpartition("/")
    errors_name = default_errors_path(Path(name)).name
    return f"{head}/{errors_name}" if head or output.startswith("/") else errors_name

def is_uri(path: str) -> bool:
    """``s3://...``, ``hdfs:///...``, ``dbfs:/...``: a path for Spark's file systems, not this machine's."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", path) is not None


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def why_not_overwrite(path: str) -> str | None:
    """Why ``path`` must not be replaced by Spark's output (which deletes what is there), or None."""
    p = Path(path)
    if is_uri(path) or not p.exists():
        return None
    if p.is_file():
        return f"{path} is a file; Spark writes a directory of Parquet files: name a new directory"
    if any(p.iterdir()) and not (p / "_SUCCESS").exists():
        return f"{path} is a directory that is not an earlier Spark output; name a new or empty directory"
    return None
