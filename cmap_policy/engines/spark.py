"""Decide claim lines on Apache Spark, with the batch engine itself in Spark's Python workers.

    >>> from cmap_policy import load_policy
    >>> from cmap_policy.engines.spark import evaluate
    >>> decided = evaluate(spark.read.parquet("claims/"), load_policy())
    >>> decided.groupBy("outcome").count().show()

``evaluate(df, policy, release=None)`` returns ``df`` with the decision columns
added: ``outcome``, ``reasons`` (reason codes joined by single spaces),
``period``, ``modality``, ``release``, ``policy_hash`` -- the names and values of
the batch engine -- and ``error`` and ``error_field``. A malformed line keeps
its row: its ``error`` says what is wrong, ``error_field`` names the field, and
its decision columns are null. So rows in = rows out, and ``split`` parts them
into decisions and errors. ``run`` decides a Parquet file or directory into a
Parquet directory, as ``cmap-policy eval --engine spark`` does.

Why this shape: Spark does what it is good at -- reading, distributing,
writing -- and the decision is the batch engine's, ``batch.Engine.decide_raw``,
run by ``DataFrame.mapInArrow`` on each partition's Arrow record batches in
Spark's Python workers. So every engine has one definition of the checks
(``lines.CHECKS``, once per distinct value of each column of a batch) and of the
decision (the interpreter, once per distinct slot), at the batch engine's cost:
numpy look-ups per row, Python per distinct value. (An earlier version restated
the checks and the slots in Spark SQL, with lookup joins, a group-by on the
driver and broadcast joins back, and ran about fifty times slower.)

- The policy travels to the workers as data. ``Policy`` is not picklable, and
  nothing from data may run as code, so the driver ships the checked documents
  the policy was built from (``Policy.documents``) as JSON text with the policy
  hash, and each Python worker builds the Policy and its ``Engine`` once
  (``loader.build``, trusting the hash) and keeps them: Spark reuses its
  Python workers across tasks, so the decided slots last across the tasks a
  worker runs.
- Line numbers: the engine numbers a batch's rows 0..n-1, and its decisions
  and errors are mapped back through that index -- to the input row in
  ``evaluate``, to ``(file, row)`` in ``run`` (``read_input`` gives each row its
  file and 1-based row: a partition may hold rows of several small files).
- Partitions: Spark reads a Parquet row group in one task, so ``run`` spreads a
  scan of fewer partitions than the executors have cores (``spread``,
  ``spark.cmap_policy.partitions``): a file of one row group would otherwise be
  decided by one executor while the others wait.
- Types: Spark hands Arrow its own types; ``checks.encode`` checks a column of
  any Arrow type by ``lines.CHECKS`` and refuses, line by line, what no field
  takes.

The driver and every executor need the package with the ``batch`` extra
(pyarrow, numpy), since the executors' Python workers import this module;
the module needs pyspark (``pip install 'cmap-policy[spark]'``), which the rest
of the package never imports.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from py4j.protocol import Py4JError
from pyspark.errors import PySparkException, PythonException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..caches import Cache
from ..errors import InputError, PolicyError, Problem
from ..lines import FIELDS, canonical_field, header_problem
from ..load import loader
from ..model import Policy
from .batch import Engine, Summary, default_errors_path
from .checks import one_array
from .tables import chunks

DECISION_COLUMNS = ("outcome", "reasons", "period", "modality", "release", "policy_hash")
# the same on every row of a run: added by Spark as constants rather than sent from Python row by row (the
# hash alone is 64 characters a line through Arrow and back into the JVM)
_CONSTANT_COLUMNS = ("release", "policy_hash")
ERROR_COLUMNS = ("error", "error_field")
_P = "__cmap_"  # prefix of the working columns, so that they never meet an input column's name


# --- the policy, shipped to the Python workers as data ---

@dataclass(frozen=True)
class _Shipped:
    """What a worker builds the policy's Engine from: plain data, pickled with the function Spark ships."""

    root: str
    documents: str  # the checked documents of the policy tree, as JSON text (loader.as_data)
    hash: str
    release: str | None


def _ship(policy: Policy, release: str | None) -> _Shipped:
    """The policy as plain data: the checked documents it was built from (``Policy.documents``), so the workers
    decide by the very policy given, whatever has become of its tree since it was loaded."""
    if not policy.documents:
        raise PolicyError([Problem(policy.root, "", "this policy was not built by the loader, so it cannot be "
                                   "shipped to Spark's workers", "io", "load it with load_policy")])
    return _Shipped(policy.root, json.dumps(dict(policy.documents), separators=(",", ":")), policy.hash, release)


# A Python worker's engines, kept across the tasks it runs (keyed by tree, hash and release; a few at most).
_ENGINES: Cache[tuple[str, str, str | None], Engine] = Cache("spark.engines")


def _engine(shipped: _Shipped) -> Engine:
    key = (shipped.root, shipped.hash, shipped.release)
    engine = _ENGINES.get(key)
    if engine is None:
        documents = loader.from_data(json.loads(shipped.documents))
        engine = _ENGINES.put(key, Engine(loader.build(Path(shipped.root), *documents, known_hash=shipped.hash),
                                          shipped.release))
    return engine


# --- batches through the batch engine, and back to Spark's columns ---

def _decide(engine: Engine, table: pa.Table, columns: list[int]) -> tuple[pa.Table, pa.Table]:
    """(decisions, errors) of the ``columns`` of a table, each numbered by its row in the table (from 0)."""
    return engine.decide_raw(table.select(columns), pa.array(np.arange(table.num_rows, dtype=np.int64)))


def _text(col: pa.ChunkedArray | pa.Array, at: pa.Array | None = None) -> pa.Array:
    """An engine's text column (its rows ``at``, null where ``at`` is) as plain strings: Spark reads Arrow
    dictionaries as no type of its own."""
    arr = one_array(col)
    if at is not None:
        arr = arr.take(at)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr if arr.type == pa.string() else arr.cast(pa.string())


def _holder(lines: pa.ChunkedArray, n: int) -> pa.Array:
    """For each of a table's ``n`` rows, the engine's output row that holds it, or null."""
    at = np.full(n, -1, np.int64)
    at[one_array(lines).to_numpy()] = np.arange(len(lines))
    return pa.array(at, mask=at < 0)


def _evaluate_batches(shipped: _Shipped, fields: list[int], kept: list[int],
                      batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``evaluate`` in a Python worker: each row's carried columns, decision columns and error columns."""
    engine = _engine(shipped)
    for table in chunks(batches):
        n = table.num_rows
        decisions, errors = _decide(engine, table, fields)
        decided, failed = _holder(decisions["line"], n), _holder(errors["line"], n)
        yield from pa.Table.from_arrays(
            [*(table.column(i) for i in kept), *(_text(decisions[c], decided) for c in DECISION_COLUMNS),
             _text(errors["error"], failed), _text(errors["field"], failed)],
            names=[*(table.column_names[i] for i in kept), *DECISION_COLUMNS, *ERROR_COLUMNS]).to_batches()


def evaluate(df: DataFrame, policy: Policy, *, release: str | None = None) -> DataFrame:
    """``df`` with the decision columns added; a malformed line keeps its row, with ``error`` set.

    ``df`` has a column per line field (``lines.FIELDS``, by name or alias, any
    case); only those reach the checks, and every other column is carried
    through untouched, so a column the engine does not know is no error here.
    An input column named like a decision column is replaced by it -- including
    a stated ``modality``, for the decision names the modality it found (null
    when the line's signals conflict). Lazy, like any DataFrame: the policy
    policy is the one given (not its tree read again), and the lines are decided
    when the result is.
    """
    policy.release(release)  # an unknown release fails here, before any job
    shipped = _ship(policy, release)
    added = {*DECISION_COLUMNS, *ERROR_COLUMNS}
    fields = [i for i, name in enumerate(df.columns) if canonical_field(name) in FIELDS]
    kept = [i for i, name in enumerate(df.columns) if name not in added]
    schema = T.StructType([*(df.schema.fields[i] for i in kept),
                           *(T.StructField(c, T.StringType()) for c in (*DECISION_COLUMNS, *ERROR_COLUMNS))])
    return df.mapInArrow(partial(_evaluate_batches, shipped, fields, kept), schema)


def split(decided: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(the decided lines, the malformed ones) of ``evaluate``'s result; together, every input line."""
    ok = F.col("error").isNull()
    return decided.where(ok).drop(*ERROR_COLUMNS), decided.where(~ok).drop(*DECISION_COLUMNS)


# --- files: what `cmap-policy eval --engine spark` runs ---

# The rows of a run: decided and malformed lines alike (an error row has null decision columns), with the
# batch engine's output columns and the error's field and message (and the file's name first for a
# directory); and, in ``summary``, a row per table a worker decided with that table's counts (``batch.Summary``)
# as JSON, every other column null. Spark gathers those few rows while it writes the decisions, so the summary
# costs no pass over the lines.
_VARYING = tuple(c for c in DECISION_COLUMNS if c not in _CONSTANT_COLUMNS)
_RUN_COLUMNS = (("line", pa.int64()), ("line_id", pa.string()), ("claim_id", pa.string()), ("code", pa.string()),
                ("date", pa.date32()), *((c, pa.string()) for c in _VARYING),
                ("error_field", pa.string()), ("error", pa.string()), ("summary", pa.string()))
_OUTPUT_COLUMNS = [*(name for name, _ in _RUN_COLUMNS[:-3]), *_CONSTANT_COLUMNS]  # the batch engine's, in order
_SPARK_TYPES = {pa.int64(): T.LongType(), pa.string(): T.StringType(), pa.date32(): T.DateType()}


def _run_schema(many: bool) -> pa.Schema:
    return pa.schema([*((("file", pa.string()),) if many else ()), *_RUN_COLUMNS])


def _file_names(paths: pa.Array) -> pa.Array:
    """Each row's file name (the last part of its path), worked out once per distinct path."""
    distinct = pc.dictionary_encode(paths)
    names = pa.array([p.rpartition("/")[2] for p in distinct.dictionary.to_pylist()], pa.string())
    return names.take(distinct.indices)


def _run_rows(out: pa.Table, rows: pa.Array, files: pa.Array | None, schema: pa.Schema,
              decided: bool) -> pa.RecordBatch:
    """The engine's decisions (or errors) as rows of a run, named by the file and row of their line."""
    at = one_array(out["line"])
    cols = {name: pa.nulls(len(at), typ) for name, typ in _RUN_COLUMNS}
    if decided:
        cols.update({"line_id": _text(out["line_id"]), "claim_id": _text(out["claim_id"]), "code": _text(out["code"]),
                     "date": one_array(out["date"]), **{c: _text(out[c]) for c in _VARYING}})
    else:
        cols.update({"error_field": _text(out["field"]), "error": _text(out["error"])})
    cols["line"] = rows.take(at)
    if files is not None:
        cols["file"] = files.take(at)
    return pa.RecordBatch.from_pydict(cols, schema=schema)


def _summary_row(decisions: pa.Table, errors: int, schema: pa.Schema) -> pa.RecordBatch:
    counts = Summary()
    counts.add(decisions, errors)
    text = json.dumps({"read": counts.read, "errors": counts.errors, "outcomes": counts.outcomes,
                       "denied_by_reason": counts.denied_by_reason})
    return pa.RecordBatch.from_pydict({f.name: pa.array([text if f.name == "summary" else None], f.type)
                                       for f in schema}, schema=schema)


def _run_batches(shipped: _Shipped, inputs: list[int], row_at: int, file_at: int | None,
                 batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``run`` in a Python worker: a table's decided rows, its malformed ones, and its summary row."""
    engine = _engine(shipped)
    schema = _run_schema(file_at is not None)
    for table in chunks(batches):
        decisions, errors = _decide(engine, table, inputs)
        rows = one_array(table.column(row_at))
        files = _file_names(one_array(table.column(file_at))) if file_at is not None else None
        for out, decided in ((decisions, True), (errors, False)):
            if out.num_rows:
                yield _run_rows(out, rows, files, schema, decided)
        yield _summary_row(decisions, errors.num_rows, schema)


def _summary(parts: list[str]) -> Summary:
    """The run's summary: the sum of its tables' counts."""
    summary = Summary()
    for part in parts:
        counts = json.loads(part)
        summary.read += counts["read"]
        summary.errors += counts["errors"]
        summary.outcomes.update(counts["outcomes"])
        summary.denied_by_reason.update(counts["denied_by_reason"])
    summary.decided = summary.read - summary.errors
    return summary


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


# How many partitions the lines are decided in: "auto" (the default) or a whole number (0: as read).
PARTITIONS_CONF = "spark.cmap_policy.partitions"


def spread(spark: SparkSession, df: DataFrame) -> DataFrame:
    """``df`` in enough partitions to keep every executor core busy.

    Spark reads a Parquet row group in one task, so a file of one row group, or a
    few large files, arrive as fewer partitions than the cluster has cores, and
    the decisions (the costly part, in the Python workers) would run on that few
    while the other cores wait. ``auto``: when the scan has fewer partitions than
    the session's ``defaultParallelism`` (the executors' cores), a round-robin
    ``repartition`` to that many -- one shuffle of the input columns, cheap beside
    the decisions; otherwise the input is decided as it was read. A whole number
    ``N`` in ``spark.cmap_policy.partitions`` always repartitions to ``N`` (for an
    input that the scan splits into byte ranges without rows, such as one row
    group larger than ``spark.sql.files.maxPartitionBytes``); ``0`` never does.
    """
    setting = (spark.conf.get(PARTITIONS_CONF, "auto") or "auto").strip()
    if setting == "auto":
        cores = spark.sparkContext.defaultParallelism
        return df.repartition(cores) if df.rdd.getNumPartitions() < cores else df
    if not setting.isdigit():
        raise InputError(f"{PARTITIONS_CONF} is {setting!r}: give auto, or a whole number of partitions (0: as read)")
    wanted = int(setting)
    return df.repartition(wanted) if wanted else df


def run(spark: SparkSession, input_path: str, output: str, *, policy: Policy, release: str | None = None,
        errors_path: str | None = None) -> Summary:
    """Decide every line of the Parquet file or directory ``input_path`` into the Parquet directory ``output``.

    The output has the batch engine's columns; the errors (``line``, ``field``,
    ``error``) go to ``errors_path`` (default: beside ``output``, named as the
    batch engine names it), as a directory of JSON Lines files. When the input
    is a directory, both also name each line's ``file``. As strict as the batch
    engine: a column that names no line field fails every line.
    """
    started = time.perf_counter()
    constants = {"release": policy.release(release).id, "policy_hash": policy.hash}  # an unknown release fails here
    shipped = _ship(policy, release)
    try:
        summary = _run(spark, input_path, output, shipped, constants, errors_path=errors_path)
    except (PySparkException, Py4JError) as err:
        raise InputError(f"Spark could not decide {input_path} into {output}: {_why(err)}") from None
    summary.elapsed = time.perf_counter() - started
    return summary


def _why(err: BaseException) -> str:
    """What went wrong, in one line: for a Python worker's failure, the exception its traceback ends with (Spark
    often wraps it in a job's failure, whose first line says only which task failed)."""
    lines = str(err).strip().splitlines()
    for at, line in enumerate(lines):
        if "Traceback (most recent call last)" in line:
            raised = next((x for x in lines[at + 1:] if x.strip() and not x[0].isspace()), None)
            if raised is not None:
                return raised.strip()
    if isinstance(err, PythonException):
        shown = [line for line in lines if line.strip()]
        if shown:
            return shown[-1].strip()
    return first_line(err)


def _run(spark: SparkSession, input_path: str, output: str, shipped: _Shipped, constants: dict[str, str], *,
         errors_path: str | None) -> Summary:
    raw, many = read_input(spark, input_path)
    if not many:
        raw = raw.drop(f"{_P}file")
    raw = spread(spark, raw)  # after read_input: each row keeps the file and row number the scan gave it
    names = raw.columns
    row_at, file_at = names.index(f"{_P}row"), names.index(f"{_P}file") if many else None
    inputs = [i for i in range(len(names)) if i not in (row_at, file_at)]  # all of them: unknown ones fail lines
    schema = _run_schema(many)
    rows = raw.mapInArrow(partial(_run_batches, shipped, inputs, row_at, file_at),
                          T.StructType([T.StructField(f.name, _SPARK_TYPES[f.type]) for f in schema]))
    lead = ["file"] if many else []
    line = F.col("line").isNotNull()  # not a summary row
    observation = Observation("cmap_policy")
    (rows.observe(observation, F.collect_list("summary").alias("summary"))
     .where(line & F.col("error").isNull())
     .select(*lead, *(F.lit(constants[c]).alias(c) if c in constants else F.col(c) for c in _OUTPUT_COLUMNS))
     .write.mode("overwrite").parquet(output))
    summary = _summary(observation.get["summary"])
    # said once, as the batch engine says it, besides each row's error
    problem = header_problem([names[i] for i in inputs], None)
    summary.header = problem.error if problem is not None else None
    errors = rows.where(line & F.col("error").isNotNull()).select(
        *lead, "line", F.col("error_field").alias("field"), "error")
    if not summary.errors:
        # no line failed a check: skip the second pass over the input, but still leave an (empty) errors output
        errors = spark.createDataFrame([], errors.schema)
    errors.write.mode("overwrite").json(errors_path or errors_path_for(output))
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
    """The active Spark session, or a new one on ``master`` (default ``local[*]``) with Spark's chatter quieted
    (and, in local mode, Python workers that run this interpreter unless ``$PYSPARK_PYTHON`` names another).

    Under spark-submit, a Databricks job or an EMR step the session (and its
    master) already exists and is used as it is.
    """
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName("cmap-policy")
    # Under spark-submit (or the pyspark shell) the JVM is already running, with the master and every --conf
    # of the command line: the session takes them from it. Asking pyspark's SparkConf for the master does not
    # work here, since it sees the JVM's settings only once a SparkContext exists, so a job submitted to a
    # cluster would silently run in local mode.
    launched = "PYSPARK_GATEWAY_PORT" in os.environ
    chosen = master or (None if launched else "local[*]")
    if chosen is not None:
        builder = builder.master(chosen)
    if chosen is not None and chosen.startswith("local"):
        # Spark's Python workers run $PYSPARK_PYTHON, else whatever `python3` is first on the PATH, which need not
        # have this package: on one machine they run this very interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # a laptop or CI machine: stay on the loopback interface, no web UI, no progress bars on the terminal
        log4j = Path(tempfile.gettempdir()) / "cmap-policy-spark-log4j2.properties"
        log4j.write_text(_QUIET_LOG4J, encoding="utf-8")
        builder = (builder.config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile=file:{log4j}"))
    # Arrow batches of 100,000 rows to the Python workers (Spark's default is 10,000): the engine's cost is
    # per distinct value of a batch, so larger batches cost less per line (``tables.chunks`` gathers them too)
    builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
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
