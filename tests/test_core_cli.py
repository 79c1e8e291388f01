"""The command line: exit codes, output formats, explanations, help text."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cmap_policy.cli import main
from cmap_policy.resources import examples_dir, policy_dir


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input)


def test_one_line_from_options() -> None:
    res = run("eval", "--code", "T1016", "--date", "2026-01-05", "--modifier", "93", "--pos", "11")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["outcome"] == "payable" and out["code"] == "T1016" and out["period"] == "T1016@2025-12-26"
    assert out["reasons"][0]["citation"]["source"] == "TABLE-2025-12-26"


def test_a_denial_is_a_decision_not_an_error() -> None:
    res = run("eval", "--code", "97156", "--date", "2026-01-05", "--modifier", "95", "--pos", "10")
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["outcome"] == "not_payable"
    assert [r["code"] for r in out["reasons"]] == ["NOT_PERMITTED_VIA_TELEHEALTH", "POS_GUIDANCE"]


def test_undetermined_is_a_decision_too() -> None:
    res = run("eval", "--code", "90834", "--date", "2024-03-01", "--modifier", "95", "--pos", "10")
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["outcome"] == "undetermined"
    # the place-of-service guidance is dated from the reading of the table dated 2025-12-26: not yet in 2024
    assert [(r["code"], r["kind"]) for r in out["reasons"]] == [("CODE_NOT_IN_DATA", "undetermined")]
    assert all("carc" not in r for r in out["reasons"])
    explained = run("eval", "--code", "90834", "--date", "2024-03-01", "--modifier", "95", "--explain")
    assert "Decision: UNDETERMINED" in explained.stdout and "cannot decide" in explained.stdout


def test_bundled_examples_show_every_outcome() -> None:
    res = run("eval", str(examples_dir() / "claims.jsonl"))
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert {r["outcome"] for r in rows} == {"payable", "not_payable", "not_telehealth", "undetermined"}
    by_id = {r["line_id"]: r for r in rows}
    for line_id, row in by_id.items():  # each example is named for what it shows
        assert line_id.split("-")[0] in (row["outcome"].split("_")[0], "code", "date", "modality", "supervisor",
                                         "conflicting", "audio", "modifier", "asynchronous", "pandemic"), line_id
    assert by_id["code-not-in-data"]["outcome"] == "undetermined"
    assert by_id["supervisor-only-fr"]["outcome"] == "not_telehealth"
    assert by_id["not-permitted"]["reasons"][0]["code"] == "NOT_PERMITTED_VIA_TELEHEALTH"
    assert by_id["audio-only-not-allowed"]["reasons"][0]["code"] == "MODALITY_NOT_ALLOWED"


def test_table_and_json_formats() -> None:
    table = run("eval", str(examples_dir() / "claims.jsonl"), "--format", "table")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split()[:4] == ["LINE", "CODE", "DATE", "OUTCOME"]
    assert "NOT_PERMITTED_VIA_TELEHEALTH" in table.stdout
    as_json = run("eval", str(examples_dir() / "claims.jsonl"), "--format", "json")
    assert len(json.loads(as_json.stdout)) == len((examples_dir() / "claims.jsonl").read_text().splitlines())


def test_stdin_with_a_bad_line_reports_it_and_decides_the_rest() -> None:
    text = '{"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]}\n{"code": "T1016", "date": "2023-02-30"}\n'
    res = run("eval", "-", input=text)
    assert res.exit_code == 1
    assert len(res.stdout.splitlines()) == 2
    decided, failed = (json.loads(x) for x in res.stdout.splitlines())
    assert decided["outcome"] == "payable"
    assert failed["field"] == "date" and "not a real calendar date" in failed["error"]
    assert "line 2, field 'date'" in res.stderr


def test_explain_speaks_to_a_biller() -> None:
    res = run("eval", "--code", "97153", "--date", "2026-01-05", "--modifier", "93", "--explain")
    assert res.exit_code == 0
    assert "listed for audio-video (telemedicine) only" in res.stdout
    assert "NOT PAYABLE" in res.stdout and "secondary source" in res.stdout


def test_usage_errors_exit_2() -> None:
    assert run("eval", "--code", "T1016", "--date", "2023-02-30").exit_code == 2
    assert run("eval", "--code", "T1016", "--date", "2026-01-05", "--release", "NOPE").exit_code == 2
    assert run("eval", "x.jsonl", "--code", "T1016").exit_code == 2
    assert run("nonsense").exit_code == 2


def test_a_bad_single_line_exits_1_with_the_field() -> None:
    res = run("eval", "--code", "BAD", "--date", "2026-01-05")
    assert res.exit_code == 1
    assert "field 'code'" in res.stderr


def test_validate_a_broken_copy_names_file_line_field_and_hint(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    path = root / "codes" / "H0046.json"
    path.write_text(path.read_text().replace('"status": "permitted"', '"status": "allowed"'))
    res = run("validate", str(root))
    assert res.exit_code == 1
    first = res.stdout.splitlines()[0]
    assert first.startswith("policy/codes/H0046.json:") and "/periods/0/status" in first
    assert "'allowed' is not one of 'permitted', 'not-permitted'" in first
    assert "hint:" in res.stdout
    assert run("validate").exit_code == 0


def test_validate_json_output(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    (root / "codes" / "H0046.json").write_text("{")
    res = run("validate", str(root), "--format", "json")
    problems = json.loads(res.stdout)
    assert res.exit_code == 1 and problems[0]["rule"] == "json" and problems[0]["file"].endswith("H0046.json")


def test_eval_with_a_broken_policy_exits_1(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    (root / "releases.json").write_text("[]")
    res = run("eval", "--code", "T1016", "--date", "2026-01-05", "--policy", str(root))
    assert res.exit_code == 1 and "releases.json" in res.stderr


def test_show_not_permitted_and_secondary() -> None:
    res = run("show", "97156")
    assert res.exit_code == 0
    assert "NOT PERMITTED via telehealth" in res.stdout
    assert "SECONDARY source" in res.stdout and "TABLE-2025-12-26" in res.stdout
    assert "spreadsheet" in res.stdout  # the official table is the authority
    unlisted = run("show", "90834")
    assert "not in this data" in unlisted.stdout and "NOT on the CMAP telehealth table" not in unlisted.stdout


def test_show_as_of_release_and_date() -> None:
    res = run("show", "H2019", "--date", "2024-03-01", "--release", "PB-2020-14", "--format", "json")
    data = json.loads(res.stdout)
    assert data["release"] == "PB-2020-14" and data["in_force"] == "H2019@2020-03-18"
    assert data["periods"][0]["end"] is None


def test_show_says_why_a_known_gap_is_not_on_the_table(tmp_path: Path) -> None:
    """After a row whose source says the code left the table, and where a release holds the whole table: each
    gap says which of the two it is (a partial release does not hold the whole table)."""
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    assert run("release", "new", "PB-2026-05", "--date", "2026-03-02", "--effective", "2026-04-01", "--source",
               "CMAP-TH-PAGE", "--summary", "Takes T1016 off the table.", "--policy", str(root)).exit_code == 0
    assert run("code", "end", "T1016", "--date", "2026-03-31", "--release", "PB-2026-05", "--removed",
               "--policy", str(root)).exit_code == 0
    left = run("show", "T1016", "--policy", str(root)).stdout
    assert "from 2026-04-01: not on the table (the source of the row before says the code left it)" in left
    assert "whole table" not in left
    assert run("release", "new", "TABLE-2026-06", "--date", "2026-06-01", "--source", "CMAP-TABLE", "--summary",
               "The whole table.", "--coverage", "complete", "--policy", str(root)).exit_code == 0
    whole = run("show", "H2019", "--policy", str(root)).stdout
    assert "from 2026-06-01: not on the table (the release holds the whole table then)" in whole
    assert "left it" not in whole


def _commands(group: click.Group) -> Iterator[tuple[str, click.Command]]:
    for name, cmd in group.commands.items():
        yield name, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd)


def test_every_command_and_option_has_help() -> None:
    for name, cmd in _commands(main):
        assert cmd.help, f"{name} has no help"
        for param in cmd.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"{name} {param.opts} has no help"


def test_eval_help_lists_every_line_field() -> None:
    res = run("eval", "--help")
    for field in ("code", "date", "modifiers", "pos", "claim_type", "rcc", "member_age", "line_id"):
        assert f"  {field} " in res.stdout
    assert "Exit codes" in run("--help").stdout


def test_console_script_runs_as_a_real_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "cmap_policy", "eval", "--code", "97156", "--date", "2026-01-05",
                           "--modifier", "95"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reasons"][0]["code"] == "NOT_PERMITTED_VIA_TELEHEALTH"


@pytest.mark.parametrize("args", [["eval", "--help"], ["validate", "--help"], ["show", "--help"]])
def test_help_exits_0(args: list[str]) -> None:
    assert run(*args).exit_code == 0


def test_validate_checks_the_faqs_beside_the_policy(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    faq = sorted((root / "faq").glob("*.json"))[0]
    data = json.loads(faq.read_text())
    data["release"] = "NOPE"
    faq.write_text(json.dumps(data, indent=2))
    res = run("validate", str(root))
    assert res.exit_code == 1
    assert f"policy/faq/{faq.name}:" in res.stdout and "unknown release 'NOPE'" in res.stdout
