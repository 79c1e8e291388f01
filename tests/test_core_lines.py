"""Bad input gets a clear error naming the line and the field; good lines around it are still decided."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, cast

import pytest

from cmap_policy import Decision, LineError, LineResult, eval_lines, evaluate, load_policy, parse_line
from cmap_policy.guard import MAX_LINE_BYTES
from cmap_policy.model import DECIDED_FIELDS, Program
from cmap_policy.results import decide_record


@pytest.fixture(scope="module")
def program() -> Program:
    return load_policy().program


GOOD = {"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]}


@pytest.mark.parametrize(
    ("record", "field", "fragment"),
    [
        ({"code": "T1016", "date": "2023-02-30"}, "date", "not a real calendar date"),
        ({"code": "T1016", "date": "05/01/2026"}, "date", "YYYY-MM-DD"),
        ({"code": "T1016"}, "date", "missing"),
        ({"date": "2026-01-05"}, "code", "missing"),
        ({"code": "9083", "date": "2026-01-05"}, "code", "not a procedure code"),
        ({"code": "T1016X", "date": "2026-01-05"}, "code", "not a procedure code"),
        ({"code": "T1016", "date": "2026-01-05", "modifiers": ["9$"]}, "modifiers", "not a modifier"),
        ({"code": "T1016", "date": "2026-01-05", "modifiers": ["95", "GT", "93", "25", "59"]}, "modifiers",
         "at most 4"),
        ({"code": "T1016", "date": "2026-01-05", "modality": "telepathy"}, "modality", "unknown modality"),
        ({"code": "T1016", "date": "2026-01-05", "pos": "2a"}, "pos", "not a place of service"),
        ({"code": "T1016", "date": "2026-01-05", "claim_type": "dental"}, "claim_type", "not a claim type"),
        ({"code": "T1016", "date": "2026-01-05", "rcc": "09"}, "rcc", "not a revenue center code"),
        ({"code": "T1016", "date": "2026-01-05", "member_age": -1}, "member_age", "out of range"),
        ({"code": "T1016", "date": "2026-01-05", "units": "many"}, "units", "whole number"),
        ({"code": "T1016", "date": "2026-01-05", "established_patient": "maybe"}, "established_patient",
         "true or false"),
        ({"code": "T1016", "date": "2026-01-05", "modifer": "95"}, "modifer", "unknown field"),
        ({"code": 12.5, "date": "2026-01-05"}, "code", "expected text"),
    ],
)
def test_malformed_fields(program: Program, record: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(LineError) as info:
        parse_line(record, program)
    assert info.value.field == field
    assert fragment in info.value.message


def test_friendly_forms_are_accepted(program: Program) -> None:
    line = parse_line({"procedure_code": "t1016", "date_of_service": "2026-01-05", "modifiers": "95, 25",
                       "place_of_service": 2, "revenue_code": "900", "established_patient": "yes"}, program)
    assert (line.code, line.modifiers, line.pos, line.rcc, line.established_patient) == (
        "T1016", ("95", "25"), "02", "0900", True)


def results(text: str, fmt: str | None = None) -> list[LineResult]:
    return list(eval_lines(io.StringIO(text), input_format=fmt))


def test_jsonl_with_bad_lines_decides_every_good_line() -> None:
    text = "\n".join([json.dumps(GOOD), "{not json", json.dumps({"code": "T1016", "date": "2023-02-30"}),
                      "[1, 2]", json.dumps({**GOOD, "line_id": "last"})]) + "\n"
    out = results(text)
    assert [r.number for r in out] == [1, 2, 3, 4, 5]
    assert [r.decision is not None for r in out] == [True, False, False, False, True]
    assert out[1].error is not None and out[2].error is not None and out[3].error is not None
    assert "not valid JSON" in out[1].error.message
    assert out[2].error.field == "date"
    assert "expected an object" in out[3].error.message
    assert out[4].line is not None and out[4].decision is not None
    assert out[4].line.line_id == "last" and out[4].decision.payable


def test_csv_with_bad_rows() -> None:
    text = ("code,date,modifiers,pos\n"
            "T1016,2026-01-05,93,11\n"
            "T1016,2026-01-05\n"
            '"T1016,2026-01-05,93,11\n'
            "97153,2026-01-05,93 25,11\n")
    out = results(text, "csv")
    assert [r.number for r in out] == [2, 3, 4, 5]
    assert out[0].decision is not None and out[1].error is not None and out[3].decision is not None
    assert out[0].decision.payable
    assert "2 values for 4 columns" in out[1].error.message
    assert out[2].error is not None
    assert out[3].decision.reason_codes == ("MODALITY_NOT_ALLOWED",)


def test_formats_are_sniffed() -> None:
    assert cast(Decision, results(json.dumps([GOOD, GOOD]))[1].decision).payable
    assert cast(Decision, results(json.dumps(GOOD) + "\n")[0].decision).payable
    assert cast(Decision, results("code,date,modifiers\nT1016,2026-01-05,93\n")[0].decision).payable


def test_empty_input_has_no_lines() -> None:
    assert results("") == []
    assert results("\n\n") == []


def test_a_huge_line_is_reported_and_skipped_in_bounded_reads() -> None:
    huge = '{"code": "T1016", "date": "2026-01-05", "x": "' + "a" * (MAX_LINE_BYTES * 3) + '"}'
    text = json.dumps(GOOD) + "\n" + huge + "\n" + json.dumps(GOOD) + "\n"
    out = results(text, "jsonl")
    assert [r.number for r in out] == [1, 2, 3]
    assert out[1].error is not None and out[0].decision is not None and out[2].decision is not None
    assert "longer than" in out[1].error.message
    assert out[0].decision.payable and out[2].decision.payable


def test_a_100_mb_line_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "claims.jsonl"
    with path.open("w") as f:
        f.write(json.dumps(GOOD) + "\n")
        f.write('{"code": "' + "9" * 100_000_000 + '"}\n')
        f.write(json.dumps(GOOD) + "\n")
    out = list(eval_lines(path))
    assert [r.error is None for r in out] == [True, False, True]
    assert out[1].number == 2


def test_decide_record_is_what_eval_lines_gives_for_each_record_and_keeps_a_read_line_or_error() -> None:
    policy = load_policy()
    records: list[Any] = [GOOD, {"code": "T1016", "date": "2023-02-30"}, [1, 2], {**GOOD, "modifiers": ["95"]}]
    by_eval = [r.as_dict() for r in eval_lines(records, policy=policy)]
    assert [decide_record(rec, i, policy).as_dict() for i, rec in enumerate(records, 1)] == by_eval
    assert by_eval[1]["field"] == "date" and "outcome" not in by_eval[2] and by_eval[3]["outcome"]
    line = parse_line(GOOD, policy.program)
    read = decide_record(line, 7, policy, "PB-2020-14")
    assert read.line is line and read.number == 7 and read.decision == evaluate(policy, line, release="PB-2020-14")
    err = LineError("no such thing", field="code", line=3)
    assert decide_record(err, 3, policy).error is err  # a reader's error is kept as it numbered it


def test_a_summary_is_the_decisions_own_outcome_reasons_period_release_and_hash() -> None:
    policy = load_policy()
    for record in (GOOD, {"code": "97153", "date": "2021-06-01", "modifiers": ["93"]}, {**GOOD, "modifiers": []}):
        decision = evaluate(policy, parse_line(record, policy.program))
        full = decision.as_dict()
        summary = decision.summary().as_dict()
        reasons = cast(list[dict[str, Any]], full["reasons"])
        assert summary == {"outcome": full["outcome"], "reasons": [r["code"] for r in reasons],
                           "period": full["period"], "release": full["release"], "policy_hash": full["policy_hash"]}
        assert decision.summary().as_dict(DECIDED_FIELDS) == {k: summary[k] for k in ("outcome", "reasons", "period")}
