"""cmap-policy fmt: one canonical layout, idempotent, and never a change of meaning."""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cmap_policy import evaluate, load_policy, parse_line
from cmap_policy.authoring.fmt import fmt, format_document
from cmap_policy.cli import main
from cmap_policy.resources import policy_dir
from cmap_policy.testing import PolicyTree, write_tree
from cmap_policy.testing.strategies import claim_records, policy_trees


def _shuffled(value: Any, rng: random.Random, key: str = "") -> Any:
    """The same data in another layout: keys and set-like lists in a random order (releases keep theirs)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng, k) for k in keys}
    if isinstance(value, list):
        items = [_shuffled(v, rng) for v in value]
        if key != "releases":
            rng.shuffle(items)
        return items
    return value


def _write_compact(tree: PolicyTree, root: Path, rng: random.Random) -> None:
    """Write ``tree`` shuffled, with a layout no author would choose (no indentation, no final newline)."""
    (root / "codes").mkdir(parents=True, exist_ok=True)
    docs = {"program.json": tree.program, "releases.json": tree.releases,
            **{f"codes/{c}.json": d for c, d in tree.codes.items()}}
    for rel, doc in docs.items():
        (root / rel).write_text(json.dumps(_shuffled(doc, rng), ensure_ascii=rng.random() < 0.5), encoding="utf-8")


def _texts(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.json"))}


@settings(max_examples=100)
@given(tree=policy_trees(), seed=st.integers(0, 2**32 - 1))
def test_fmt_is_idempotent_canonical_and_keeps_the_hash(tree: PolicyTree, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        plain, messy = Path(tmp) / "a" / "policy", Path(tmp) / "b" / "policy"
        write_tree(tree, plain)
        _write_compact(tree, messy, rng)
        before = load_policy(messy).hash
        first = fmt(messy)
        assert first.changed and not first.errors
        once = _texts(messy)
        again = fmt(messy)
        assert again.changed == () and _texts(messy) == once  # fmt(fmt(x)) == fmt(x)
        assert fmt(messy, check=True).ok
        fmt(plain)
        assert _texts(plain) == once  # one canonical form, whatever the layout it started from
        assert load_policy(messy).hash == before == load_policy(plain).hash
        for text in once.values():
            assert text.endswith("}\n") and not text.endswith("\n\n")
            assert text.startswith('{\n  "$schema": ')


def _decision(policy: Any, rec: dict[str, Any], release: str) -> dict[str, Any]:
    out: dict[str, Any] = evaluate(policy, parse_line(rec, policy.program), release=release).as_dict()
    out["to_confirm"] = sorted(out["to_confirm"], key=lambda x: x["kind"])  # limit order in a file means nothing
    return out


@settings(max_examples=100)
@given(data=st.data())
def test_formatting_never_changes_a_decision(data: st.DataObject) -> None:
    tree = data.draw(policy_trees())
    records = data.draw(st.lists(claim_records(tree), min_size=25, max_size=25))
    with tempfile.TemporaryDirectory() as tmp:
        root = write_tree(tree, Path(tmp) / "policy")
        old = load_policy(root)
        fmt(root)
        new = load_policy(root)
        assert new.hash == old.hash
        for rel in old.releases:
            for rec in records:
                assert _decision(new, rec, rel.id) == _decision(old, rec, rel.id), rec


def test_the_bundled_policy_is_in_canonical_form() -> None:
    result = fmt(policy_dir(), check=True)
    assert result.changed == () and result.errors == (), "run `cmap-policy fmt` and commit the result"
    assert result.checked >= 15


def test_keys_follow_the_schema_and_sets_are_sorted_but_releases_keep_their_order() -> None:
    code = {"periods": [
        {"introduced_in": "R2", "citation": {"section": "row", "source": "S"}, "guideline": "g",
         "modalities": ["audio-video", "audio-only"], "status": "permitted", "effective": "2024-01-01"},
        {"ended_in": "R2", "end": "2023-12-31", "introduced_in": "R1", "citation": {"source": "S"}, "guideline": "g",
         "modalities": [], "status": "not-permitted", "effective": "2020-01-01"}],
        "category": "x", "description": "d", "system": "CPT", "code": "90791",
        "$schema": "../../schema/code.schema.json"}
    text = format_document(code, "code")
    data = json.loads(text)
    assert list(data) == ["$schema", "code", "system", "description", "category", "periods"]
    assert [p["effective"] for p in data["periods"]] == ["2020-01-01", "2024-01-01"]
    assert list(data["periods"][0]) == ["effective", "end", "status", "modalities", "guideline", "citation",
                                        "introduced_in", "ended_in"]
    assert data["periods"][1]["modalities"] == ["audio-only", "audio-video"]
    assert list(data["periods"][1]["citation"]) == ["source", "section"]
    assert text.splitlines()[1] == '  "$schema": "../../schema/code.schema.json",'

    releases = {"releases": [{"summary": "s", "implements": ["B", "A"], "id": "NEW", "published": "2025-01-01",
                              "effective": "2025-01-01"},
                             {"id": "OLD", "published": "2020-01-01", "effective": "2020-01-01", "implements": ["C"],
                              "summary": "s"}],
                "$schema": "../schema/releases.schema.json"}
    data = json.loads(format_document(releases, "releases"))
    assert [r["id"] for r in data["releases"]] == ["NEW", "OLD"]
    assert data["releases"][0]["implements"] == ["A", "B"]
    assert list(data["releases"][0]) == ["id", "published", "effective", "implements", "summary"]


def test_documents_outside_the_hash_keep_their_list_order(tmp_path: Path) -> None:
    doc = {"cases": [{"name": "b"}, {"name": "a"}], "$schema": "../../schema/tests.schema.json"}
    path = tmp_path / "policy" / "tests" / "x.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    fmt(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert next(iter(data)) == "$schema" and [c["name"] for c in data["cases"]] == ["b", "a"]


def test_cli_check_lists_the_files_and_exits_1_then_fmt_fixes_them(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    program = root / "program.json"
    program.write_text(json.dumps(json.loads(program.read_text(encoding="utf-8"))), encoding="utf-8")
    res = CliRunner().invoke(main, ["fmt", "--check", str(root)])
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [f"would reformat {program}"]  # tmp_path is outside the current folder
    assert "not in canonical form" in res.stderr
    res = CliRunner().invoke(main, ["fmt", str(root)])
    assert res.exit_code == 0 and res.stdout.splitlines() == [f"reformatted {program}"]
    assert CliRunner().invoke(main, ["fmt", "--check", str(root)]).exit_code == 0


def test_a_file_that_is_not_json_is_reported_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    bad = root / "codes" / "T1016.json"
    broken = bad.read_text(encoding="utf-8").replace('"system"', '"system"  "x"', 1)
    bad.write_text(broken, encoding="utf-8")
    res = CliRunner().invoke(main, ["fmt", str(root)])
    assert res.exit_code == 1
    assert f"error: {bad}:" in res.stderr and "not valid JSON" in res.stderr
    assert bad.read_text(encoding="utf-8") == broken


def test_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["fmt", str(tmp_path / "nowhere")])
    assert res.exit_code == 1 and "no such file or folder" in res.stderr
