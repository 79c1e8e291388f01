"""X12 837 input: every service line of the public samples and their telehealth variants, line by line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cmap_policy import ClaimLine, LineError, eval_lines, evaluate, formats, load_policy
from cmap_policy.cli import main
from cmap_policy.engines.batch import run
from cmap_policy.model import Decision, Policy
from cmap_policy.x12 import read_x12

DATA = Path(__file__).parent / "data" / "x12"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def _lines(policy: Policy, name: str) -> list[tuple[int, ClaimLine | LineError]]:
    return list(read_x12(DATA / name, policy.program))


def _summary(policy: Policy, name: str) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for position, item in _lines(policy, name):
        if isinstance(item, LineError):
            out.append((position, "error", item.field))
        else:
            d = evaluate(policy, item)
            out.append((position, item.claim_id, item.line_id, item.code, item.modifiers, item.pos, item.rcc,
                        item.claim_type, item.date.isoformat(), d.outcome.value, d.reason_codes))
    return out


def test_837p_sample_every_service_line(policy: Policy) -> None:
    got = _summary(policy, "lfh_837p_5010_demo.example1.837")
    assert [g[:9] for g in got] == [
        (31, "26463774", "1", "99213", (), "11", None, "professional", "2006-10-03"),
        (34, "26463774", "2", "87070", (), "11", None, "professional", "2006-10-03"),
        (37, "26463774", "3", "99214", (), "11", None, "professional", "2006-10-10"),
        (40, "26463774", "4", "86663", (), "11", None, "professional", "2006-10-10"),
    ]
    assert {g[9] for g in got} == {"not_telehealth"}
    assert len(_summary(policy, "lfh_837p_5010_demo.example2.837")) == 4


def test_837i_samples_carry_revenue_codes_and_claim_dates(policy: Policy) -> None:
    got = _summary(policy, "lfh_837i_5010_two-claims-single-provider.837i")
    assert [(g[1], g[2], g[3], g[6], g[7], g[8]) for g in got] == [
        ("756048Q", "1", "85025", "0305", "institutional", "2005-03-15"),
        ("756048Q", "2", "93005", "0730", "institutional", "2005-03-15"),
        ("756049Q", "1", "85087", "0300", "institutional", "2005-04-01"),
    ]
    assert all(g[5] is None for g in got)  # CLM05 of an 837I is a facility type, not a place of service
    assert len(_summary(policy, "lfh_837i_5010_institutional-claim.837i")) == 2


def test_sv105_modifiers_and_envelope_problems(policy: Policy) -> None:
    got = _summary(policy, "imsweb_837p_5010_x12_valid.txt")
    decided = [g for g in got if g[1] != "error"]
    assert [(g[1], g[3], g[4], g[5], g[8]) for g in decided] == [("A37YH556", "99211", ("25",), "11", "2005-03-14")]
    errors = [g for g in got if g[1] == "error"]
    # the second claim's code has six characters; the envelope counts do not match the file
    assert (34, "error", "code") in errors
    assert any(field == "SE" for _, _, field in errors)


def test_telehealth_variants_by_modifier(policy: Policy) -> None:
    got = _summary(policy, "telehealth_837p_modifiers.837")
    assert [(g[3], g[4], g[9], g[10]) for g in got] == [
        ("90791", ("95",), "payable", ("ON_TELEHEALTH_TABLE",)),
        ("T1016", ("93",), "payable", ("ON_TELEHEALTH_TABLE",)),
        ("97153", ("GT",), "payable", ("ON_TELEHEALTH_TABLE",)),
        ("97153", ("FQ",), "not_payable", ("MODALITY_NOT_ALLOWED",)),
    ]
    got = _summary(policy, "telehealth_837i_modifiers.837i")
    assert [(g[3], g[6], g[7], g[9]) for g in got] == [
        ("90791", "0900", "institutional", "payable"), ("T1016", "0300", "institutional", "payable"),
        ("H2014", "0513", "institutional", "payable")]


def test_telehealth_variants_by_place_of_service(policy: Policy) -> None:
    got = _summary(policy, "telehealth_837p_pos.837")
    assert [(g[3], g[5], g[10]) for g in got] == [
        ("90791", "10", ("ON_TELEHEALTH_TABLE", "POS_GUIDANCE")),
        ("T1016", "02", ("ON_TELEHEALTH_TABLE", "POS_GUIDANCE")),  # SV105 overrides the claim's CLM05-1
        ("H0031", "10", ("MODALITY_NOT_INDICATED", "POS_GUIDANCE")),
        ("99213", "10", ("CODE_NOT_IN_DATA", "POS_GUIDANCE")),
    ]


def test_a_bad_line_does_not_stop_the_others(policy: Policy) -> None:
    got = _lines(policy, "malformed_bad_line_date.837")
    errors = [(p, e) for p, e in got if isinstance(e, LineError)]
    assert [p for p, _ in errors] == [31]
    assert "DTP*472 (segment 32)" in errors[0][1].message and "claim 26463774, line 1" in errors[0][1].message
    assert len([x for _, x in got if isinstance(x, ClaimLine)]) == 3


def test_malformed_interchanges_name_the_segment_and_position(policy: Policy) -> None:
    got = _lines(policy, "malformed_empty_segment.837")
    errors = [e for _, e in got if isinstance(e, LineError)]
    assert len(errors) == 1 and errors[0].message.startswith("segment 37: an empty segment")
    assert len([x for _, x in got if isinstance(x, ClaimLine)]) == 4
    for name, text in (("malformed_no_isa.837", "segment 1: the interchange does not begin with an ISA segment"),
                       ("malformed_truncated_isa.837", "segment 1 (ISA)")):
        got = _lines(policy, name)
        assert len(got) == 1 and isinstance(got[0][1], LineError) and got[0][1].message.startswith(text)


def test_x12_is_sniffed_by_its_isa_header() -> None:
    assert formats.of_file(DATA / "imsweb_837p_5010_x12_valid.txt") == "x12"
    assert formats.of_file(DATA / "telehealth_837p_modifiers.837") == "x12"
    assert formats.of_file(DATA / "SOURCES.md") == "csv"  # text of no known kind is read as CSV


def test_the_batch_engine_decides_x12_as_the_interpreter_does(tmp_path: Path, policy: Policy) -> None:
    for f in sorted(DATA.iterdir()):
        if f.suffix not in (".837", ".837i", ".txt"):
            continue
        out = tmp_path / f"{f.name}.parquet"
        summary = run(f, out, policy=policy, input_fmt="x12")
        want = list(eval_lines(f, policy=policy, input_format="x12"))
        got = pq.read_table(out).to_pylist()
        decided = [w for w in want if w.decision is not None]
        assert [(g["line"], g["claim_id"], g["line_id"], g["outcome"], g["reasons"]) for g in got] == [
            (w.number, cast(ClaimLine, w.line).claim_id, cast(ClaimLine, w.line).line_id,
             cast(Decision, w.decision).outcome.value, " ".join(cast(Decision, w.decision).reason_codes))
            for w in decided], f.name
        assert summary.errors == len(want) - len(decided)


def test_cli_decides_an_837(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["eval", str(DATA / "telehealth_837p_modifiers.837")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(r["claim_id"], r["line_id"], r["code"], r["outcome"]) for r in rows] == [
        ("26463774", "1", "90791", "payable"), ("26463774", "2", "T1016", "payable"),
        ("26463774", "3", "97153", "payable"), ("26463774", "4", "97153", "not_payable")]
    result = runner.invoke(main, ["eval", str(DATA / "malformed_bad_line_date.837"), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 1
    assert "errors                      1" in result.stderr
    assert (tmp_path / "o.errors.jsonl").read_text().count("\n") == 1
