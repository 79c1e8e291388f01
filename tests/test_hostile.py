"""Hostile input, class by class: no traceback, no lost line, no read outside the tree, no code from a cache.

Each test builds its own hostile input for one class of docs/reliability.md and checks it on every path
that reads it: the interpreter (a file, the API on a stream, standard input) and the batch engine. Lines
in = decisions + errors is checked against an independent count of the lines (tests/hostile.py).
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import os
import pickle
import stat
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from cmap_policy import api, load_policy
from cmap_policy.authoring.fmt import fmt
from cmap_policy.authoring.spec import test as run_author_tests
from cmap_policy.authoring.table.read import TableLimits, read_table
from cmap_policy.cli import main
from cmap_policy.engines import files
from cmap_policy.engines.batch import run
from cmap_policy.errors import LineError, PolicyError, Problem, TableError
from cmap_policy.lines import parse_line
from cmap_policy.load import cache
from cmap_policy.model import ClaimLine, Policy
from cmap_policy.resources import schema_dir
from cmap_policy.testing import bundled_tree, write_tree
from cmap_policy.x12 import parse_x12

from .helpers import xlsx_bytes
from .hostile import (
    assert_all_lines_accounted,
    assert_x12_lines_accounted,
    batch_reads,
    interpreter_reads,
    x12_service_positions,
)

GOOD = '{"code": "T1016", "date": "2026-01-05", "modifiers": ["93"], "pos": "11"}'
DEEP = "[" * 5000 + "]" * 5000
X12 = Path(__file__).parent / "data" / "x12"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def _cli(args: list[str], stdin: bytes | None = None) -> Result:
    result = CliRunner().invoke(main, args, input=stdin)
    # a traceback is an exception other than the SystemExit that carries the exit code
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def _jsonl_results(text: str) -> dict[int, dict[str, Any]]:
    return {rec["line"]: rec for rec in map(json.loads, text.splitlines())}


def every_path(tmp_path: Path, data: bytes, fmt: str, bad: dict[int, str], policy: Policy) -> None:
    """Read ``data`` (a .jsonl or .csv file) on every path; lines in ``bad`` fail with the fragment given, every
    other line that is not blank is decided, on each path alike."""
    src = tmp_path / f"claims.{fmt}"
    src.write_bytes(data)
    header = fmt == "csv"
    # the interpreter, from a file and from a binary stream (the API)
    for source in (src, io.BytesIO(data)):
        got = {r.number: r for r in api.eval_lines(source, policy=policy, input_format=fmt)}
        assert_all_lines_accounted(got, data, header)
        errors = {n: r.error for n, r in got.items() if r.error is not None}
        assert sorted(errors) == sorted(bad), errors
        for number, fragment in bad.items():
            assert fragment in str(errors[number]), errors[number]
    decided = sorted(n for n in got if n not in bad)
    # standard input, its format guessed, through the command line
    result = _cli(["eval", "-"], stdin=data)
    assert result.exit_code == (1 if bad else 0), result.stderr
    out = _jsonl_results(result.stdout)
    assert sorted(n for n, r in out.items() if "error" not in r) == decided
    assert sorted(n for n, r in out.items() if "error" in r) == sorted(bad)
    # the batch engine, through the command line
    dst, err = tmp_path / "out.jsonl", tmp_path / "errors.jsonl"
    result = _cli(["eval", str(src), "-o", str(dst), "--errors", str(err)])
    assert result.exit_code == (1 if bad else 0), result.stderr
    assert [json.loads(x)["line"] for x in dst.read_text().splitlines()] == decided
    batch_errors = {e["line"]: e for e in map(json.loads, err.read_text().splitlines())}
    assert sorted(batch_errors) == sorted(bad)
    for number, fragment in bad.items():
        assert fragment in batch_errors[number]["error"], batch_errors[number]
    # and both engines read every line alike, value for value
    assert interpreter_reads(data, policy.program, fmt) == batch_reads(data, policy.program, fmt)


def _lines(*lines: str | bytes) -> bytes:
    return b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)


# --- 1. deep nesting ----------------------------------------------------------------------------------------------

def test_1_a_deeply_nested_value_is_its_lines_error_and_the_rest_is_decided(tmp_path: Path, policy: Policy) -> None:
    deep = '{"code": "T1016", "date": "2026-01-05", "line_id": ' + DEEP + "}"
    every_path(tmp_path, _lines(GOOD, deep, GOOD, GOOD), "jsonl", {2: "nested deeper than 64"}, policy)


def test_1_deep_nesting_from_python_records_is_a_line_error(policy: Policy) -> None:
    value: Any = "x"
    for _ in range(5000):
        value = [value]
    with pytest.raises(LineError, match="expected text, got a list"):
        parse_line({"code": "T1016", "date": "2026-01-05", "line_id": value}, policy.program)


def test_1_a_deeply_nested_policy_file_is_a_located_problem(tmp_path: Path) -> None:
    root = write_tree(bundled_tree(), tmp_path / "policy")
    text = (root / "codes" / "T1016.json").read_text()
    (root / "codes" / "T1016.json").write_text(text.replace('"periods": [', '"note": ' + DEEP + ',\n  "periods": ['))
    problems = _problems(root)
    assert [p.file for p in problems] == ["policy/codes/T1016.json"]
    assert "nested deeper than 64" in problems[0].message and problems[0].line is not None


# --- 2. integers of more than 4,300 digits ---------------------------------------------------------------------------

def test_2_a_huge_integer_is_its_lines_error_in_json_and_csv(tmp_path: Path, policy: Policy) -> None:
    huge = "9" * 5000
    line = '{"code": "T1016", "date": "2026-01-05", "units": ' + huge + "}"
    every_path(tmp_path, _lines(GOOD, line, GOOD), "jsonl", {2: "more than 1,000 digits"}, policy)
    csv = _lines("code,date,units", "T1016,2026-01-05,1", f"T1016,2026-01-05,{huge}", f"T1016,2026-01-05,{huge[:50]}",
                 "T1016,2026-01-05,2")
    every_path(tmp_path, csv, "csv", {3: "5,000 digits is out of range", 4: "50 digits is out of range"}, policy)


def test_2_a_huge_integer_in_a_parquet_text_column_is_its_lines_error(tmp_path: Path, policy: Policy) -> None:
    src = tmp_path / "ages.parquet"
    pq.write_table(pa.table({"code": ["T1016"] * 3, "date": ["2026-01-05"] * 3,
                             "member_age": ["30", "9" * 5000, None]}), src)
    summary = run(src, tmp_path / "out.jsonl", policy=policy)
    assert (summary.decided, summary.errors) == (2, 1)
    errors = [json.loads(x) for x in (tmp_path / "out.errors.jsonl").read_text().splitlines()]
    assert errors == [{"line": 2, "field": "member_age",
                       "error": "a number of 5,000 digits is out of range (0 to 130)"}]


def test_2_a_huge_integer_from_python_never_converts(policy: Policy) -> None:
    with pytest.raises(LineError, match="out of range"):
        parse_line({"code": "T1016", "date": "2026-01-05", "units": 10 ** 5000}, policy.program)
    with pytest.raises(LineError, match="expected text"):
        parse_line({"code": "T1016", "date": "2026-01-05", "line_id": 10 ** 5000}, policy.program)


def test_2_leading_zeros_past_4300_digits_are_read_as_the_number(tmp_path: Path, policy: Policy) -> None:
    """Found by the long fuzz run: 51,104 digits of which all but the last are zeros passed the length check
    and then made int() refuse them (CPython counts the zeros)."""
    padded = "0" * 6000 + "42"
    line = parse_line({"code": "T1016", "date": "2026-01-05", "member_age": padded}, policy.program)
    assert line.member_age == 42
    csv = _lines("code,date,member_age", f"T1016,2026-01-05,{padded}", f"T1016,2026-01-05,{'0' * 6000}",
                 f"T1016,2026-01-05,{'0' * 6000}131")
    every_path(tmp_path, csv, "csv", {4: "131 is out of range"}, policy)


# --- 3. control characters inside numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["27\x1c", "\x1f27", "2\x1c7", "27\x00", "２７", "27.0", "2_7"])
def test_3_a_number_with_control_characters_is_read_or_refused_never_a_traceback(text: str, policy: Policy) -> None:
    record = {"code": "T1016", "date": "2026-01-05", "member_age": text}
    if text.strip().isascii() and text.strip().isdigit():  # blanks around the digits are blanks (str.strip)
        assert parse_line(record, policy.program).member_age == 27
    else:
        with pytest.raises(LineError, match="whole number"):
            parse_line(record, policy.program)


def test_3_control_characters_in_a_csv_number_on_both_engines(tmp_path: Path, policy: Policy) -> None:
    csv = _lines("code,date,member_age", "T1016,2026-01-05,27\x1c", "T1016,2026-01-05,2\x1c7", "T1016,2026-01-05,3")
    every_path(tmp_path, csv, "csv", {3: "expected a whole number"}, policy)


# --- 4. lone surrogates -----------------------------------------------------------------------------------------------

def test_4_a_lone_surrogate_is_its_lines_error_and_the_output_stays_writable(tmp_path: Path, policy: Policy) -> None:
    value = '{"code": "T1016", "date": "2026-01-05", "line_id": "\\ud800"}'
    key = '{"code": "T1016", "date": "2026-01-05", "\\udfff": "x"}'
    every_path(tmp_path, _lines(GOOD, value, key, GOOD), "jsonl", {2: "lone surrogate", 3: "unknown field"}, policy)
    result = _cli(["eval", "-"], stdin=_lines(GOOD, key))
    result.stdout_bytes.decode("utf-8")  # what was written is UTF-8
    assert "\\udfff" in result.stdout  # the field is named, escaped


def test_4_a_lone_surrogate_in_a_policy_file_is_a_located_problem(tmp_path: Path) -> None:
    root = write_tree(bundled_tree(), tmp_path / "policy")
    path = root / "codes" / "T1016.json"
    doc = json.loads(path.read_text())
    doc["description"] = "Case management \ud800"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=True))
    problems = _problems(root)
    assert [(p.file, p.pointer, p.line) for p in problems] == [("policy/codes/T1016.json", "/description", 5)]
    assert "lone surrogate" in problems[0].message


# --- 5. a CSV header longer than the csv module reads -------------------------------------------------------------

def test_5_an_overlong_header_value_is_reported_for_every_line(tmp_path: Path, policy: Policy) -> None:
    csv = _lines("code,date," + "x" * 140_000, "T1016,2026-01-05,1", "", "T1016,2026-01-05,2")
    every_path(tmp_path, csv, "csv", {2: "a value is longer than 131,072", 4: "the header (line 1)"}, policy)


def test_5_a_header_naming_a_column_twice_is_reported_for_every_line(tmp_path: Path, policy: Policy) -> None:
    csv = _lines("code,date,pos,pos", "T1016,2026-01-05,11,02")
    every_path(tmp_path, csv, "csv", {2: "names the column 'pos' twice"}, policy)


# --- 6. invalid UTF-8 in the middle of a file --------------------------------------------------------------------

def test_6_a_bad_byte_is_its_lines_error_in_json_lines(tmp_path: Path, policy: Policy) -> None:
    bad = b'{"code": "T1016", "date": "2026-01-05", "line_id": "\xff\xfe"}'
    every_path(tmp_path, _lines(GOOD, bad, GOOD, b"\xc3", GOOD), "jsonl",
               {2: "not UTF-8 text (byte 53", 4: "not UTF-8 text (byte 1"}, policy)


def test_6_a_bad_byte_is_its_lines_error_in_csv(tmp_path: Path, policy: Policy) -> None:
    csv = _lines("code,date,line_id", "T1016,2026-01-05,a", b"T1016,2026-01-05,\xe9t\xe9", "T1016,2026-01-05,b")
    every_path(tmp_path, csv, "csv", {3: "not UTF-8 text (byte 18"}, policy)


def test_6_a_text_stream_that_cannot_be_decoded_ends_with_an_error(policy: Policy) -> None:
    # a text stream decodes in chunks of 8 KB: the lines of the chunks before the bad byte are decided
    stream = io.TextIOWrapper(io.BytesIO(_lines(*[GOOD] * 300, b"\xff", GOOD)), encoding="utf-8")
    got = list(api.eval_lines(stream, policy=policy, input_format="jsonl"))
    assert [r.number for r in got] == list(range(1, len(got) + 1)) and len(got) > 50
    assert all(r.decision is not None for r in got[:-1]) and got[-1].error is not None
    assert "not UTF-8" in got[-1].error.message and "nothing after it" in got[-1].error.message
    for kind in ("csv", "json", None):
        stream = io.TextIOWrapper(io.BytesIO(b"\xff"), encoding="utf-8")
        got = list(api.eval_lines(stream, policy=policy, input_format=kind))
        assert len(got) == 1 and got[0].error is not None and "not UTF-8" in got[0].error.message, kind


# --- 7. guessing the format of standard input --------------------------------------------------------------------

def test_7_a_broken_first_line_does_not_make_the_stream_one_document(policy: Policy) -> None:
    result = _cli(["eval", "-"], stdin=_lines('{"code": "T1016", "date": ', GOOD, GOOD))
    out = _jsonl_results(result.stdout)
    assert sorted(out) == [1, 2, 3] and "error" in out[1] and "error" not in out[2] and "error" not in out[3]
    assert "1 line(s) could not be decided; the other 2 were" in result.stderr


def test_7_a_byte_order_mark_does_not_make_json_lines_csv(policy: Policy) -> None:
    result = _cli(["eval", "-"], stdin=b"\xef\xbb\xbf" + _lines(GOOD, GOOD))
    assert result.exit_code == 0, result.stderr
    assert [r["outcome"] for r in _jsonl_results(result.stdout).values()] == ["payable", "payable"]
    result = _cli(["eval", "-"], stdin=b"\xef\xbb\xbf" + _lines("code,date,modifiers", "T1016,2026-01-05,93"))
    assert result.exit_code == 0 and _jsonl_results(result.stdout)[2]["outcome"] == "payable"


def test_7_a_document_over_several_lines_is_still_one_document(policy: Policy) -> None:
    pretty = json.dumps(json.loads(GOOD), indent=2).encode()
    result = _cli(["eval", "-"], stdin=pretty)
    assert result.exit_code == 0 and _jsonl_results(result.stdout)[1]["outcome"] == "payable"
    result = _cli(["eval", "-"], stdin=pretty[:-3])  # a broken document: one error, and no claim that others passed
    assert result.exit_code == 1 and "no line was decided" in result.stderr


# --- 8. Parquet column types ------------------------------------------------------------------------------------------

N = 4
TYPED: list[tuple[str, pa.Array, list[str | None]]] = [
    # (field, column, what each of the N rows gives: None decided, else a fragment of its error)
    ("code", pa.array([b"T1016", b"\xff", None, b" 97153 "], pa.binary()), [None, "not UTF-8", "missing", None]),
    ("code", pa.array([b"T1016", b"T1016", b"x", None], pa.binary(5) if False else pa.large_binary()),
     [None, None, "not a procedure code", "missing"]),
    ("date", pa.array([2932897 + 5, 20458, None, 0], pa.int32()).cast(pa.date32()),
     ["a date past 9999-12-31", None, "missing", None]),
    # a timestamp is a date at midnight with no zone (a DataFrame's dates); any other is refused as its text
    ("date", pa.array([dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 5, 10, 30), None,
                       dt.datetime(2026, 1, 5, 0, 0, 0, 1000)], pa.timestamp("ms")),
     [None, "'2026-01-05T10:30:00' is not a date", "missing", "'2026-01-05T00:00:00.001000' is not a date"]),
    ("date", pa.array([dt.datetime(2026, 1, 5)] * N, pa.timestamp("s", tz="America/New_York")),
     ["'2026-01-04T19:00:00-05:00' is not a date"] * N),  # the instant, midnight UTC, in the column's zone
    ("member_age", pa.array([decimal.Decimal(27), decimal.Decimal("27.5"), None, decimal.Decimal(900)],
                            pa.decimal128(6, 1)), [None, "whole number", None, "out of range"]),
    ("units", pa.array([[1, 2], None, [], [3]], pa.list_(pa.int64())),
     ["list<element: int64>", None, "list<element: int64>", "list<element: int64>"]),
    ("modifiers", pa.array([[93], [95, None], [], None], pa.list_(pa.int64())), [None, "expected text", None, None]),
    ("modifiers", pa.array([["93", "GT"], ["9,5"], ["\x1f"], ["95\x1fGT"]], pa.list_(pa.string())),
     [None, "not a modifier", "not a modifier", "not a modifier"]),
    ("modifiers", pa.array([[["95"]], None, [], [["93"]]], pa.list_(pa.list_(pa.string()))),
     ["list<element: list", None, "list<element: list", "list<element: list"]),
    ("pos", pa.array([{"a": 1}, None, {"a": 2}, {"a": None}], pa.struct([("a", pa.int64())])),
     ["struct<a: int64>", None, "struct<a: int64>", "struct<a: int64>"]),
    ("pos", pa.array([None] * N, pa.null()), [None] * N),
    ("line_id", pa.array([b"a", b"\xff", None, b" b "], pa.binary()), [None, "not UTF-8", None, None]),
    ("line_id", pa.array([dt.time(1)] * N, pa.time32("s")), ["expected text"] * N),
    ("claim_id", pa.array([1.5, None, 2.0, float("nan")], pa.float16()), ["expected text", None, "expected text",
                                                                          "expected text"]),
    ("established_patient", pa.array([dt.timedelta(1)] * N, pa.duration("s")), ["expected true or false"] * N),
    ("provider_type", pa.array([{"k": 1}] * N, pa.map_(pa.string(), pa.int64())), ["map<string, int64"] * N),
]


@pytest.mark.parametrize(("field", "column", "expect"), TYPED, ids=[f"{f}-{c.type}" for f, c, _ in TYPED])
def test_8_every_arrow_type_is_read_or_refused_per_line(tmp_path: Path, policy: Policy, field: str,
                                                        column: pa.Array, expect: list[str | None]) -> None:
    base = {"code": pa.array(["T1016"] * N), "date": pa.array(["2026-01-05"] * N)}
    base[field] = column
    src = tmp_path / "typed.parquet"
    pq.write_table(pa.table(base), src)
    summary = run(src, tmp_path / "out.jsonl", policy=policy)
    assert summary.decided + summary.errors == N  # lines in = decisions + errors
    decided = [json.loads(x)["line"] for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    errors = {e["line"]: e for e in map(json.loads, (tmp_path / "out.errors.jsonl").read_text().splitlines())}
    assert decided == [i + 1 for i, e in enumerate(expect) if e is None]
    for i, fragment in enumerate(expect):
        if fragment is not None:
            assert fragment in errors[i + 1]["error"], errors[i + 1]


def test_8_list_modifiers_and_binary_text_are_read_as_the_interpreter_reads_them(tmp_path: Path,
                                                                                 policy: Policy) -> None:
    src = tmp_path / "mods.parquet"
    pq.write_table(pa.table({"code": pa.array([b"97153", b"T1016"], pa.binary()), "date": ["2026-01-05"] * 2,
                             "modifiers": pa.array([[95], [93, 25]], pa.list_(pa.int64()))}), src)
    run(src, tmp_path / "out.jsonl", policy=policy)
    got = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    # the interpreter, given the same values as a JSON line would give them
    records = [{"code": "97153", "date": "2026-01-05", "modifiers": [95]},
               {"code": "T1016", "date": "2026-01-05", "modifiers": [93, 25]}]
    want = list(api.eval_lines(records, policy=policy))
    assert [(g["code"], g["outcome"], g["reasons"]) for g in got] == [
        (w.line.code, w.decision.outcome.value, list(w.decision.reason_codes)) for w in want
        if w.line is not None and w.decision is not None]
    assert [g["outcome"] for g in got] == ["payable", "payable"]


# --- 9. one row per row group ---------------------------------------------------------------------------------------

def test_9_tiny_row_groups_are_read_in_one_batch(tmp_path: Path) -> None:
    src = tmp_path / "tiny.parquet"
    pq.write_table(pa.table({"code": ["T1016"] * 2000, "date": ["2026-01-05"] * 2000}), src, row_group_size=1)
    assert pq.ParquetFile(src).num_row_groups == 2000
    _, batches = files.read_parquet(src)
    sizes = [b.raw.num_rows for b in batches if b.raw is not None]
    assert sizes == [2000]  # one query, not 2,000
    numbers = files.read_parquet(src, batch_rows=300)[1]
    assert [b.line_numbers.to_pylist()[0] for b in numbers if b.line_numbers is not None] == list(range(1, 2001, 300))


# --- 10. quoted line breaks in CSV ----------------------------------------------------------------------------------

def test_10_an_unclosed_quote_is_its_lines_error_and_both_engines_number_alike(tmp_path: Path,
                                                                              policy: Policy) -> None:
    csv = _lines("code,date,line_id", 'T1016,2026-01-05,"a', "T1016,2026-01-05,b", "", "  ",
                 "T1016,2026-01-05,c", 'T1016,2026-01-05,"d""e"', 'T1016,2026-01-05,x"y', "T1016,2026-01-05,f")
    every_path(tmp_path, csv, "csv", {2: "quoted value is not closed"}, policy)


def test_10_a_quoted_line_break_is_reported_not_folded(tmp_path: Path, policy: Policy) -> None:
    csv = _lines("code,date,line_id", 'T1016,2026-01-05,"line', 'two",x', "T1016,2026-01-05,c")
    every_path(tmp_path, csv, "csv", {2: "quoted value is not closed", 3: "values for 3 columns"}, policy)
    # a quote that is only a character (inside a value) followed by one that opens a value on the same line
    csv = _lines("code,date,line_id", 'T1016,2026-0"1-05,"x', "T1016,2026-01-05,c")
    every_path(tmp_path, csv, "csv", {2: "quoted value is not closed"}, policy)


@pytest.mark.parametrize("block", [None, 16, 64])
def test_10_blank_lines_carriage_returns_and_blocks_number_alike(block: int | None, policy: Policy) -> None:
    csv = (b"\n  \ncode,date,line_id\r\n\r\nT1016,2026-01-05,a\r\nT1016,2026-01-05,b\rc\n\xe3\x80\x80\n"
           b"\x1c\nT1016,2026-01-05,\"q\r\"\nT1016,2026-01-05,\"q\"\r\n T1016,2026-01-05,s\nT1016,2026-01-05,z")
    want = interpreter_reads(csv, policy.program, "csv")
    assert batch_reads(csv, policy.program, "csv", block) == want
    assert sorted(want) == [5, 6, 9, 10, 11, 12]
    assert want[6][0] == "error" and "carriage return" in want[6][2]


# --- 11. to 13. X12 -----------------------------------------------------------------------------------------------

def _segments(name: str) -> tuple[list[str], str, str]:
    text = (X12 / name).read_text()
    return text.split(text[105]), text[105], text[3]


def _x12_results(text: str, policy: Policy) -> list[tuple[int, ClaimLine | LineError]]:
    got = list(parse_x12(text, policy.program))  # nothing but results: no exception escapes
    assert_x12_lines_accounted(got, text)  # every service line, exactly once
    return got


def test_11_a_broken_envelope_is_an_error_and_every_service_line_is_accounted(policy: Policy) -> None:
    segments, term, sep = _segments("telehealth_837p_modifiers.837")
    for drop in (("GS", "ST"), ("ST",), ("GS",), ("SE", "GE", "IEA"), ("HL",)):
        text = term.join(s for s in segments if s.strip().split(sep)[0] not in drop)
        got = _x12_results(text, policy)
        assert any(isinstance(x, LineError) for _, x in got), drop


def test_12_a_padded_isa_is_one_error_naming_the_element(policy: Policy) -> None:
    segments, term, sep = _segments("telehealth_837p_modifiers.837")
    elements = segments[0].split(sep)
    elements[6] += " " * 10_000
    got = list(parse_x12(term.join([sep.join(elements), *segments[1:]]), policy.program))
    assert len(got) == 1 and isinstance(got[0][1], LineError)
    assert "ISA06 is 10,015 characters long, not 15" in got[0][1].message


@pytest.mark.parametrize("term", [" ", "\x00"])
def test_12_a_terminator_that_also_stands_inside_the_isa_is_one_error(term: str, policy: Policy) -> None:
    """Found by the long fuzz run: with a space (the ISA's own padding) or a NUL inside ISA08 as the segment
    terminator, the ISA split into segments of its own and every later position shifted, so service lines were
    reported at positions that hold none."""
    segments, _, sep = _segments("telehealth_837p_modifiers.837")
    elements = segments[0].split(sep)
    if term != " ":
        elements[8] = elements[8][:-1] + term  # ISA08 keeps its width of 15
    text = term.join([sep.join(elements), *segments[1:]])
    assert text[105] == term
    got = list(parse_x12(text, policy.program))
    assert len(got) == 1 and isinstance(got[0][1], LineError) and got[0][1].field == "ISA"
    assert f"the segment terminator {term!r} (character 106) also appears inside the ISA segment" in got[0][1].message


def test_13_service_lines_under_a_missing_clm_are_reported(policy: Policy) -> None:
    segments, term, sep = _segments("telehealth_837p_modifiers.837")
    first_clm = next(i for i, s in enumerate(segments) if s.strip().startswith("CLM" + sep))
    text = term.join(segments[:first_clm] + segments[first_clm + 1:])
    got = _x12_results(text, policy)
    orphans = [x for _, x in got if isinstance(x, LineError) and x.field == "claim_id"]
    assert len(orphans) == len(x12_service_positions(text))
    assert all("outside any claim" in e.message for e in orphans)


def test_13_the_batch_engine_accounts_for_x12_lines_too(tmp_path: Path, policy: Policy) -> None:
    segments, term, sep = _segments("telehealth_837p_modifiers.837")
    src = tmp_path / "noclm.837"
    src.write_text(term.join(s for s in segments if not s.strip().startswith("CLM" + sep)))
    summary = run(src, tmp_path / "out.jsonl", policy=policy)
    assert summary.decided == 0 and summary.errors >= len(x12_service_positions(src.read_text()))


# --- 14. every policy problem names its file, and its line where the file has lines -------------------------------

def _problems(root: Path) -> list[Problem]:
    with pytest.raises(PolicyError) as info:
        load_policy(root)
    return info.value.problems


@pytest.mark.parametrize(("content", "message", "line"), [
    (b'{\n  "code": "T1016",\n  "description": "\xe9"\n}\n', "not UTF-8 (byte 40)", 3),
    (b"", "the file is empty", 1),
    (b"\n\n  \n", "the file is empty", 1),
    (b'{\n  "code": 1' + b"0" * 2000 + b"\n}", "more than 1,000 digits", 2),
    (b'\xef\xbb\xbf{"code": "T1016"}', "not valid JSON", 1),
])
def test_14_problems_with_a_file_that_has_lines_name_the_line(tmp_path: Path, content: bytes, message: str,
                                                              line: int) -> None:
    root = write_tree(bundled_tree(), tmp_path / "policy")
    (root / "codes" / "T1016.json").write_bytes(content)
    problems = _problems(root)
    assert [(p.file, p.line) for p in problems] == [("policy/codes/T1016.json", line)]
    assert message in problems[0].message


def test_14_an_unknown_field_deep_in_a_file_is_located(tmp_path: Path) -> None:
    root = write_tree(bundled_tree(), tmp_path / "policy")
    path = root / "codes" / "T1016.json"
    doc = json.loads(path.read_text())
    doc["periods"][0]["citation"]["a/b~c"] = {"d": [[{"e": 1}]]}
    path.write_text(json.dumps(doc, indent=2))
    problems = _problems(root)
    assert problems and all(p.file == "policy/codes/T1016.json" and p.line is not None for p in problems)


# --- 15. the policy cache never runs code ---------------------------------------------------------------------------

class _Plant:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {_Plant.marker}",))

    marker = ""


def test_15_a_planted_pickle_is_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("CMAP_POLICY_CACHE_DIR", str(folder))
    monkeypatch.setenv("CMAP_POLICY_CACHE", "1")
    root = write_tree(bundled_tree(), tmp_path / "policy")
    key = cache.fingerprint(root, schema_dir())
    assert key is not None
    _Plant.marker = str(tmp_path / "ran")
    for name in (f"{key}.pickle", f"{key}.json", f"{key}"):
        (folder / name).write_bytes(pickle.dumps(_Plant()))
    for _ in range(2):  # the first load finds only the planted bytes; the second, the entry it wrote
        assert load_policy(root).codes["T1016"].description
    assert not (tmp_path / "ran").exists()
    assert json.loads((folder / f"{key}.json").read_bytes())["key"] == key  # replaced by a real entry


@dataclass
class Planted:
    """A cache folder holding a real entry for a policy tree, then one made to say PLANTED instead."""

    folder: Path
    root: Path
    entry: Path
    truth: str
    doc: dict[str, Any]

    def description(self) -> str:
        return load_policy(self.root).codes["T1016"].description


def _planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int) -> Planted:
    folder = tmp_path / "cache"
    folder.mkdir(mode=mode)
    monkeypatch.setenv("CMAP_POLICY_CACHE_DIR", str(folder))
    monkeypatch.setenv("CMAP_POLICY_CACHE", "1")
    root = write_tree(bundled_tree(), tmp_path / "policy")
    truth = load_policy(root).codes["T1016"].description
    entry = folder / f"{cache.fingerprint(root, schema_dir())}.json"
    doc = json.loads(entry.read_text())
    for _, code in doc["codes"]:
        code["description"] = "PLANTED"
    entry.write_text(json.dumps(doc))
    planted = Planted(folder, root, entry, truth, doc)
    assert planted.description() == "PLANTED"  # the user's own folder and entry: the cache is used
    return planted


def test_15_a_cache_folder_others_can_write_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = _planted(tmp_path, monkeypatch, 0o700)
    for mode in (0o777, 0o770, 0o722):
        planted.folder.chmod(mode)
        assert planted.description() == planted.truth, oct(mode)
    planted.folder.chmod(0o700)
    planted.entry.unlink()
    planted.entry.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text(json.dumps(planted.doc))
    assert planted.description() == planted.truth  # an entry is never read through a link


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
def test_15_a_cache_folder_or_entry_of_another_user_is_not_used(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    planted = _planted(tmp_path, monkeypatch, 0o755)
    os.chown(planted.entry, 65534, 65534)  # an entry of another user's, in the user's folder
    assert planted.description() == planted.truth
    os.chown(planted.entry, os.geteuid(), os.getegid())
    os.chown(planted.folder, 65534, 65534)  # the user's entry, in a folder of another user's
    assert planted.description() == planted.truth


# --- 16. symlinks and special files in a policy tree ------------------------------------------------------------

def test_16_a_link_out_of_the_tree_is_named_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"code": "SECRET-VALUE-7731"}')
    root = write_tree(bundled_tree(), tmp_path / "policy")
    (root / "codes" / "T1016.json").unlink()
    (root / "codes" / "T1016.json").symlink_to(secret)
    (root / "codes" / "H0031.json").unlink()
    (root / "codes" / "H0031.json").symlink_to("/etc/passwd")
    (root / "codes" / "ZERO.json").symlink_to("/dev/zero")
    (root / "codes" / "LOOP.json").symlink_to(root / "codes" / "LOOP.json")
    (root / "codes" / "GONE.json").symlink_to(tmp_path / "nothing-here")
    problems = _problems(root)
    assert sorted(p.file for p in problems) == [f"policy/codes/{n}.json" for n in ("GONE", "H0031", "LOOP",
                                                                                    "T1016", "ZERO")]
    text = "\n".join(str(p) for p in problems)
    assert "SECRET-VALUE" not in text and "root:" not in text
    assert text.count("outside the policy folder") == 3 and "in a loop" in text and "to nothing" in text


def test_16_a_link_inside_the_tree_is_read(tmp_path: Path) -> None:
    root = write_tree(bundled_tree(), tmp_path / "policy")
    (root / "shared").mkdir()
    (root / "codes" / "T1016.json").rename(root / "shared" / "T1016.json")
    (root / "codes" / "T1016.json").symlink_to(root / "shared" / "T1016.json")
    assert "T1016" in load_policy(root).codes


def test_16_a_fifo_a_device_and_an_oversized_file_are_named_never_read(tmp_path: Path) -> None:
    root = write_tree(bundled_tree(), tmp_path / "policy")
    os.mkfifo(root / "codes" / "FIFO.json")
    (root / "codes" / "BIG.json").write_bytes(b" " * (9 << 20))
    try:
        os.mknod(root / "codes" / "DEV.json", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's numbers
        device = True
    except (PermissionError, AttributeError, OSError):
        device = False
    # in a child process with a time limit: a FIFO that were opened for reading would block it for good
    probe = ("import json, sys\nfrom cmap_policy import api\n"
             f"print(json.dumps([p.as_dict() for p in api.validate({str(root)!r})]))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    problems = {p["file"]: p["message"] for p in json.loads(out.stdout)}
    assert "named pipe (FIFO), not a regular file" in problems["policy/codes/FIFO.json"]
    assert "more than the 8,388,608 a policy file may have" in problems["policy/codes/BIG.json"]
    if device:
        assert "character device" in problems["policy/codes/DEV.json"]


def test_16_fmt_test_and_faq_read_only_regular_files_inside(tmp_path: Path) -> None:
    root = write_tree(bundled_tree(), tmp_path / "policy")
    outside = tmp_path / "outside.json"
    outside.write_text('{"cases": []}')
    (root / "tests").mkdir()
    (root / "tests" / "linked.json").symlink_to(outside)
    os.mkfifo(root / "tests" / "pipe.json")
    (root / "faq").mkdir()
    (root / "faq" / "linked.json").symlink_to(outside)
    result = fmt(root, check=True)
    assert sum("outside the policy folder" in e for e in result.errors) == 2
    assert any("named pipe" in e for e in result.errors)
    with pytest.raises(PolicyError) as info:
        run_author_tests(root / "tests", policy=root)
    assert sorted(p.file for p in info.value.problems) == ["policy/tests/linked.json", "policy/tests/pipe.json"]
    faq_problems = api.validate(root)
    assert [p.file for p in faq_problems] == ["policy/faq/linked.json"]


def test_16_edits_and_imports_read_the_tree_as_the_loader_does(tmp_path: Path) -> None:
    from cmap_policy.authoring.edit import code_end
    from cmap_policy.authoring.table.importer import import_table
    from cmap_policy.errors import EditError

    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps(bundled_tree().codes["T1016"]))  # a valid code file, but outside the tree
    root = write_tree(bundled_tree(), tmp_path / "policy")
    (root / "codes" / "T1016.json").unlink()
    (root / "codes" / "T1016.json").symlink_to(secret)
    with pytest.raises(EditError, match="outside the policy folder"):
        code_end("T1016", date="2026-03-31", release="TABLE-2025-12-26", policy=root)
    with pytest.raises(EditError, match="outside the policy folder"):  # the trial copy keeps the link a link
        code_end("97153", date="2026-03-31", release="TABLE-2025-12-26", policy=root)
    with pytest.raises(TableError, match="outside the policy folder"):
        import_table(b"Procedure Code,Effective Date\nT1016,2025-12-26\n", fmt="csv", release="TABLE-2025-12-26",
                     policy=root, dry_run=True)


# --- 17. spreadsheet import limits ----------------------------------------------------------------------------------

def test_17_a_workbook_that_unpacks_past_the_limit_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    small = xlsx_bytes([["Procedure Code", "Effective Date"], ["T1016", "2026-01-01"]])
    bomb = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(small)) as z, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            out.writestr(info, z.read(info))
        # 70 MB of cells that deflate to a few kilobytes, where openpyxl would have parsed every one
        sheet = zipfile.ZipInfo("xl/worksheets/sheet2.xml")
        sheet.compress_type = zipfile.ZIP_DEFLATED
        with out.open(sheet, "w") as f:
            for _ in range(70):
                f.write(b'<c r="A1" t="inlineStr"><is><t>x</t></is></c>' * 23_000)
    assert len(bomb.getvalue()) < 1 << 20 and zlib  # the file itself is small
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(bomb.getvalue())
    with pytest.raises(TableError, match="unpacks to"):
        read_table(path)
    policy_root = write_tree(bundled_tree(), tmp_path / "policy")
    result = _cli(["import", str(path), "--release", "TABLE-2025-12-26", "--policy", str(policy_root), "--dry-run"])
    assert result.exit_code == 1 and "unpacks to" in result.output


@pytest.mark.parametrize(("rows", "limits", "message"), [
    ([["Procedure Code", "Effective Date"]] + [["T1016", "2026-01-01"]] * 30, TableLimits(rows=20),
     "more than 20 rows"),
    ([["Procedure Code", "Effective Date"] + [None] * 10 + ["x"]], TableLimits(columns=8), "column 13"),
    ([["Procedure Code", "Effective Date", "Policy Guidelines"], ["T1016", "2026-01-01", "y" * 200]],
     TableLimits(cell_chars=100), "a cell of 200 characters"),
])
def test_17_rows_columns_and_cells_past_the_limits_are_refused(tmp_path: Path, rows: list[list[Any]],
                                                               limits: TableLimits, message: str) -> None:
    with pytest.raises(TableError, match=message):
        read_table(xlsx_bytes(rows), fmt="xlsx", limits=limits)
    csv_text = "\n".join(",".join("" if c is None else str(c) for c in r) for r in rows).encode()
    with pytest.raises(TableError, match=message):
        read_table(csv_text, fmt="csv", limits=limits)
    within = read_table(xlsx_bytes(rows[:3]), fmt="xlsx", limits=TableLimits())
    assert within.headings[0] == "Procedure Code"


def test_17_a_large_file_is_refused_by_its_size(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="larger than 1,000 bytes"):
        read_table(b"Procedure Code,Effective Date\n" + b"T1016,2026-01-01\n" * 100, fmt="csv",
                   limits=TableLimits(bytes=1000))
