"""One road from bytes to decision: every input format, by path and on standard input, with and without ``-o``,
on every engine, gives each line the same decision or the same error at the same line; and no run destroys its
input or leaves a half-written output."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from cmap_policy import eval_lines, formats, load_policy
from cmap_policy.cli import main
from cmap_policy.engines import batch
from cmap_policy.testing.claims import random_records
from cmap_policy.testing.strategies import hostile_csv, hostile_jsonl

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
X12 = Path(__file__).resolve().parent / "data" / "x12" / "telehealth_837p_modifiers.837"
Row = tuple[int, str, tuple[str, ...]]  # line number, outcome or "error", reason codes or (field, message)


def _eval(args: list[str], stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["eval", *args], input=stdin)


def _rows(text: str) -> list[Row]:
    """Each line's decision or error, as the interpreter's JSON and the batch engine's both give it."""
    out: list[Row] = []
    for raw in text.splitlines():
        rec = json.loads(raw)
        if "error" in rec and rec.get("outcome") is None:
            out.append((rec["line"], "error", (str(rec.get("field")), rec["error"])))
        else:
            reasons = tuple(r["code"] if isinstance(r, dict) else r for r in rec["reasons"])
            out.append((rec["line"], rec["outcome"], reasons))
    return out


def _errors_of(result: Result) -> list[Row]:
    """The errors a batch run wrote to standard error as JSON Lines (no errors file when writing to stdout)."""
    return [(r["line"], "error", (str(r["field"]), r["error"])) for r in map(json.loads, (
        x for x in result.stderr.splitlines() if x.startswith("{")))]


def _inputs(tmp: Path) -> dict[str, Path]:
    """The same kind of lines in every format: JSON, JSON Lines, CSV, Parquet, Arrow IPC (file), X12."""
    recs = [{k: v for k, v in r.items() if v not in (None, "")} for r in random_records(load_policy(), 60, seed=5,
                                                                                         messy=0.1)]
    files = {"jsonl": tmp / "in.jsonl", "json": tmp / "in.json", "csv": EXAMPLES / "claims.csv",
             "parquet": EXAMPLES / "claims.parquet", "arrow": tmp / "in.arrow", "x12": X12}
    files["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    files["json"].write_text(json.dumps(recs), encoding="utf-8")
    table = pq.read_table(EXAMPLES / "claims.parquet")
    with ipc.new_file(str(files["arrow"]), table.schema) as w:
        w.write_table(table)
    return files


@pytest.mark.parametrize("fmt", formats.INPUTS)
def test_every_format_by_path_and_on_stdin_with_and_without_output(tmp_path: Path, fmt: str) -> None:
    src = _inputs(tmp_path)[fmt]
    want = sorted((r.number, r.decision.outcome.value if r.decision else "error",
                   r.decision.reason_codes if r.decision else (str(r.error.field), r.error.message))  # type: ignore[union-attr]
                  for r in eval_lines(src, policy=load_policy(), input_format=fmt))
    assert want
    by_path = _eval([str(src), "--engine", "python"])
    assert sorted(_rows(by_path.stdout)) == want, by_path.stderr
    on_stdin = _eval(["-", "--input-format", fmt], src.read_bytes())
    assert sorted(_rows(on_stdin.stdout) + _errors_of(on_stdin)) == want, on_stdin.stderr
    if fmt not in ("parquet", "arrow"):  # their first bytes say what they are; the others are guessed too
        guessed = _eval(["-"], src.read_bytes())
        assert sorted(_rows(guessed.stdout) + _errors_of(guessed)) == want, guessed.stderr
    for out_fmt in formats.OUTPUTS:
        out = tmp_path / f"out{formats.SUFFIX_OF[out_fmt]}"
        for args, stdin in (([str(src)], None), (["-", "--input-format", fmt], src.read_bytes())):
            result = _eval([*args, "-o", str(out)], stdin)
            assert result.exit_code in (0, 1), result.output
            got = _decisions_file(out, out_fmt) + _errors_file(formats.errors_path_for(out))
            assert sorted(got) == want, (fmt, out_fmt)


def _decisions_file(path: Path, fmt: str) -> list[Row]:
    if fmt == "jsonl":
        return _rows(path.read_text(encoding="utf-8"))
    if fmt == "parquet":
        table = pq.read_table(path)
    elif fmt == "arrow":
        with pa.memory_map(str(path)) as source:
            table = ipc.open_file(source).read_all()
    else:
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(path)
    return [(r["line"], r["outcome"], tuple((r["reasons"] or "").split())) for r in table.to_pylist()]


def _errors_file(path: Path) -> list[Row]:
    return [(r["line"], "error", (str(r["field"]), r["error"]))
            for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())]


@pytest.mark.parametrize("engine", ["auto", "batch", "python", "spark"])
def test_an_output_that_is_the_input_is_refused_before_anything_is_written(tmp_path: Path, engine: str) -> None:
    src = tmp_path / "t.csv"
    src.write_bytes((EXAMPLES / "claims.csv").read_bytes())
    before = src.read_bytes()
    named_errors = tmp_path / "out.errors.jsonl"
    named_errors.write_bytes(before)  # a file whose name is the default errors file of out.csv
    cases = [["-o", str(src)], ["-o", str(tmp_path / "o.csv"), "--errors", str(src)],
             ["-o", str(tmp_path / "same.csv"), "--errors", str(tmp_path / "same.csv")]]
    for args in cases:
        result = _eval([str(src), "--engine", engine, *args])
        assert result.exit_code == 2, (args, result.output)
        assert "same file" in result.stderr or "is the input file" in result.stderr
        assert src.read_bytes() == before
        assert not (tmp_path / "same.csv").exists() and not (tmp_path / "o.csv").exists()
    if engine != "spark":
        result = _eval([str(named_errors), "--engine", engine, "--input-format", "csv", "-o",
                        str(tmp_path / "out.csv")])
        assert result.exit_code == 2 and named_errors.read_bytes() == before, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.errors.jsonl", "t.csv"]


def test_a_failed_run_leaves_no_output_behind(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    for out in ("out.parquet", "out.csv", "out.jsonl"):
        result = _eval([str(broken), "-o", str(tmp_path / out)])
        assert result.exit_code == 1 and "cannot read" in result.stderr, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.parquet"]


def test_an_output_is_what_its_suffix_says(tmp_path: Path) -> None:
    src = str(EXAMPLES / "claims.csv")
    for args in (["--engine", "python", "-o", "out.csv"], ["--format", "json", "-o", "out.jsonl"],
                 ["--format", "table", "-o", "out.csv"], ["--explain", "-o", "out.parquet"]):
        result = _eval([src, *args[:-1], str(tmp_path / args[-1])])
        assert result.exit_code == 2 and "names a" in result.stderr, (args, result.output)
    assert list(tmp_path.iterdir()) == []
    assert _eval([src, "--format", "json", "-o", str(tmp_path / "out.json")]).exit_code == 0
    assert len(json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))) == 4
    assert _eval(["-", "-o", str(tmp_path / "s.csv")], (EXAMPLES / "claims.csv").read_bytes()).exit_code == 0
    assert (tmp_path / "s.csv").read_text(encoding="utf-8").startswith('"line","line_id"')


def test_a_json_array_first_on_stdin_keeps_every_line(tmp_path: Path) -> None:
    good = json.dumps({"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]})
    data = ("[1, 2]\n" + (good + "\n") * 3).encode()
    for args in ([], ["-o", str(tmp_path / "o.jsonl")]):
        result = _eval(["-", *args], data)
        assert result.exit_code == 1, result.output  # line 1 is an error, lines 2 to 4 are decided
        text = result.stdout if not args else (tmp_path / "o.jsonl").read_text(encoding="utf-8")
        errors = _errors_of(result) if not args else _errors_file(tmp_path / "o.errors.jsonl")
        rows = _rows(text) + errors
        assert sorted(n for n, _, _ in rows) == [1, 2, 3, 4]
    whole = _eval(["-"], f"[{good},\n{good}]\n".encode())  # an array spread over lines is one document
    assert whole.exit_code == 0 and [n for n, _, _ in _rows(whole.stdout)] == [1, 2]


def test_x12_with_an_unusual_or_missing_terminator_loses_no_line(tmp_path: Path) -> None:
    text = X12.read_text(encoding="ascii")
    services = text.count("SV1*")
    cases = {"no-last.837": text.rstrip().removesuffix("~"), "nul.837": text[:105] + "\x00" + text[106:]}
    for name, body in cases.items():
        path = tmp_path / name
        path.write_text(body, encoding="latin-1")
        results = list(eval_lines(path, policy=load_policy()))
        lines = [r for r in results if r.decision is not None or (r.error and r.error.field == "code")]
        assert len(lines) == services, name
        if name == "no-last.837":
            assert all(r.decision is not None for r in results)  # a missing last terminator is no error
            assert _eval([str(path)]).exit_code == 0
        for stdin_args in (["-", "--input-format", "x12"], ["-"]):
            piped = _eval(stdin_args, path.read_bytes())
            assert len(_rows(piped.stdout)) + len(_errors_of(piped)) >= services, piped.output
    empty = tmp_path / "empty.837"
    empty.write_bytes(b"")
    result = _eval([str(empty)])
    assert result.exit_code == 1 and "no claim lines" in result.stderr


def test_binary_columns_are_text_on_every_engine(tmp_path: Path) -> None:
    table = pa.table({"code": pa.array([b"T1016", b"\xff\xfe", b"  "], pa.binary()),
                      "date": pa.array(["2026-01-05"] * 3), "modifiers": pa.array([b"93", b"93", b"93"])})
    src = tmp_path / "b.parquet"
    pq.write_table(table, src)
    python = _rows(_eval([str(src), "--engine", "python"]).stdout)
    engine = _eval([str(src), "--engine", "batch"])
    assert sorted(python) == sorted(_rows(engine.stdout) + _errors_of(engine))
    assert python[0][1] == "payable" and python[1] == (2, "error", ("code", "the text is not UTF-8"))
    assert python[2][2][0] == "code" and "missing" in python[2][2][1]


def test_the_batch_engine_names_a_wrong_argument(tmp_path: Path) -> None:
    policy = load_policy()
    src = EXAMPLES / "claims.csv"
    bad: list[dict[str, Any]] = [{"progress": False}, {"threads": 0}, {"stream": 3}, {"errors_stream": "x"}]
    for kwargs in bad:
        with pytest.raises((TypeError, ValueError), match=next(iter(kwargs))):
            batch.run(src, tmp_path / "o.csv", policy=policy, **kwargs)
    with pytest.raises(TypeError, match="policy"):
        batch.run(src, tmp_path / "o.csv", policy="policy")  # type: ignore[arg-type]
    assert not (tmp_path / "o.csv").exists()


@settings(max_examples=40, deadline=None)
@given(st.one_of(hostile_jsonl().map(lambda d: ("jsonl", d)), hostile_csv().map(lambda d: ("csv", d))))
def test_hostile_files_decide_alike_at_every_entry_point(case: tuple[str, bytes]) -> None:
    """The API, ``eval FILE`` on the interpreter, ``eval FILE -o`` on the batch engine, standard input with and
    without ``-o``: the same decision or the same error at the same line, field for field."""
    fmt, data = case
    policy = load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"in.{fmt}"
        src.write_bytes(data)
        want = sorted((r.number, r.decision.outcome.value if r.decision else "error",
                       r.decision.reason_codes if r.decision else (str(r.error.field), r.error.message))  # type: ignore[union-attr]
                      for r in eval_lines(src, policy=policy))
        python = _eval([str(src), "--engine", "python"])
        assert sorted(_rows(python.stdout)) == want
        for args, stdin in (([str(src)], None), (["-", "--input-format", fmt], data)):
            out = Path(tmp) / "out.jsonl"
            result = _eval([*args, "-o", str(out)], stdin)
            got = _rows(out.read_text(encoding="utf-8")) + _errors_file(formats.errors_path_for(out)) if \
                out.exists() else []
            assert sorted(got) == want, (args, result.output)
            out.unlink(missing_ok=True)
        piped = _eval(["-", "--input-format", fmt], data)
        assert sorted(_rows(piped.stdout)) == want
