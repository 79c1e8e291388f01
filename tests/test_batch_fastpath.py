"""The fast one-line path: memoized decisions equal the reference, the policy cache is safe, imports stay lazy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmap_policy import LineError, load_policy, parse_line
from cmap_policy.interpreter import decide, evaluate
from cmap_policy.testing import write_tree
from cmap_policy.testing.claims import random_records
from cmap_policy.testing.strategies import claim_records, policy_trees

from .helpers import fixture_tree


def test_memoized_decisions_equal_the_reference_on_many_lines(tmp_path: Path) -> None:
    for policy in (load_policy(), load_policy(write_tree(fixture_tree(), tmp_path / "fixture"))):
        lines = []
        for rec in random_records(policy, 20_000, seed=11):
            try:
                lines.append(parse_line(rec, policy.program))
            except LineError:
                continue
        for release in (None, policy.releases[0].id, policy.releases[-1].id):
            for line in lines + lines[:2000]:  # the second pass is answered from the cache
                assert evaluate(policy, line, release=release) == decide(policy, line, release=release), line


@settings(max_examples=100)
@given(data=st.data())
def test_memoized_decisions_equal_the_reference_on_generated_policies(data: st.DataObject) -> None:
    tree = data.draw(policy_trees())
    with tempfile.TemporaryDirectory() as tmp:
        policy = load_policy(write_tree(tree, Path(tmp) / "p"))
    release = data.draw(st.sampled_from([None, *(r.id for r in policy.releases)]))
    for rec in data.draw(st.lists(claim_records(tree), min_size=1, max_size=30)):
        try:
            line = parse_line(rec, policy.program)
        except LineError:
            continue
        assert evaluate(policy, line, release=release) == decide(policy, line, release=release)
        assert evaluate(policy, line, release=release) == decide(policy, line, release=release)


def test_an_unknown_release_is_still_an_error() -> None:
    policy = load_policy()
    line = parse_line({"code": "T1016", "date": "2026-01-05"}, policy.program)
    with pytest.raises(KeyError):
        evaluate(policy, line, release="NO-SUCH-RELEASE")


def test_the_policy_cache_gives_the_same_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAP_POLICY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CMAP_POLICY_CACHE", "1")
    root = write_tree(fixture_tree(), tmp_path / "p")
    first = load_policy(root)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    second = load_policy(root)
    assert second == first and second is not first
    # a changed file is a new key: the edit is seen
    code = root / "codes" / "99999.json"
    doc = json.loads(code.read_text())
    doc["description"] = "Fixture code, edited"
    code.write_text(json.dumps(doc))
    assert load_policy(root).codes["99999"].description == "Fixture code, edited"


def test_a_damaged_or_unwritable_cache_falls_back_silently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CMAP_POLICY_CACHE_DIR", str(cache))
    monkeypatch.setenv("CMAP_POLICY_CACHE", "1")
    want = load_policy()
    for entry in cache.glob("*.json"):
        entry.write_bytes(b"not JSON {")
    assert load_policy() == want
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("CMAP_POLICY_CACHE_DIR", str(blocker / "cache"))
    assert load_policy() == want
    monkeypatch.setenv("CMAP_POLICY_CACHE", "0")
    assert load_policy() == want


def test_an_invalid_policy_is_never_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAP_POLICY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CMAP_POLICY_CACHE", "1")
    tree = fixture_tree()
    tree.codes["99999"]["periods"][0]["status"] = "maybe"
    root = write_tree(tree, tmp_path / "p")
    for _ in range(2):
        with pytest.raises(Exception, match="maybe"):
            load_policy(root)
    assert not list((tmp_path / "cache").glob("*.json"))


def test_one_line_eval_loads_no_batch_or_schema_modules(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from cmap_policy.cli import main\n"
        "try:\n"
        "    main(['eval', '--code', '90791', '--date', '2026-01-15', '--modifier', '95'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'jsonschema', 'pyx12') if m in sys.modules))\n"
    )
    env = {**os.environ, "CMAP_POLICY_CACHE_DIR": str(tmp_path / "cache"), "CMAP_POLICY_CACHE": "1"}
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
            for _ in range(2)]
    assert json.loads(runs[0].stdout.splitlines()[0])["outcome"] == "payable"
    assert runs[0].stdout.splitlines()[-1] == "['jsonschema']"  # the first run checks the policy
    assert runs[1].stdout.splitlines()[-1] == "[]"  # a warm cache skips the checks


def test_a_batch_run_of_the_command_line_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas, when installed, on its first conversion of a value; the command line's batch run
    tells it there is none (0.15 s of fixed cost), and still decides and writes every format."""
    pytest.importorskip("pandas")  # installed with the spark extra: without it there is nothing to show
    src = tmp_path / "in.csv"
    src.write_text("code,date,modifiers\n90791,2026-01-05,95\nT1016,2026-01-05,93\n", encoding="utf-8")
    script = (
        "import sys\n"
        "from cmap_policy.cli import main\n"
        "try:\n"
        f"    main(['eval', {str(src)!r}, '-o', sys.argv[1]])\n"
        "except SystemExit as e:\n"
        "    print('exit', e.code)\n"
        "print('pandas' in sys.modules and sys.modules['pandas'] is not None)\n"
    )
    for out in ("out.parquet", "out.csv", "out.jsonl"):
        run = subprocess.run([sys.executable, "-c", script, str(tmp_path / out)], capture_output=True, text=True,
                             check=True)
        assert run.stdout.split() == ["exit", "0", "False"], run.stdout + run.stderr
        assert "Traceback" not in run.stderr
    pq = pytest.importorskip("pyarrow.parquet")
    policy = load_policy()
    want = [evaluate(policy, parse_line(r, policy.program)).outcome.value
            for r in ({"code": "90791", "date": "2026-01-05", "modifiers": "95"},
                      {"code": "T1016", "date": "2026-01-05", "modifiers": "93"})]
    assert pq.read_table(tmp_path / "out.parquet").column("outcome").to_pylist() == want
