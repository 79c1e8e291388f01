"""The Spark engine gives the interpreter's decisions and errors, line for line, in Spark local mode.

Each Spark job costs seconds, so every test decides many lines at once: one
session for the whole run, a few hundred generated lines per generated policy.
Without pyspark or Java these tests are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from cmap_policy import LineError, evaluate, load_policy, parse_line
from cmap_policy.cli import main
from cmap_policy.errors import InputError
from cmap_policy.model import Policy
from cmap_policy.testing import PolicyTree, write_tree
from cmap_policy.testing.claims import random_records
from cmap_policy.testing.strategies import claim_records, policy_trees

from .spark_support import require_spark

require_spark()

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from cmap_policy.engines import spark as engine  # noqa: E402

FIELDS = ("line_id", "claim_id", "code", "date", "modifiers", "pos", "claim_type", "rcc", "modality", "member_age",
          "provider_type", "units", "established_patient")
TEXT_SCHEMA = ", ".join(f"{f} string" for f in FIELDS)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = engine.session("local[2]", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def bundled() -> Policy:
    return load_policy()


def _text(value: Any) -> str | None:
    """A record's value as a CSV cell would hold it."""
    if value is None:
        return None
    if isinstance(value, list):
        return " ".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _text_frame(spark: SparkSession, records: list[dict[str, Any]]) -> DataFrame:
    return spark.createDataFrame([tuple(_text(r.get(f)) for f in FIELDS) for r in records], TEXT_SCHEMA)


def _want(policy: Policy, record: dict[str, Any], release: str | None) -> tuple[Any, ...]:
    """What the interpreter makes of a record: its decision, or its error."""
    try:
        line = parse_line({k: v for k, v in record.items() if v is not None}, policy.program)
    except LineError as err:
        return ("error", err.field, err.message)
    d = evaluate(policy, line, release=release)
    return (d.outcome.value, " ".join(d.reason_codes), d.period.id if d.period else None, d.modality, d.release,
            d.policy_hash)


def _got(row: dict[str, Any]) -> tuple[Any, ...]:
    if row["error"] is not None:
        assert row["outcome"] is None and row["reasons"] is None
        return ("error", row["error_field"], row["error"])
    return (row["outcome"], row["reasons"], row["period"], row["modality"], row["release"], row["policy_hash"])


def _compare(policy: Policy, records: list[dict[str, Any]], rows: list[dict[str, Any]],
             release: str | None) -> list[str]:
    """Every line where Spark and the interpreter disagree (lines are matched by line_id)."""
    by_id = {r["line_id"]: r for r in rows}
    assert len(by_id) == len(rows) == len(records), "a line was lost or doubled"
    return [f"{rec}: spark {_got(by_id[rec['line_id']])} != interpreter {_want(policy, rec, release)}"
            for rec in records if _got(by_id[rec["line_id"]]) != _want(policy, rec, release)]


def test_generated_policies_and_lines_agree_with_the_interpreter(spark: SparkSession) -> None:
    """10 generated policies, each with a few hundred lines (Hypothesis' and messy random ones), one job each."""
    cases: list[tuple[PolicyTree, list[dict[str, Any]], int, str | None]] = []

    # Hypothesis draws the cases; Spark then decides each case's lines in one job. No shrinking: a failure
    # lists every line that disagrees, which says more than a shrunk example would, at a fraction of the jobs.
    @settings(max_examples=10, phases=[Phase.explicit, Phase.generate], database=None)
    @given(data=st.data())
    def draw(data: st.DataObject) -> None:
        tree = data.draw(policy_trees(), label="tree")
        records = data.draw(st.lists(claim_records(tree), min_size=1, max_size=40), label="records")
        seed = data.draw(st.integers(0, 2**16), label="seed")
        release = data.draw(st.sampled_from([None, *(r["id"] for r in tree.releases["releases"])]), label="release")
        cases.append((tree, records, seed, release))

    draw()
    assert len(cases) >= 8
    for tree, records, seed, release in cases:
        with tempfile.TemporaryDirectory() as tmp:
            policy = load_policy(write_tree(tree, Path(tmp) / "policy"))
        lines = [*records, *random_records(policy, 300, seed=seed, messy=0.03)]
        lines = [{**{k: _text(v) for k, v in rec.items()}, "line_id": f"L{i}"} for i, rec in enumerate(lines)]
        rows = [r.asDict() for r in engine.evaluate(_text_frame(spark, lines), policy, release=release).collect()]
        wrong = _compare(policy, lines, rows, release)
        assert not wrong, f"{len(wrong)} of {len(lines)} lines disagree, e.g.\n" + "\n".join(wrong[:5])


def test_typed_columns_agree_with_the_interpreter(spark: SparkSession, bundled: Policy) -> None:
    """Dates as DATE, modifiers as arrays, ages as integers, units as doubles, booleans: as parse_line reads them."""
    records = list(random_records(bundled, 400, seed=11))
    for i, rec in enumerate(records):
        rec["line_id"] = f"L{i}"
        rec["date"] = dt.date.fromisoformat(rec["date"])
        rec["modifiers"] = rec["modifiers"].split() if rec["modifiers"] else ([] if i % 2 else None)
        rec["member_age"] = int(rec["member_age"]) if rec["member_age"] else None
        rec["units"] = float(rec["units"]) + (0.5 if i % 50 == 0 else 0) if rec["units"] else None
        rec["established_patient"] = {"true": True, "yes": True, "false": False, "no": False}.get(
            rec["established_patient"])
        rec["pos"] = rec["pos"] or None
    schema = ("line_id string, code string, date date, modifiers array<string>, pos string, member_age bigint, "
              "units double, established_patient boolean")
    df = spark.createDataFrame([tuple(r[c.split()[0]] for c in schema.split(", ")) for r in records], schema)
    rows = [r.asDict() for r in engine.evaluate(df, bundled).collect()]
    wanted = [{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()
               if k in df.columns} for r in records]
    wrong = _compare(bundled, wanted, rows, None)
    assert not wrong, "\n".join(wrong[:5])
    fractional = sum(1 for r in records if r["units"] is not None and r["units"] % 1)
    assert fractional and sum(r["error"] is not None for r in rows) == fractional  # 3.5 units: not a whole number


def test_malformed_lines_are_reported_not_dropped(spark: SparkSession, bundled: Policy) -> None:
    records: list[dict[str, Any]] = [
        {"line_id": "ok", "code": "T1016", "date": "2026-01-05", "modifiers": "93"},
        {"line_id": "bad-date", "code": "T1016", "date": "2026-02-30", "modifiers": "93"},
        {"line_id": "date-shape", "code": "T1016", "date": "01/05/2026"},
        {"line_id": "no-code", "code": None, "date": "2026-01-05", "modifiers": "95"},
        {"line_id": "blank-code", "code": "  ", "date": "2026-01-05"},
        {"line_id": "no-date", "code": "90791"},
        {"line_id": "code-shape", "code": "9079", "date": "2026-01-05"},
        {"line_id": "five-modifiers", "code": "90791", "date": "2026-01-05", "modifiers": "95 GT 93 25 59"},
        {"line_id": "modifier-shape", "code": "90791", "date": "2026-01-05", "modifiers": "95,XYZ"},
        {"line_id": "age", "code": "90791", "date": "2026-01-05", "member_age": "4.5"},
        {"line_id": "claim-type", "code": "90791", "date": "2026-01-05", "claim_type": "dental"},
        {"line_id": "two-errors", "code": "ABCDEF", "date": "2026-02-30"},
        {"line_id": "quote's", "code": "90791", "date": "2026-01-05", "modality": "it's \\ odd"},
    ]
    df = _text_frame(spark, records).withColumn("member_id", F.lit("M1"))  # an extra column is carried
    decided = engine.evaluate(df, bundled)
    rows = [r.asDict() for r in decided.collect()]
    assert _compare(bundled, records, rows, None) == []
    assert all(r["member_id"] == "M1" for r in rows)
    decisions, errors = engine.split(decided)
    assert (decisions.count(), errors.count()) == (1, len(records) - 1)
    by_id = {r["line_id"]: r for r in rows}
    assert (by_id["two-errors"]["error_field"], by_id["no-date"]["error_field"]) == ("code", "date")


def test_a_parquet_directory_of_several_files(spark: SparkSession, bundled: Policy, tmp_path: Path) -> None:
    """The CLI on a directory: every line of every file decided or reported, named by file and line."""
    src = tmp_path / "claims"
    src.mkdir()
    files: dict[str, list[dict[str, Any]]] = {}
    for k in range(3):
        recs = [{f: _text(r.get(f)) for f in FIELDS}
                for r in random_records(bundled, 200 + 50 * k, seed=20 + k, messy=0.05)]
        files[f"part-{k}.parquet"] = recs
        pq.write_table(pa.table({f: pa.array([r[f] for r in recs], pa.string()) for f in FIELDS}),
                       src / f"part-{k}.parquet")
    out, errs = tmp_path / "decided", tmp_path / "errors"
    result = CliRunner().invoke(main, ["eval", "--engine", "spark", str(src), "-o", str(out), "--errors", str(errs)])
    assert result.exit_code == 1, result.output  # some lines are malformed on purpose
    assert "could not be decided" in result.output and "Traceback" not in result.output
    decided = pq.read_table(out).to_pylist()
    errors = [json.loads(line) for p in sorted(errs.glob("*.json")) for line in p.open(encoding="utf-8")]
    total = sum(len(recs) for recs in files.values())
    assert len(decided) + len(errors) == total and errors
    seen = set()
    for row in decided:
        rec = files[row["file"]][row["line"] - 1]
        assert row["line_id"] == rec["line_id"] and row["date"] == dt.date.fromisoformat(rec["date"])
        assert (row["outcome"], row["reasons"], row["period"], row["modality"], row["release"],
                row["policy_hash"]) == _want(bundled, rec, None)
        seen.add((row["file"], row["line"]))
    for err in errors:
        rec = files[err["file"]][err["line"] - 1]
        assert ("error", err["field"], err["error"]) == _want(bundled, rec, None)
        seen.add((err["file"], err["line"]))
    assert len(seen) == total


def test_same_output_as_the_batch_engine(spark: SparkSession, bundled: Policy, tmp_path: Path) -> None:
    """One typed Parquet file through both engines' CLI: the same rows, columns and errors."""
    recs = list(random_records(bundled, 1000, seed=31, messy=0.02))
    table = pa.table({
        "line_id": [r["line_id"] for r in recs],
        "claim_id": [f"C{i // 3}" for i in range(len(recs))],
        "code": [r["code"] for r in recs],
        "date": [r["date"] for r in recs],
        # split as parse_line splits a string: the batch engine checks a list as that string's parts
        "modifiers": pa.array([re.split(r"[\s,;:|]+", r["modifiers"]) if r["modifiers"] else None for r in recs],
                              pa.list_(pa.string())),
        "pos": [r["pos"] or None for r in recs],
        "claim_type": [r["claim_type"] or None for r in recs],
        "rcc": [r["rcc"] or None for r in recs],
        "member_age": [r["member_age"] or None for r in recs],
        "units": [r["units"] or None for r in recs],
    })
    pq.write_table(table, tmp_path / "in.parquet")
    runner = CliRunner()
    batched = runner.invoke(main, ["eval", "--engine", "batch", str(tmp_path / "in.parquet"),
                                   "-o", str(tmp_path / "batch.parquet")])
    spk = runner.invoke(main, ["eval", "--engine", "spark", str(tmp_path / "in.parquet"),
                               "-o", str(tmp_path / "spark.parquet")])
    assert batched.exit_code == spk.exit_code == 1, (batched.output, spk.output)
    got = sorted(pq.read_table(tmp_path / "spark.parquet").to_pylist(), key=lambda r: r["line"])
    want = pq.read_table(tmp_path / "batch.parquet").to_pylist()
    assert got == want
    assert pq.read_schema(next((tmp_path / "spark.parquet").glob("*.parquet"))).names == \
        pq.read_schema(tmp_path / "batch.parquet").names
    spark_errors = sorted((json.loads(x) for p in (tmp_path / "spark.errors.jsonl").glob("*.json") for x in p.open()),
                          key=lambda e: e["line"])
    batch_errors = [json.loads(x) for x in (tmp_path / "batch.errors.jsonl").open()]
    assert spark_errors == batch_errors
    assert spk.output.splitlines()[:6] == batched.output.splitlines()[:6]  # the same summary counts


def test_a_file_of_one_row_group_is_spread_over_every_core(spark: SparkSession, tmp_path: Path) -> None:
    """Spark reads a row group in one task: the engine repartitions to the session's cores, or as configured."""
    pq.write_table(pa.table({"code": ["90791"] * 1000, "date": ["2026-01-05"] * 1000}), tmp_path / "one.parquet")
    df = spark.read.parquet(str(tmp_path / "one.parquet"))
    assert df.rdd.getNumPartitions() == 1
    cores = spark.sparkContext.defaultParallelism
    assert cores == 2 and engine.spread(spark, df).rdd.getNumPartitions() == cores
    try:
        for setting, partitions in (("3", 3), ("0", 1), (" auto ", cores)):
            spark.conf.set(engine.PARTITIONS_CONF, setting)
            assert engine.spread(spark, df).rdd.getNumPartitions() == partitions, setting
        spark.conf.set(engine.PARTITIONS_CONF, "two")
        with pytest.raises(InputError, match=r"spark.cmap_policy.partitions is 'two': give auto, or a whole"):
            engine.spread(spark, df)
    finally:
        spark.conf.unset(engine.PARTITIONS_CONF)
    # the decisions of a spread file keep each line's number (the scan's row index, taken before the shuffle)
    out = tmp_path / "out"
    summary = engine.run(spark, str(tmp_path / "one.parquet"), str(out), policy=load_policy())
    rows = pq.read_table(out).to_pylist()
    assert summary.read == 1000 and sorted(r["line"] for r in rows) == list(range(1, 1001))
    assert sum(1 for p in out.glob("part-*.parquet") if pq.read_metadata(p).num_rows) == cores


def test_cli_errors_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["eval", "--engine", "spark", str(tmp_path / "nope"), "-o", str(tmp_path / "o")])
    assert missing.exit_code == 1 and "no such file or directory" in missing.output
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious.txt").write_text("x")
    (tmp_path / "in.parquet").write_bytes(b"")
    refused = runner.invoke(main, ["eval", "--engine", "spark", str(tmp_path / "in.parquet"), "-o",
                                   str(tmp_path / "keep")])
    assert refused.exit_code == 2 and "not an earlier Spark output" in refused.output
    assert (tmp_path / "keep" / "precious.txt").exists()
    stdout = runner.invoke(main, ["eval", "--engine", "spark", str(tmp_path / "in.parquet")])
    assert stdout.exit_code == 2 and "give -o OUTPUT" in stdout.output
    python = runner.invoke(main, ["eval", str(tmp_path), "-o", str(tmp_path / "x.jsonl")])
    assert python.exit_code == 2 and "only --engine spark" in python.output
    assert "Traceback" not in missing.output + refused.output + stdout.output + python.output


def test_a_worker_failure_is_told_by_the_exception_its_traceback_ends_with() -> None:
    """Spark wraps a Python worker's failure in the job's (first line: which task failed); the user is told why."""
    wrapped = RuntimeError("Job aborted due to stage failure: Task 0 in stage 1.0 failed 1 times: "
                           "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
                           '  File "worker.py", line 3, in main\n    func = read_udfs()\n'
                           "ModuleNotFoundError: No module named 'cmap_policy'\n\n\tat org.apache.spark.Task.run")
    assert engine._why(wrapped) == "ModuleNotFoundError: No module named 'cmap_policy'"
    assert engine._why(RuntimeError("Path does not exist: x.parquet\nmore")) == "Path does not exist: x.parquet"


def test_pyspark_loads_only_for_the_spark_engine() -> None:
    code = ("import sys, cmap_policy.cli, cmap_policy.engines.batch; "
            "assert 'pyspark' not in sys.modules, 'pyspark loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)
