"""SYNTHETIC policies: deterministic, loadable, realistic in shape, and never taken for CMAP."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from cmap_policy import ClaimLine, Policy, evaluate, load_policy
from cmap_policy.cli import main
from cmap_policy.testing import PolicyTree, synthetic_policy, write_tree


@pytest.fixture(scope="module")
def tree600() -> PolicyTree:
    return synthetic_policy(n_codes=600, seed=7)


@pytest.fixture(scope="module")
def policy600(tree600: PolicyTree, tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy(write_tree(tree600, tmp_path_factory.mktemp("synthetic") / "policy"))


def _text(tree: PolicyTree) -> str:
    return json.dumps([tree.program, tree.releases, tree.codes], sort_keys=True)


def test_same_seed_same_policy_other_seed_other_policy(tree600: PolicyTree) -> None:
    assert _text(synthetic_policy(n_codes=600, seed=7)) == _text(tree600)
    other = synthetic_policy(n_codes=600, seed=8)
    assert _text(other) != _text(tree600)
    assert len(other.codes) == 600


def test_loads_with_the_requested_number_of_codes(policy600: Policy) -> None:
    assert len(policy600.codes) == 600
    assert len(policy600.releases) >= 4


def test_named_synthetic_everywhere_and_never_cmap(tree600: PolicyTree) -> None:
    program = tree600.program
    assert "SYNTHETIC" in program["program"]["name"] and program["program"]["id"] == "SYNTHETIC"
    assert "SYNTHETIC" in program["program"]["authority"]
    for s in program["sources"]:
        assert s["id"].startswith("SYNTHETIC") and "SYNTHETIC" in s["title"]
    assert all(r["id"].startswith("SYNTHETIC-") for r in tree600.releases["releases"])
    assert all(c["id"].startswith("synthetic-") for c in program["categories"])
    for doc in tree600.codes.values():
        assert "SYNTHETIC" in doc["description"]
        for p in doc["periods"]:
            assert p["citation"]["source"].startswith("SYNTHETIC")
    # Nothing of the bundled CMAP program leaks in: no CMAP source id, no Connecticut statute.
    text = _text(tree600)
    for cmap_word in ("TABLE-2025-12-26", "PB-2023-38", "17b-245", "HUSKY", "Connecticut"):
        assert cmap_word not in text


def test_realistic_shapes(tree600: PolicyTree) -> None:
    periods = [p for doc in tree600.codes.values() for p in doc["periods"]]
    per_code = Counter(len(doc["periods"]) for doc in tree600.codes.values())
    assert per_code[1] and per_code[2] and per_code[3] and per_code[4]
    assert sum(1 for p in periods if "end" in p) > 100
    assert sum(1 for doc in tree600.codes.values() if "end" in doc["periods"][-1]) > 50  # codes that ended
    assert sum(1 for p in periods if "audio-only" in p["modalities"]) > 100
    assert sum(1 for p in periods if p.get("revenue_center_codes")) > 50
    assert sum(1 for p in periods if p.get("limits")) > 50
    assert {lim["kind"] for p in periods for lim in p.get("limits", [])} == {
        "age", "provider-type", "established-patient", "units-per-day"}
    assert sum(1 for p in periods if p["status"] == "not-permitted") > 20
    assert sum(1 for p in periods if p["citation"]["source"] == "SYNTHETIC-READING") > 20
    systems = Counter(doc["system"] for doc in tree600.codes.values())
    assert systems["CPT"] > 100 and systems["HCPCS"] > 100
    assert len({p["introduced_in"] for p in periods}) == len(tree600.releases["releases"])


def test_decisions_cover_the_interesting_outcomes(tree600: PolicyTree, policy600: Policy) -> None:
    rng = random.Random(0)
    seen: Counter[str] = Counter()
    codes = list(tree600.codes)
    for _ in range(3000):
        line = ClaimLine(rng.choice(codes), dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(7 * 365)),
                         modifiers=(rng.choice(["95", "93", "GQ"]),), claim_type="institutional", rcc="0900")
        seen.update(evaluate(policy600, line).reason_codes)
    for reason in ("ON_TELEHEALTH_TABLE", "NOT_PERMITTED_VIA_TELEHEALTH", "OUTSIDE_EFFECTIVE_DATES",
                   "MODALITY_NOT_ALLOWED", "RCC_NOT_ALLOWED"):
        assert seen[reason] > 0, reason


def test_earlier_releases_see_less(policy600: Policy) -> None:
    first, last = policy600.releases[0].id, policy600.releases[-1].id
    assert len(policy600.views[first]) < len(policy600.views[last])


def test_small_and_invalid_sizes(tmp_path: Path) -> None:
    one = synthetic_policy(n_codes=1, seed=1)
    assert len(one.codes) == 1
    assert len(load_policy(write_tree(one, tmp_path / "policy")).codes) == 1
    with pytest.raises(ValueError):
        synthetic_policy(n_codes=0)


def test_cli_writes_a_loadable_tree_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    res = CliRunner().invoke(main, ["synthetic", "--codes", "40", "--seed", "3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output
    assert len(load_policy(out).codes) == 40
    assert json.loads((out / "releases.json").read_text())["releases"] == synthetic_policy(40, 3).releases["releases"]
    before = {p: p.read_bytes() for p in out.rglob("*.json")}
    again = CliRunner().invoke(main, ["synthetic", "--codes", "5", "-o", str(out)])
    assert again.exit_code == 1 and "not empty" in again.output
    assert {p: p.read_bytes() for p in Path(out).rglob("*.json")} == before
