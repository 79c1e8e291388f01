"""`cmap-policy eval FILE -o OUT`: the batch engine from the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from cmap_policy import load_policy
from cmap_policy.cli import main
from cmap_policy.testing.claims import random_records

FIELDS = ("line_id", "code", "date", "modifiers", "pos", "claim_type", "rcc", "member_age", "units")


def _csv(path: Path, n: int, messy: float = 0.0) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(random_records(load_policy(), n, seed=21, messy=messy))
    return path


def test_csv_to_parquet_with_a_summary(tmp_path: Path) -> None:
    src = _csv(tmp_path / "in.csv", 2000, messy=0.05)
    result = CliRunner().invoke(main, ["eval", str(src), "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 1  # some lines are malformed on purpose
    decided = pq.read_table(tmp_path / "out.parquet").num_rows
    errors = (tmp_path / "out.errors.jsonl").read_text().count("\n")
    assert decided + errors == 2000 and errors > 0
    for word in ("lines read", "decided", "payable", "errors", "elapsed", "lines/s", "denied by reason"):
        assert word in result.stderr
    assert result.stdout == ""  # no progress bar when stderr is not a terminal, nothing on stdout


def test_clean_input_exits_0_and_errors_can_go_elsewhere(tmp_path: Path) -> None:
    src = _csv(tmp_path / "in.csv", 500)
    result = CliRunner().invoke(main, ["eval", str(src), "-o", str(tmp_path / "out.csv"), "--errors",
                                       str(tmp_path / "bad.jsonl")])
    assert result.exit_code == 0, result.stderr
    assert len(list(csv.DictReader((tmp_path / "out.csv").open()))) == 500
    assert (tmp_path / "bad.jsonl").read_text() == ""


def test_engine_python_keeps_the_interpreter_output(tmp_path: Path) -> None:
    src = _csv(tmp_path / "in.csv", 50)
    result = CliRunner().invoke(main, ["eval", str(src), "-o", str(tmp_path / "out.jsonl"), "--engine", "python"])
    assert result.exit_code == 0, result.stderr
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert isinstance(first["reasons"][0], dict) and "message" in first["reasons"][0]


def test_engine_batch_writes_json_lines_to_stdout(tmp_path: Path) -> None:
    src = _csv(tmp_path / "in.csv", 30)
    result = CliRunner().invoke(main, ["eval", str(src), "--engine", "batch"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["line"] for r in rows] == list(range(2, 32))
    assert all(isinstance(r["reasons"], list) for r in rows)


def test_usage_errors(tmp_path: Path) -> None:
    src = _csv(tmp_path / "in.csv", 5)
    runner = CliRunner()
    assert runner.invoke(main, ["eval", "--engine", "batch", "--code", "T1016", "--date", "2026-01-05"]
                         ).exit_code == 2
    assert runner.invoke(main, ["eval", str(src), "--engine", "batch", "--format", "table"]).exit_code == 2
    result = runner.invoke(main, ["eval", str(src), "-o", str(tmp_path / "out.xlsx"), "--engine", "batch"])
    assert result.exit_code == 2 and "output format" in result.stderr
