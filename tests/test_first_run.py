"""What a new user meets in the first ten minutes: a test for each thing that tripped one up.

The README's commands themselves run in tests/test_readme.py; here each trip is pinned down on its own.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cmap_policy import api, resources
from cmap_policy.authoring.diff import diff
from cmap_policy.authoring.edit import code_end
from cmap_policy.cli import main
from cmap_policy.errors import EditError
from cmap_policy.load import load_policy
from cmap_policy.resources import checkout_policy_dir, examples_dir, is_installed_copy, policy_dir, working_policy_dir

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = {"payable", "not_payable", "undetermined", "not_telehealth"}
GOOD = "T1016,2026-01-05,93,11"


def _cli(args: list[str], stdin: str | None = None) -> Result:
    result = CliRunner().invoke(main, args, input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


def _errors(result: Result) -> list[str]:
    return [x for x in result.stderr.splitlines() if x.startswith("error:")]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   check=True, capture_output=True)


# --- 1. `diff main` (and every authoring command) reads the checkout you are in, however the package was installed

@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout holding a copy of the bundled policy committed on main, the current directory (a folder in
    it); the package's own policy is an installed copy elsewhere, as after `pip install .`."""
    if shutil.which("git") is None:
        pytest.skip("git is needed")
    repo = tmp_path / "clone"
    shutil.copytree(policy_dir(), repo / "policy")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "policy")
    _git(repo, "commit", "-q", "-m", "base")
    installed = tmp_path / "site-packages" / "cmap_policy"
    shutil.copytree(policy_dir(), installed / "_bundled" / "policy")
    shutil.copytree(resources.schema_dir(), installed / "_bundled" / "schema")
    monkeypatch.setattr(resources, "_PACKAGE", installed)
    monkeypatch.setattr(resources, "policy_dir", lambda: installed / "_bundled" / "policy")
    (repo / "docs").mkdir()
    monkeypatch.chdir(repo / "docs")
    return repo


def test_the_checkout_you_are_in_is_the_working_policy(checkout: Path) -> None:
    assert checkout_policy_dir() == (checkout / "policy").resolve()
    assert working_policy_dir() == checkout_policy_dir()
    assert is_installed_copy(resources.policy_dir()) and not is_installed_copy(working_policy_dir())


def test_diff_main_compares_the_checkout_not_the_installed_copy(checkout: Path) -> None:
    installed = load_policy(resources.policy_dir()).hash
    assert _cli(["code", "end", "T1016", "--date", "2026-03-31", "--release", "TABLE-2025-12-26"]).exit_code == 0
    assert '"2026-03-31"' in (checkout / "policy" / "codes" / "T1016.json").read_text()
    result = _cli(["diff", "main", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [(r["code"], r["action"], r["end"]) for r in rows] == [("T1016", "ended", "2026-03-31")]
    assert load_policy(resources.policy_dir()).hash == installed  # the installed copy was not written
    for command in (["changelog", "--release", "TABLE-2025-12-26"], ["validate"], ["test"],
                    ["export", "--date", "2026-04-01"]):  # the other authoring commands read the checkout too
        out = _cli(command)
        assert out.exit_code == 0, (command, out.stderr)
        assert ("T1016" not in out.stdout) if command[0] == "export" else True
    assert "2026-03-31" in _cli(["changelog", "--release", "TABLE-2025-12-26"]).stdout


def test_outside_a_checkout_the_installed_copy_is_never_written(checkout: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    outside = checkout.parent / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    assert checkout_policy_dir() is None and working_policy_dir() == resources.policy_dir()
    with pytest.raises(EditError, match="installed with the package"):
        code_end("T1016", date="2026-03-31", release="TABLE-2025-12-26")
    result = _cli(["fmt"])
    assert result.exit_code == 1 and "installed with the package" in result.stderr
    result = _cli(["import", str(checkout / "policy" / "program.json"), "--release", "TABLE-2025-12-26"])
    assert result.exit_code == 1 and "installed with the package" in result.stderr


# --- 2. .xlsx is part of the base install (and a one-line eval still never imports openpyxl: test_layout.py) -----

def test_openpyxl_is_a_dependency_of_the_base_install() -> None:
    requires = importlib.metadata.requires("cmap-policy") or []
    base = [r for r in requires if "extra ==" not in r]
    assert any(re.match(r"openpyxl\b", r) for r in base), requires


# --- 3. the last line says what happened, whatever it was ---------------------------------------------------------

def test_the_summary_when_no_line_was_decided(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"code": "T1016"}\n{"code": "XX", "date": "2026-01-05"}\n')
    result = _cli(["eval", str(src)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "no line was decided: all 2 lines had errors"
    one = _cli(["eval", "--code", "XX", "--date", "2026-01-05"])
    assert one.exit_code == 1 and one.stderr.splitlines()[-1] == "no line was decided: the one line had an error"
    batch = _cli(["eval", str(src), "-o", str(tmp_path / "out.csv")])
    assert batch.exit_code == 1
    assert batch.stderr.splitlines()[-1] == (f"no line was decided: all 2 lines had errors (see "
                                             f"{tmp_path / 'out.errors.jsonl'})")
    for res in (result, one, batch):
        assert "every other line" not in res.stderr and "the other" not in res.stderr


def test_the_summary_when_some_lines_were_decided(tmp_path: Path) -> None:
    src = tmp_path / "mixed.csv"
    src.write_text(f"code,date,modifiers,pos\n{GOOD}\nXX,2026-01-05,,\n{GOOD}\n")
    result = _cli(["eval", str(src)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "1 line(s) could not be decided; the other 2 were"
    batch = _cli(["eval", str(src), "-o", str(tmp_path / "out.jsonl")])
    assert batch.stderr.splitlines()[-1] == (f"1 line(s) could not be decided (see {tmp_path / 'out.errors.jsonl'}); "
                                             "the other 2 were")


# --- 4 and 6. no claim lines: said, and exit 1, whatever the format, engine or source -------------------------------

EMPTY = {"empty.csv": "", "header-only.csv": "code,date,modifiers\n\n", "empty.jsonl": "", "blank.jsonl": "\n  \n",
         "empty.json": "", "empty-array.json": "[]\n", "blank.json": " \n"}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_a_file_with_no_claim_lines_is_an_error_that_says_so(tmp_path: Path, name: str) -> None:
    src = tmp_path / name
    src.write_text(EMPTY[name])
    result = _cli(["eval", str(src)])
    assert (result.exit_code, result.stdout, _errors(result)) == (1, "", [f"error: no claim lines in {src}"])
    if not name.endswith(".json"):  # the batch engine reads CSV and JSON Lines (not JSON documents)
        batch = _cli(["eval", str(src), "-o", str(tmp_path / "out.csv")])
        assert (batch.exit_code, _errors(batch)) == (1, [f"error: no claim lines in {src}"])
        assert "lines read" not in batch.stderr  # no summary of nothing


def test_empty_standard_input_is_an_error_that_says_so() -> None:
    bare = _cli(["eval"], stdin="")  # no INPUT, no --code, and standard input is not a terminal
    assert bare.exit_code == 1
    assert _errors(bare) == ["error: no claim lines in standard input (give INPUT, '-' for standard input, or "
                             "--code and --date for one line)"]
    dash = _cli(["eval", "-"], stdin="\n\n")
    assert (dash.exit_code, _errors(dash)) == (1, ["error: no claim lines in standard input"])


def test_an_empty_json_document_holds_no_lines_through_the_api() -> None:
    assert list(api.eval_lines(io.BytesIO(b"  \n"), input_format="json")) == []


# --- 5. a header's problem is said once, with the columns found; every line still has its error -----------------

def test_a_missing_column_is_reported_once_for_the_header(tmp_path: Path) -> None:
    src = tmp_path / "claims.csv"
    src.write_text("code,modifiers,pos\n" + "T1016,93,11\n" * 3)
    result = _cli(["eval", str(src)])
    assert result.exit_code == 1
    assert _errors(result) == ["error: the header (line 1): no 'date' column: every line needs a procedure code and "
                               "a date of service. The columns found: 'code', 'modifiers', 'pos'"]
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(r["line"], r["field"]) for r in records] == [(2, "date"), (3, "date"), (4, "date")]  # none is lost
    errors = tmp_path / "errors.jsonl"
    batch = _cli(["eval", str(src), "-o", str(tmp_path / "out.csv"), "--errors", str(errors)])
    assert batch.exit_code == 1 and _errors(batch) == _errors(result)
    assert [json.loads(x)["line"] for x in errors.read_text().splitlines()] == [2, 3, 4]


def test_a_column_no_claim_line_has_is_reported_once(tmp_path: Path) -> None:
    src = tmp_path / "claims.csv"
    src.write_text("code,date,notes\n" + f"T1016,2026-01-05,{'x' * 3}\n" * 2)
    result = _cli(["eval", str(src), "--format", "table"])
    assert result.exit_code == 1
    (said,) = _errors(result)
    assert said.startswith("error: the header (line 1): a column that no claim line has: 'notes' (known: code, date")
    assert said.endswith("The columns found: 'code', 'date', 'notes'")


def test_a_header_that_cannot_be_read_is_reported_once(tmp_path: Path) -> None:
    src = tmp_path / "claims.csv"
    src.write_text("code,date,code\n" + "T1016,2026-01-05,T1016\n" * 3)
    result = _cli(["eval", str(src)])
    assert _errors(result) == ["error: the header (line 1): it names the column 'code' twice"]
    assert len(result.stdout.splitlines()) == 3


def test_a_parquet_file_without_a_column_is_reported_once(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "claims.parquet"
    pq.write_table(pa.table({"code": ["T1016"] * 3, "pos": ["11"] * 3}), src)
    result = _cli(["eval", str(src), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 1
    assert _errors(result) == ["error: the file's columns: no 'date' column: every line needs a procedure code and a "
                               "date of service. The columns found: 'code', 'pos'"]
    assert len((tmp_path / "out.errors.jsonl").read_text().splitlines()) == 3


# --- 8. the example files: one line per outcome, in every format the README decides ---------------------------------

def _outcomes(source: Path) -> list[str]:
    results = list(api.eval_lines(source))
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    return [r.decision.outcome.value for r in results if r.decision is not None]


@pytest.mark.parametrize("name", ["claims.csv", "claims.837"])
def test_each_example_file_has_one_line_per_outcome(name: str) -> None:
    outcomes = _outcomes(examples_dir() / name)
    assert sorted(outcomes) == sorted(OUTCOMES)


def test_the_example_837_is_a_professional_claim_with_telehealth_lines() -> None:
    text = (examples_dir() / "claims.837").read_text()
    assert text.startswith("ISA*") and "ST*837*" in text and "*005010X222A2" in text
    assert re.findall(r"SV1\*HC:[0-9A-Z]{5}:(9[35]|G[TQ0]|FQ)\*", text)  # telehealth modifiers on service lines
    assert (examples_dir() / "LICENSE.LinuxForHealth-x12.txt").is_file()
    assert "LICENSE.LinuxForHealth-x12.txt" in (examples_dir() / "README.md").read_text()


def test_the_example_parquet_is_what_its_generator_writes_and_decides_as_the_csv(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")

    spec = importlib.util.spec_from_file_location("make_claims_parquet", examples_dir() / "make_claims_parquet.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = pq.read_table(examples_dir() / "claims.parquet")
    assert committed.equals(generator.table())
    out = tmp_path / "out.jsonl"
    assert _cli(["eval", str(examples_dir() / "claims.parquet"), "-o", str(out)]).exit_code == 0
    from_parquet = [(r["line_id"], r["outcome"]) for r in map(json.loads, out.read_text().splitlines())]
    from_csv = [(r.line.line_id, r.decision.outcome.value) for r in api.eval_lines(examples_dir() / "claims.csv")
                if r.line is not None and r.decision is not None]
    assert from_parquet == from_csv and {o for _, o in from_csv} == OUTCOMES


# --- 9. a diff of two releases of one tree tells the sides apart ----------------------------------------------------

def test_two_releases_of_one_tree_show_each_release_and_its_view_hash() -> None:
    result = _cli(["diff", "PB-2020-14", "PB-2023-38", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    d = json.loads(result.stdout)
    base, head = d["base"], d["head"]
    assert (base["release"], head["release"]) == ("PB-2020-14", "PB-2023-38")
    assert base["policy_hash"] == head["policy_hash"] and base["view_hash"] != head["view_hash"]
    md = _cli(["diff", "PB-2020-14", "PB-2023-38"]).stdout
    assert f"view hash `{base['view_hash'][:12]}`" in md and f"view hash `{head['view_hash'][:12]}`" in md
    assert "Both sides are releases of one tree" in md


def test_a_release_view_hash_is_what_the_release_publishes(tmp_path: Path) -> None:
    """The same release of two trees has the same view hash when it publishes the same; a later release
    changes the tree's hash, not an earlier release's view."""
    tree = tmp_path / "policy"
    shutil.copytree(policy_dir(), tree)
    before = diff("PB-2020-14", "PB-2023-38", policy=tree)
    assert _cli(["code", "end", "T1016", "--date", "2026-03-31", "--release", "TABLE-2025-12-26",
                 "--policy", str(tree)]).exit_code == 0
    after = diff("PB-2020-14", "TABLE-2025-12-26", policy=tree)
    assert after.base.policy.hash != before.base.policy.hash
    assert after.base.view_hash == before.base.view_hash
    latest = diff("TABLE-2025-12-26", "TABLE-2025-12-26")  # the bundled tree, without the change
    assert after.head.view_hash != latest.base.view_hash


# --- 10. `cmap-policy test` starts with what matters ----------------------------------------------------------------

def test_the_author_test_report_starts_without_a_blank_line(tmp_path: Path) -> None:
    result = _cli(["test", "--policy", str(policy_dir())])
    assert result.exit_code == 0 and result.stdout.splitlines()[0].startswith("coverage:")
    tree = tmp_path / "policy"
    shutil.copytree(policy_dir(), tree)
    case = tree / "tests" / "billing.json"  # its first line has no telehealth marker: at POS 02 it has one
    text = case.read_text()
    assert '"pos": "11"' in text
    case.write_text(text.replace('"pos": "11"', '"pos": "02"', 1))
    failing = _cli(["test", "--policy", str(tree)])
    lines = failing.stdout.splitlines()
    assert failing.exit_code == 1 and lines[0].startswith("FAIL") and "" in lines  # the blank line parts them
