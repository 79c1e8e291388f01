"""``decide_table``: a table in memory gets the decisions and errors ``eval`` gives the same lines as a file."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cmap_policy
import cmap_policy.engines.tables as tables
from cmap_policy import decide_table, eval_lines, load_policy
from cmap_policy.api import LineResult
from cmap_policy.engines.batch import OUTPUT_SCHEMA, run
from cmap_policy.engines.tables import ROWS_SCHEMA, decide_batches
from cmap_policy.errors import InputError, UnknownReleaseError
from cmap_policy.model import Policy
from cmap_policy.testing.claims import random_records
from cmap_policy.testing.strategies import claim_records

BASE = {"code": "97153", "date": "2026-01-05", "modifiers": "95"}  # a payable line, changed one field at a time


@pytest.fixture(scope="module")
def bundled() -> Policy:
    return load_policy()


def _records(policy: Policy, n: int, seed: int) -> list[dict[str, Any]]:
    return list(random_records(policy, n, seed=seed, messy=0.05))


def _interpreted(policy: Policy, records: list[dict[str, Any]]) -> list[LineResult]:
    """What ``cmap-policy eval`` gives the records written as a JSON Lines file."""
    text = "".join(json.dumps(r, default=str) + "\n" for r in records)
    return list(eval_lines(io.BytesIO(text.encode()), policy=policy, input_format="jsonl"))


def _as_row(result: LineResult) -> dict[str, Any]:
    """An interpreter's result as ``decide_table``'s row of it (errors="rows") shows it."""
    d, e = result.decision, result.error
    return {"line": result.number,
            "outcome": d.outcome.value if d else None, "reasons": " ".join(d.reason_codes) if d else None,
            "period": d.period.id if d and d.period else None, "modality": d.modality if d else None,
            "error": e.message if e else None, "field": e.field if e else None}


def _picked(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("line", "outcome", "reasons", "period", "modality", "error", "field")}


def test_a_table_gets_the_decisions_and_errors_of_the_same_lines_as_a_parquet_file(tmp_path: Path,
                                                                                   bundled: Policy) -> None:
    table = pa.Table.from_pylist(_records(bundled, 3000, seed=11))
    pq.write_table(table, tmp_path / "in.parquet")
    summary = run(tmp_path / "in.parquet", tmp_path / "out.parquet", policy=bundled)
    decisions, errors = decide_table(table, policy=bundled, errors="table")
    assert decisions.schema == OUTPUT_SCHEMA
    assert decisions.to_pylist() == pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert errors.to_pylist() == [json.loads(x) for x in (tmp_path / "out.errors.jsonl").open()]
    assert summary.errors == errors.num_rows > 0 and decisions.num_rows + errors.num_rows == 3000


def test_a_table_gets_the_interpreters_answer_line_for_line(bundled: Policy) -> None:
    records = _records(bundled, 2000, seed=12)
    rows = decide_table(pa.Table.from_pylist(records), policy=bundled)
    assert rows.schema == ROWS_SCHEMA and rows.num_rows == 2000
    assert [_picked(r) for r in rows.to_pylist()] == [_as_row(r) for r in _interpreted(bundled, records)]
    assert {r["release"] for r in rows.to_pylist() if r["error"] is None} == {bundled.release(None).id}


def test_errors_in_place_and_in_a_second_table_hold_the_same_lines(bundled: Policy) -> None:
    table = pa.Table.from_pylist(_records(bundled, 1000, seed=13))
    rows = decide_table(table, policy=bundled).to_pylist()
    decisions, errors = decide_table(table, policy=bundled, errors="table")
    assert [r["line"] for r in rows] == list(range(1, 1001))
    in_place = [r for r in rows if r["error"] is not None]
    assert [{k: r[k] for k in ("line", "field", "error")} for r in in_place] == errors.to_pylist()
    assert all(r["outcome"] is None and r["code"] is None for r in in_place)
    decided = [{k: v for k, v in r.items() if k not in ("error", "field")} for r in rows if r["error"] is None]
    assert decided == decisions.to_pylist()


def test_a_stream_is_decided_chunk_by_chunk_with_the_lines_numbered_across_chunks(
        bundled: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    records = _records(bundled, 1500, seed=14)
    table = pa.Table.from_pylist(records)
    whole = decide_table(table, policy=bundled).to_pylist()
    monkeypatch.setattr(tables, "CHUNK_ROWS", 100)
    monkeypatch.setattr(tables, "MAX_CHUNK_ROWS", 64)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=37))
    parts = list(decide_batches(reader, policy=bundled))
    assert len(parts) > 10  # chunks of 100 to 163 rows, made of 37-row batches cut at 64 rows
    assert all(d.num_rows + e.num_rows < 164 for d, e in parts)
    pieces = pa.concat_tables([tables.in_place(d, e) for d, e in parts]).to_pylist()
    assert pieces == whole


def test_a_stream_is_not_read_ahead_of_its_decisions(bundled: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "CHUNK_ROWS", 100)
    table = pa.Table.from_pylist(_records(bundled, 1000, seed=17))
    read: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for i, batch in enumerate(table.to_batches(max_chunksize=100)):
            read.append(i)
            yield batch

    chunks = decide_batches(pa.RecordBatchReader.from_batches(table.schema, batches()), policy=bundled)
    assert read == []  # nothing is read when the call returns
    for n, (decisions, errors) in enumerate(chunks, 1):
        assert len(read) <= n + 1  # a chunk decided holds at most the next batch read
        assert decisions.num_rows + errors.num_rows == 100
    assert len(read) == 10


@given(st.lists(claim_records(), min_size=1, max_size=25))
def test_drawn_records_as_a_table_get_the_interpreters_answers(records: list[dict[str, Any]]) -> None:
    policy = load_policy()  # cached: a fixture cannot serve a Hypothesis test
    names = list(dict.fromkeys(k for r in records for k in r))  # from_pylist would keep the first record's keys only
    table = pa.table({k: [r.get(k) for r in records] for k in names})
    rows = decide_table(table, policy=policy).to_pylist()
    assert [_picked(r) for r in rows] == [_as_row(r) for r in _interpreted(policy, records)]


def test_a_pandas_dataframe(bundled: Policy) -> None:
    frame = pd.DataFrame({
        "line_id": ["a", "b", "c"],
        "code": ["97153", "T1016", "9715"],
        "date": pd.to_datetime(["2026-01-05", "2026-01-05", "2026-01-05"]),  # datetime64[ns] at midnight
        "modifiers": [["95"], ["93"], []],
        "member_age": [30.0, float("nan"), 7.0],  # a float column with a gap, as pandas keeps ints with NaN
    }, index=[10, 20, 30])  # not a RangeIndex: pandas sends it as a column, which is no field of a line
    rows = decide_table(frame, policy=bundled).to_pylist()
    records: list[dict[str, Any]] = [
        {"line_id": "a", "code": "97153", "date": "2026-01-05", "modifiers": ["95"], "member_age": 30},
        {"line_id": "b", "code": "T1016", "date": "2026-01-05", "modifiers": ["93"]},
        {"line_id": "c", "code": "9715", "date": "2026-01-05", "modifiers": [], "member_age": 7}]
    assert [_picked(r) for r in rows] == [_as_row(r) for r in _interpreted(bundled, records)]
    assert [r["line_id"] for r in rows[:2]] == ["a", "b"] and rows[2]["field"] == "code"


def test_a_polars_dataframe(bundled: Policy) -> None:
    frame = pl.DataFrame({"code": ["97153", "T1016", "97153"], "date": ["2026-01-05", "2026-01-05", "2026-02-30"],
                          "modifiers": [["95"], ["93"], ["95"]], "pos": ["02", "10", None]})
    assert pa.RecordBatchReader.from_stream(frame).schema.field("code").type == pa.string_view()  # views, read
    rows = decide_table(frame, policy=bundled).to_pylist()
    records = [{"code": "97153", "date": "2026-01-05", "modifiers": ["95"], "pos": "02"},
               {"code": "T1016", "date": "2026-01-05", "modifiers": ["93"], "pos": "10"},
               {"code": "97153", "date": "2026-02-30", "modifiers": ["95"]}]
    assert [_picked(r) for r in rows] == [_as_row(r) for r in _interpreted(bundled, records)]
    assert rows[2]["field"] == "date"


def test_a_duckdb_result_of_a_query_over_a_parquet_file(tmp_path: Path, bundled: Policy) -> None:
    pq.write_table(pa.Table.from_pylist(_records(bundled, 2000, seed=16)), tmp_path / "in.parquet")
    run(tmp_path / "in.parquet", tmp_path / "out.parquet", policy=bundled)
    with duckdb.connect() as con:
        result = con.sql(f"select * from read_parquet('{tmp_path / 'in.parquet'}')")
        decisions, errors = decide_table(result, policy=bundled, errors="table")
    assert decisions.to_pylist() == pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert errors.to_pylist() == [json.loads(x) for x in (tmp_path / "out.errors.jsonl").open()]


class _Stream:
    """Anything that speaks the Arrow PyCapsule interface's stream, and nothing else (as a DuckDB result does)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.table.__arrow_c_stream__(requested_schema)


class _Array:
    """A single batch through ``__arrow_c_array__`` only."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch = batch

    def __arrow_c_array__(self, requested_schema: object = None) -> object:
        return self.batch.__arrow_c_array__(requested_schema)


def test_any_object_of_the_capsule_interface(bundled: Policy) -> None:
    table = pa.Table.from_pylist(_records(bundled, 300, seed=15))
    want = decide_table(table, policy=bundled).to_pylist()
    assert decide_table(_Stream(table), policy=bundled).to_pylist() == want
    assert decide_table(_Array(table.combine_chunks().to_batches()[0]), policy=bundled).to_pylist() == want
    assert decide_table(table.to_batches()[0], policy=bundled).to_pylist() == want


def test_an_empty_table_and_an_unknown_column(bundled: Policy) -> None:
    empty = pa.table({"code": pa.array([], pa.string()), "date": pa.array([], pa.string())})
    assert decide_table(empty, policy=bundled).num_rows == 0
    assert decide_table(empty, policy=bundled).schema == ROWS_SCHEMA
    decisions, errors = decide_table(empty, policy=bundled, errors="table")
    assert decisions.schema == OUTPUT_SCHEMA and decisions.num_rows == errors.num_rows == 0
    rows = decide_table(pa.table({**{k: [v] * 2 for k, v in BASE.items()}, "colour": ["red", "blue"]}),
                        policy=bundled).to_pylist()
    assert [(r["line"], r["field"], r["outcome"]) for r in rows] == [(1, "colour", None), (2, "colour", None)]


def test_a_release_decides_as_published_then(bundled: Policy) -> None:
    table = pa.table({"code": ["97153"], "date": ["2021-06-01"], "modifiers": ["93"]})
    then = decide_table(table, policy=bundled, release="PB-2020-14").to_pylist()[0]
    want = next(eval_lines([{"code": "97153", "date": "2021-06-01", "modifiers": ["93"]}], policy=bundled,
                           release="PB-2020-14"))
    assert then["release"] == "PB-2020-14" and _picked(then) == _as_row(want)


def test_a_column_arrow_cannot_read_is_an_input_error_naming_it(bundled: Policy) -> None:
    frame = pd.DataFrame({"code": ["97153", 97153], "date": ["2026-01-05", "2026-01-05"]})  # text and a number
    with pytest.raises(InputError, match=r"decide_table: data cannot be read .*code"):
        decide_table(frame, policy=bundled)


# --- every Arrow type: the same decision, or the same error, as a JSON line with that value ---

def _decimal(text: str) -> pa.Array:
    return pa.array([decimal.Decimal(text)], pa.decimal128(6, 2))


_MIDNIGHT = dt.datetime(2026, 1, 5)
_TEN_THIRTY = dt.datetime(2026, 1, 5, 10, 30)
# (name, field, the column of one value, the value a JSON line holds)
ARROW_CASES: list[tuple[str, str, pa.Array, Any]] = [
    ("string", "code", pa.array(["97153"], pa.string()), "97153"),
    ("large_string", "code", pa.array(["97153"], pa.large_string()), "97153"),
    ("string_view", "code", pa.array(["97153"], pa.string_view()), "97153"),
    ("binary", "code", pa.array([b"97153"], pa.binary()), "97153"),
    ("large_binary", "code", pa.array([b"t1016"], pa.large_binary()), "t1016"),
    ("binary_view", "code", pa.array([b"97153"], pa.binary_view()), "97153"),
    ("binary, bad code", "code", pa.array([b"9715"], pa.binary()), "9715"),
    ("dictionary", "code", pa.array(["97153"]).dictionary_encode(), "97153"),
    ("dictionary of views", "pos", pa.array(["02"], pa.string_view()).dictionary_encode(), "02"),
    ("run-end encoded", "pos", pc.run_end_encode(pa.array(["02"])), "02"),
    ("int64 place of service", "pos", pa.array([2], pa.int64()), 2),
    ("decimal age", "member_age", _decimal("30.00"), 30),
    ("decimal age with a fraction", "member_age", _decimal("30.50"), 30.5),
    ("decimal age out of range", "member_age", _decimal("131.00"), 131),
    ("decimal units with a fraction", "units", _decimal("1.25"), 1.25),
    ("decimal256 units", "units", pa.array([decimal.Decimal("2")], pa.decimal256(40, 0)), 2),
    ("float units", "units", pa.array([2.0], pa.float64()), 2.0),
    ("boolean", "established_patient", pa.array([True]), True),
    ("date32", "date", pa.array([dt.date(2026, 1, 5)], pa.date32()), "2026-01-05"),
    ("date64", "date", pa.array([dt.date(2021, 6, 1)], pa.date64()), "2021-06-01"),
    ("timestamp at midnight", "date", pa.array([_MIDNIGHT], pa.timestamp("us")), "2026-01-05"),
    ("timestamp[ns] at midnight", "date", pa.array([_MIDNIGHT], pa.timestamp("ns")), "2026-01-05"),
    ("timestamp with a time", "date", pa.array([_TEN_THIRTY], pa.timestamp("s")), "2026-01-05T10:30:00"),
    ("timestamp with a zone", "date", pa.array([_MIDNIGHT], pa.timestamp("us", tz="UTC")),
     "2026-01-05T00:00:00+00:00"),
    ("list", "modifiers", pa.array([["95"]], pa.list_(pa.string())), ["95"]),
    ("large_list", "modifiers", pa.array([["93", "GT"]], pa.large_list(pa.string())), ["93", "GT"]),
    ("list_view", "modifiers", pa.array([["95"]], pa.list_view(pa.string())), ["95"]),
    ("large_list of views", "modifiers", pa.array([["95"]], pa.large_list(pa.string_view())), ["95"]),
    ("fixed_size_list", "modifiers", pa.array([["95", "GT"]], pa.list_(pa.string(), 2)), ["95", "GT"]),
    ("list, bad modifier", "modifiers", pa.array([["9"]], pa.list_(pa.string())), ["9"]),
    ("empty list", "modifiers", pa.array([[]], pa.list_(pa.string())), []),
    ("empty list of nulls", "modifiers", pa.array([[]], pa.list_(pa.null())), []),
    ("list of a null", "modifiers", pa.array([[None]], pa.list_(pa.null())), [None]),
    ("null code", "code", pa.nulls(1), None),
    ("null date", "date", pa.nulls(1), None),
    ("null modifiers", "modifiers", pa.nulls(1), None),
    ("null place of service", "pos", pa.nulls(1), None),
]


@pytest.mark.parametrize(("field", "column", "value"), [c[1:] for c in ARROW_CASES], ids=[c[0] for c in ARROW_CASES])
def test_every_arrow_type_is_read_as_a_json_line_with_that_value(bundled: Policy, field: str, column: pa.Array,
                                                                  value: Any) -> None:
    table = pa.table({**{k: [v] for k, v in BASE.items() if k != field}, field: column})
    got = decide_table(table, policy=bundled).to_pylist()
    want = _interpreted(bundled, [{**BASE, field: value}])
    assert len(got) == 1 and _picked(got[0]) == _as_row(want[0])


def test_the_arrow_cases_cover_decisions_and_errors(bundled: Policy) -> None:
    """The cases above are not all one answer: they would catch a type read as another value, or refused."""
    answers = [_as_row(_interpreted(bundled, [{**BASE, f: v}])[0]) for _, f, _, v in ARROW_CASES]
    assert {a["field"] for a in answers} >= {None, "code", "date", "modifiers", "member_age", "units"}
    assert len({(a["outcome"], a["reasons"], a["period"]) for a in answers if a["error"] is None}) >= 3


def test_a_date_and_time_from_records_is_checked_as_a_table_checks_it(bundled: Policy) -> None:
    """eval_lines on records holds Python values: a datetime is read as a timestamp column's value is."""
    moments = [pd.Timestamp("2026-01-05"), dt.datetime(2026, 1, 5, 10, 30), pd.NaT,
               pd.Timestamp("2026-01-05 00:00:00.000000001")]
    got = [next(eval_lines([{**BASE, "date": m}], policy=bundled)) for m in moments]
    assert got[0].decision is not None and got[0].decision.outcome.value == "payable"
    assert [r.error.message if r.error else None for r in got[1:]] == [
        "'2026-01-05T10:30:00' is not a date in the form YYYY-MM-DD",
        "'NaT' is not a date in the form YYYY-MM-DD",
        "'2026-01-05T00:00:00.000000001' is not a date in the form YYYY-MM-DD"]


# --- the arguments ---

@pytest.mark.parametrize(("kwargs", "error", "named"), [
    ({"data": [{"code": "97153"}]}, TypeError, "data must be a table"),
    ({"data": "claims.parquet"}, TypeError, "data must be a table"),
    ({"errors": "inline"}, ValueError, "errors is 'inline'"),
    ({"errors": True}, TypeError, "errors must be one of"),
    ({"release": 2020}, TypeError, "release must be text"),
    ({"policy": 3}, TypeError, "policy must be a path"),
])
def test_decide_table_names_a_wrong_argument(bundled: Policy, kwargs: dict[str, Any], error: type[Exception],
                                             named: str) -> None:
    args: dict[str, Any] = {"data": pa.table({k: [v] for k, v in BASE.items()}), "policy": bundled} | kwargs
    with pytest.raises(error, match=f"^decide_table: {named}"):
        decide_table(**args)


def test_a_reader_is_not_read_before_its_arguments_are_checked(bundled: Policy) -> None:
    table = pa.table({k: [v] for k, v in BASE.items()})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    with pytest.raises(UnknownReleaseError):
        decide_batches(reader, policy=bundled, release="NO-SUCH-RELEASE")
    assert decide_table(reader, policy=bundled).num_rows == 1  # still whole


def test_the_package_imports_pyarrow_only_when_decide_table_is_asked_for() -> None:
    code = ("import sys, cmap_policy\n"
            "before = 'pyarrow' in sys.modules\n"
            "cmap_policy.decide_table\n"
            "print(before, 'pyarrow' in sys.modules, 'decide_table' in cmap_policy.__all__)\n")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.split() == ["False", "True", "True"]
    with pytest.raises(AttributeError, match="no attribute 'decide_tables'"):
        cmap_policy.decide_tables  # noqa: B018
