"""Loading and checking: every meaning check, located errors with hints, the content hash."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from cmap_policy import PolicyError, Problem, load_policy, validate
from cmap_policy.resources import policy_dir
from cmap_policy.testing import PolicyTree, bundled_tree, write_tree


@pytest.fixture
def tree() -> PolicyTree:
    return bundled_tree()


def problems_of(tree: PolicyTree, tmp_path: Path) -> list[Problem]:
    root = write_tree(tree, tmp_path / "policy")
    with pytest.raises(PolicyError) as info:
        load_policy(root)
    return info.value.problems


def only(problems: list[Problem], rule: str) -> Problem:
    found = [p for p in problems if p.rule == rule]
    assert found, f"no {rule} problem in {[str(p) for p in problems]}"
    return found[0]


def test_bundled_policy_loads_and_is_immutable() -> None:
    policy = load_policy()
    assert "97153" in policy.codes and policy.latest.id == "TABLE-2025-12-26"
    with pytest.raises(TypeError):
        policy.codes["X"] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        policy.hash = "x"  # type: ignore[misc]


def test_overlapping_periods_name_both_and_the_dates(tree: PolicyTree, tmp_path: Path) -> None:
    del tree.codes["97153"]["periods"][0]["end"]
    del tree.codes["97153"]["periods"][0]["ended_in"]
    p = only(problems_of(tree, tmp_path), "meaning:overlap")
    assert p.file.endswith("codes/97153.json")
    assert "2020-03-18" in p.message and "2025-12-26" in p.message and "overlap from 2025-12-26" in p.message
    assert p.line is not None and p.hint


def test_overlap_is_checked_in_every_release(tree: PolicyTree, tmp_path: Path) -> None:
    # Ended only by the last release while the next period was added earlier: both apply in between.
    tree.codes["97153"]["periods"][0]["ended_in"] = "TABLE-2025-12-26"
    tree.codes["97153"]["periods"][1]["introduced_in"] = "PB-2024-81"
    only(problems_of(tree, tmp_path), "meaning:overlap")


def test_end_before_effective(tree: PolicyTree, tmp_path: Path) -> None:
    tree.codes["H2019"]["periods"][0]["end"] = "2019-01-01"
    p = only(problems_of(tree, tmp_path), "meaning:end-before-effective")
    assert p.pointer == "/periods/0/end" and "2019-01-01" in p.message


def test_unknown_release_and_source(tree: PolicyTree, tmp_path: Path) -> None:
    tree.codes["H2019"]["periods"][0]["introduced_in"] = "PB-1999-01"
    tree.codes["T1017"]["periods"][0]["citation"]["source"] = "NOWHERE"
    problems = problems_of(tree, tmp_path)
    assert "PB-1999-01" in only(problems, "meaning:unknown-release").message
    src = only(problems, "meaning:unknown-source")
    assert src.pointer == "/periods/0/citation/source" and src.file.endswith("T1017.json")


def test_release_ending_before_it_was_added(tree: PolicyTree, tmp_path: Path) -> None:
    period = tree.codes["H2019"]["periods"][0]
    period["introduced_in"] = "PB-2023-38"
    period["ended_in"] = "PB-2020-14"
    p = only(problems_of(tree, tmp_path), "meaning:ended-before-introduced")
    assert "PB-2020-14" in p.message and "PB-2023-38" in p.message


def test_duplicate_code_and_file_name(tree: PolicyTree, tmp_path: Path) -> None:
    tree.codes["H2019-copy"] = json.loads(json.dumps(tree.codes["H2019"]))
    problems = problems_of(tree, tmp_path)
    assert "H2019-copy.json" in only(problems, "meaning:file-name").message
    assert "duplicate code 'H2019'" in only(problems, "meaning:duplicate").message


def test_unknown_modifier_modality_and_duplicate_pos(tree: PolicyTree, tmp_path: Path) -> None:
    tree.program["modifiers"][0]["modality"] = "smoke-signals"
    tree.program["places_of_service"].append(dict(tree.program["places_of_service"][0]))
    tree.codes["T1016"]["periods"][1]["modalities"] = ["carrier-pigeon"]
    problems = problems_of(tree, tmp_path)
    mods = [p for p in problems if p.rule == "meaning:unknown-modality"]
    assert {Path(p.file).name for p in mods} == {"program.json", "T1016.json"}
    assert "place of service '02'" in only(problems, "meaning:duplicate").message


def test_schema_errors_name_file_line_field_and_hint(tree: PolicyTree, tmp_path: Path) -> None:
    tree.codes["90791"]["periods"][0]["effective"] = "2023-02-30"
    tree.codes["H0031"]["periods"][0]["modalitiez"] = ["audio-video"]
    problems = problems_of(tree, tmp_path)
    date = next(p for p in problems if p.file.endswith("90791.json"))
    assert date.pointer == "/periods/0/effective" and "not a real calendar date" in date.message
    assert date.line is not None and date.line > 1 and date.hint
    extra = next(p for p in problems if p.file.endswith("H0031.json"))
    assert "modalitiez" in extra.message and extra.rule == "schema:additionalProperties"
    text = str(date)
    assert text.startswith(f"{date.file}:{date.line}:") and "/periods/0/effective" in text and "hint:" in text


def test_every_problem_is_reported_not_just_the_first(tree: PolicyTree, tmp_path: Path) -> None:
    tree.codes["H2019"]["periods"][0]["end"] = "2019-01-01"
    tree.codes["T1017"]["category"] = "nope"
    tree.codes["S9484"]["system"] = "CPT"
    rules = {p.rule for p in problems_of(tree, tmp_path)}
    assert {"meaning:end-before-effective", "meaning:unknown-category", "meaning:code-system"} <= rules


def test_broken_json_is_located(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    (root / "codes" / "T1016.json").write_text('{\n  "code": "T1016",\n  "system": "HCPCS"\n  "x": 1\n}\n')
    problems = validate(root)
    assert len(problems) == 1
    p = problems[0]
    assert p.file.endswith("codes/T1016.json") and p.line == 4 and p.rule == "json"


def test_empty_and_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    (root / "codes" / "T1016.json").write_text("")
    (root / "releases.json").unlink()
    problems = validate(root)
    messages = {Path(p.file).name: p.message for p in problems}
    assert messages["T1016.json"] == "the file is empty"
    assert messages["releases.json"] == "the file is missing"


def test_hash_is_stable_across_key_and_file_order(tree: PolicyTree, tmp_path: Path) -> None:
    original = load_policy(write_tree(tree, tmp_path / "a")).hash
    rng = random.Random(7)

    def shuffle(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {k: shuffle(v) for k, v in items}
        if isinstance(value, list):
            return [shuffle(v) for v in value]
        return value

    shuffled = bundled_tree()
    shuffled.program = shuffle(shuffled.program)
    for name in list(shuffled.codes):
        doc = shuffle(shuffled.codes[name])
        doc["periods"].reverse()
        shuffled.codes[name] = doc
    shuffled.program["sources"].reverse()
    shuffled.codes = dict(reversed(list(shuffled.codes.items())))
    assert load_policy(write_tree(shuffled, tmp_path / "b")).hash == original
    tree.codes["T1016"]["periods"][1]["guideline"] += " Changed."
    assert load_policy(write_tree(tree, tmp_path / "c")).hash != original
