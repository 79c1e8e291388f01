"""cmap-policy diff: rows and an exhaustive decision-level diff, checked against the interpreter itself."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cmap_policy import ClaimLine, evaluate, load_policy, parse_line
from cmap_policy.authoring.diff import (
    NO_DECISION_CHANGES,
    PolicyDiff,
    Side,
    diff,
    line_class,
    signature,
    signature_dict,
)
from cmap_policy.authoring.edit import code_add, code_end, code_set, release_new
from cmap_policy.authoring.fmt import fmt
from cmap_policy.cli import main
from cmap_policy.model import Policy
from cmap_policy.resources import policy_dir
from cmap_policy.testing import PolicyTree, write_tree
from cmap_policy.testing.strategies import CODE_POOL, MODALITIES, RCCS, claim_records, code_doc, policy_trees

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=GIT_ENV).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of the bundled policy, committed on main."""
    shutil.copytree(policy_dir(), tmp_path / "policy")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "policy")
    git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path


def _line(rec: dict[str, Any]) -> ClaimLine:
    rest = dict(rec)
    return ClaimLine(rest.pop("code"), dt.date.fromisoformat(rest.pop("date")),
                     modifiers=tuple(rest.pop("modifiers", ())), **rest)


def assert_examples_flip(d: PolicyDiff, parsed: int | None = None) -> None:
    """Every line the diff says flips does flip, from exactly the before to exactly the after it reports.

    The first ``parsed`` examples (default: all) also go through ``parse_line``, as a user's line would.
    """
    for i, (rec, before, after) in enumerate(d.flips()):
        line = parse_line(rec, d.head.policy.program) if parsed is None or i < parsed else _line(rec)
        assert before != after
        assert signature_dict(signature(evaluate(d.base.policy, line, release=d.base.release))) == before, rec
        assert signature_dict(signature(evaluate(d.head.policy, line, release=d.head.release))) == after, rec


def covered(d: PolicyDiff, line: ClaimLine) -> bool:
    """Whether a reported range holds ``line``: its code, date, claim type, RCC class and modality."""
    key = line_class(d.base, d.head, line)
    for e in d.decisions:
        if e["code"] != key["code"] or e["claim_type"] != line.claim_type:
            continue
        if not ((e["from"] is None or e["from"] <= line.date.isoformat())
                and (e["to"] is None or line.date.isoformat() <= e["to"])):
            continue
        if e["rcc"] == key["rcc"] and e["modality"] == key["modality"]:
            return True
    return False


def assert_flips_are_reported(d: PolicyDiff, records: list[dict[str, Any]]) -> int:
    flipped = 0
    for rec in records:
        line = parse_line(rec, d.head.policy.program)
        a = signature(evaluate(d.base.policy, line, release=d.base.release))
        b = signature(evaluate(d.head.policy, line, release=d.head.release))
        if a != b:
            flipped += 1
            assert covered(d, line), f"{rec} flips ({a} -> {b}) but no reported range holds it"
    return flipped


# --- properties over generated policies ---------------------------------------------------------------------------


def _iso(day: dt.date) -> str:
    return day.isoformat()


@st.composite
def mutated(draw: st.DrawFn, tree: PolicyTree) -> PolicyTree:
    """``tree`` after a new release that adds, ends and changes rows, and adds or drops codes (always valid)."""
    out = tree.copy()
    rels = out.releases["releases"]
    last = dt.date.fromisoformat(rels[-1]["published"])
    new_id = f"GEN-R{len(rels) + 1}"
    day = last + dt.timedelta(days=draw(st.integers(0, 400)))
    rels.append({"id": new_id, "published": _iso(day), "effective": _iso(day), "implements": ["GENERATED"],
                 "summary": "Generated change", "coverage": draw(st.sampled_from(["partial", "complete"]))})
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["end", "add-period", "change", "add-code", "drop-code"]))
        codes = sorted(out.codes)
        if action == "add-code":
            free = [c for c in CODE_POOL if c not in out.codes]
            if free:
                code = draw(st.sampled_from(free))
                out.codes[code] = draw(code_doc(code, len(rels)))
            continue
        if not codes:
            continue
        code = draw(st.sampled_from(codes))
        periods = out.codes[code]["periods"]
        last_p = max(periods, key=lambda p: p["effective"])
        if action == "drop-code" and len(out.codes) > 1:
            del out.codes[code]
        elif action == "end" and "end" not in last_p:
            eff = dt.date.fromisoformat(last_p["effective"])
            last_p["end"] = _iso(eff + dt.timedelta(days=draw(st.integers(0, 900))))
            last_p["ended_in"] = new_id
        elif action == "add-period":
            if "end" not in last_p:
                eff = dt.date.fromisoformat(last_p["effective"])
                last_p["end"] = _iso(eff + dt.timedelta(days=draw(st.integers(0, 900))))
                last_p["ended_in"] = new_id
            start = dt.date.fromisoformat(last_p["end"]) + dt.timedelta(days=draw(st.integers(1, 60)))
            mods = draw(st.lists(st.sampled_from(MODALITIES[:2]), min_size=1, unique=True))
            p: dict[str, Any] = {"effective": _iso(start), "status": "permitted", "modalities": mods,
                                 "guideline": "Generated row.", "citation": {"source": "GENERATED"},
                                 "introduced_in": new_id}
            if draw(st.booleans()):
                p["revenue_center_codes"] = draw(st.lists(st.sampled_from(RCCS), min_size=1, unique=True))
            if draw(st.booleans()):
                p["limits"] = [{"kind": "age", "min_age": draw(st.integers(0, 20)),
                                "max_age": draw(st.integers(21, 90)), "guideline": "Generated age limit."}]
            periods.append(p)
        elif action == "change":
            p = draw(st.sampled_from(periods))
            what = draw(st.sampled_from(["modalities", "status", "rcc", "limits", "guideline"]))
            if what == "guideline":
                p["guideline"] = "Changed wording only."
            elif what == "status":
                if p["status"] == "permitted":
                    p.update({"status": "not-permitted", "modalities": []})
                    for key in ("revenue_center_codes", "limits", "undetermined_modalities"):
                        p.pop(key, None)
                else:
                    p.update({"status": "permitted", "modalities": ["audio-video"]})
            elif p["status"] == "permitted":
                if what == "modalities":
                    p["modalities"] = draw(st.lists(st.sampled_from(MODALITIES), min_size=1, unique=True))
                    for lim in p.get("limits", []):
                        lim.pop("modalities", None)
                    silent = [m for m in p.pop("undetermined_modalities", []) if m not in p["modalities"]]
                    if silent:
                        p["undetermined_modalities"] = silent
                elif what == "rcc":
                    p["revenue_center_codes"] = draw(st.lists(st.sampled_from(RCCS), min_size=1, unique=True))
                else:
                    p["limits"] = [{"kind": "units-per-day", "max_units": draw(st.integers(1, 6)),
                                    "guideline": "Generated units limit."},
                                   {"kind": "provider-type", "provider_types": ["clinic"],
                                    "guideline": "Generated provider limit."}]
    return out


def _load(tree: PolicyTree, root: Path) -> Policy:
    return load_policy(write_tree(tree, root))


def _check_pair(a: PolicyTree, b: PolicyTree, records: list[dict[str, Any]]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb = _load(a, Path(tmp) / "a" / "policy"), _load(b, Path(tmp) / "b" / "policy")
    d = diff(Side(pa, pa.latest.id, "a"), Side(pb, pb.latest.id, "b"))
    assert_examples_flip(d, parsed=25)
    return assert_flips_are_reported(d, records)


@settings(max_examples=120)
@given(data=st.data())
def test_property_diff_of_a_policy_and_its_mutation(data: st.DataObject) -> None:
    tree = data.draw(policy_trees(), label="base")
    other = data.draw(mutated(tree), label="head")
    records = data.draw(st.lists(claim_records(tree), min_size=15, max_size=15))
    records += data.draw(st.lists(claim_records(other), min_size=15, max_size=15))
    _check_pair(tree, other, records)


@settings(max_examples=100)
@given(data=st.data())
def test_property_diff_of_independent_policies(data: st.DataObject) -> None:
    a = data.draw(policy_trees(max_codes=4), label="base")
    b = data.draw(policy_trees(max_codes=4), label="head")
    records = data.draw(st.lists(claim_records(a), min_size=15, max_size=15))
    records += data.draw(st.lists(claim_records(b), min_size=15, max_size=15))
    _check_pair(a, b, records)


@settings(max_examples=60)
@given(data=st.data())
def test_property_diff_between_two_releases_of_one_policy(data: st.DataObject) -> None:
    tree = data.draw(policy_trees(), label="tree")
    ids = [r["id"] for r in tree.releases["releases"]]
    ra, rb = data.draw(st.sampled_from(ids)), data.draw(st.sampled_from(ids))
    records = data.draw(st.lists(claim_records(tree), min_size=30, max_size=30))
    with tempfile.TemporaryDirectory() as tmp:
        pol = _load(tree, Path(tmp) / "policy")
    d = diff(Side(pol, ra, ra), Side(pol, rb, rb))
    assert_examples_flip(d, parsed=25)
    assert_flips_are_reported(d, records)
    if ra == rb:
        assert d.decisions == [] and d.rows == []


@settings(max_examples=30)
@given(data=st.data())
def test_skipping_cells_with_the_same_period_on_both_sides_loses_nothing(data: st.DataObject) -> None:
    tree = data.draw(policy_trees(max_codes=4), label="base")
    other = data.draw(mutated(tree), label="head")
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb = _load(tree, Path(tmp) / "a" / "policy"), _load(other, Path(tmp) / "b" / "policy")
    sa, sb = Side(pa, pa.latest.id, "a"), Side(pb, pb.latest.id, "b")
    assert diff(sa, sb).decisions == diff(sa, sb, exhaustive=True).decisions


# --- the bundled policy ---------------------------------------------------------------------------------------------


def test_release_ids_compare_the_policy_as_published_in_each() -> None:
    d = diff("PB-2020-14", "PB-2023-38")
    assert {(r["action"], r["code"]) for r in d.rows} == {("ended", c) for c in (
        "90846", "97153", "H2012", "H2014", "H2019", "S9484", "S9485", "T1016", "T1017")}
    assert all(r["end"] == "2023-05-11" and r["citation"]["source"] == "PB-2020-14" for r in d.rows)
    assert {e["code"] for e in d.decisions} == {r["code"] for r in d.rows}
    # from 2023-05-12 on (cut where the place-of-service guidance starts on 2025-12-26: the flips differ there)
    assert {e["from"] for e in d.decisions} == {"2023-05-12", "2025-12-26"}
    assert {e["to"] for e in d.decisions} == {"2025-12-25", None}
    assert [r["id"] for r in d.releases] == ["PB-2020-17", "PB-2020-28", "PB-2020-38", "PB-2020-44", "PB-2020-90",
                                             "EO-7DD-7FF", "PA-20-2", "PA-21-9", "PB-2023-38"]
    assert_examples_flip(d)
    # lines that were payable in the pandemic are undetermined after it: no public source says what followed
    assert any(before["outcome"] == "payable" and after["outcome"] == "undetermined"
               for _, before, after in d.flips())
    assert not any(after["outcome"] == "not_payable" and before["outcome"] == "payable"
                   for _, before, after in d.flips())


def test_the_same_policy_has_no_changes() -> None:
    d = diff("TABLE-2025-12-26", "TABLE-2025-12-26")
    assert d.is_empty and d.summary() == NO_DECISION_CHANGES
    assert "**No decision changes.**" in d.to_markdown()


def test_a_formatting_only_change_reports_no_decision_changes(repo: Path) -> None:
    for path in (repo / "policy").rglob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data.get("periods"), list):
            data["periods"].reverse()
        path.write_text(json.dumps(dict(reversed(list(data.items())))), encoding="utf-8")
    git(repo, "commit", "-q", "-am", "messy layout")
    assert fmt(repo / "policy").changed
    res = CliRunner().invoke(main, ["diff", "main", "--policy", str(repo / "policy")])
    assert res.exit_code == 0, res.output
    assert "**No decision changes.**" in res.stdout and "No rows added, ended or changed." in res.stdout
    assert "same content hash" in res.stdout
    data = json.loads(CliRunner().invoke(main, ["diff", "main", "--policy", str(repo / "policy"), "--format",
                                                "json"]).stdout)
    assert data["summary"] == NO_DECISION_CHANGES and data["rows"] == [] and data["decisions"] == []


def test_done_when_add_a_code_end_another_start_a_release(repo: Path) -> None:
    """The issue's scenario, as a new author would do it: three edit commands, then validate, test and diff."""
    pol = str(repo / "policy")
    runner = CliRunner()
    steps = [
        ["release", "new", "PB-2026-05", "--date", "2026-03-01", "--effective", "2026-04-01", "--source", "PB-2026-05",
         "--source-title", "Provider Bulletin 2026-05: telehealth table update", "--source-url",
         "https://www.ctdssmap.com/CTPortal/Provider/Provider-Bulletins", "--summary",
         "Adds G2012 by audio-video; ends T1016."],
        ["code", "add", "G2012", "--effective", "2026-04-01", "--modality", "audio-video", "--release", "PB-2026-05",
         "--source", "PB-2026-05", "--section", "table", "--description", "Brief virtual check-in by a physician",
         "--category", "behavioral-health"],
        ["code", "end", "T1016", "--date", "2026-03-31", "--release", "PB-2026-05", "--removed"],
    ]
    for step in steps:
        res = runner.invoke(main, [*step, "--policy", pol])
        assert res.exit_code == 0, res.output
    assert runner.invoke(main, ["validate", pol]).exit_code == 0
    assert runner.invoke(main, ["fmt", "--check", pol]).exit_code == 0
    if "test" in main.commands:  # the authors' own tests still pass
        res = runner.invoke(main, ["test", str(repo / "policy" / "tests"), "--policy", pol])
        assert res.exit_code == 0, res.output

    res = runner.invoke(main, ["diff", "main", "--policy", pol, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [(r["action"], r["code"], r["effective"], r["end"]) for r in data["rows"]] == [
        ("added", "G2012", "2026-04-01", None), ("ended", "T1016", "2025-12-26", "2026-03-31")]
    assert data["rows"][0]["citation"]["source"] == "PB-2026-05"
    assert [r["id"] for r in data["releases"]] == ["PB-2026-05"]
    assert data["program"] == [{"section": "sources", "id": "PB-2026-05", "action": "added"}]
    assert {e["code"] for e in data["decisions"]} == {"G2012", "T1016"}

    d = diff("main", policy=pol)
    assert_examples_flip(d)
    outcome_flips = {(rec["code"], rec["date"], tuple(rec.get("modifiers", ())), b["outcome"], a["outcome"])
                     for rec, b, a in d.flips() if b["outcome"] != a["outcome"] and "pos" not in rec
                     and rec["claim_type"] == "professional"}
    assert outcome_flips == {
        # no public source named G2012 before: undetermined, now payable by audio-video
        ("G2012", "2026-04-01", ("95",), "undetermined", "payable"),
        ("G2012", "2026-04-01", ("93",), "undetermined", "not_payable"),
        ("G2012", "2026-04-01", ("GQ",), "undetermined", "not_payable"),
        # the bulletin takes T1016 off the table (--removed): not payable from the day after its end
        ("T1016", "2026-04-01", ("95",), "payable", "not_payable"),
        ("T1016", "2026-04-01", ("93",), "payable", "not_payable"),
        ("T1016", "2026-04-01", ("G0",), "payable", "not_payable"),
    }
    for e in d.decisions:  # T1016 only changes from the day after its new end date
        if e["code"] == "T1016":
            assert e["from"] == "2026-04-01" and e["to"] is None
    # nothing else: every other code decides every line as before, on every date
    base = load_policy(Path(git(repo, "rev-parse", "--show-toplevel").strip()) / "policy")
    unchanged = sorted(set(base.codes) - {"T1016"})
    lines = [ClaimLine(c, dt.date(y, m, 15), modifiers=mods) for c in unchanged for y in (2020, 2023, 2026)
             for m in (3, 5, 9) for mods in ((), ("95",), ("93",))]
    head = load_policy(pol)
    for line in lines:
        assert signature(evaluate(base, line)) == signature(evaluate(head, line)), line

    md = runner.invoke(main, ["diff", "main", "--policy", pol]).stdout
    assert "| added | G2012 | from 2026-04-01 | payable by audio-video | PB-2026-05, table | PB-2026-05 |" in md
    assert "| ended | T1016 | 2025-12-26 to 2026-03-31 |" in md
    assert "#### G2012" in md and "#### T1016" in md and "#### T1017" not in md


def test_revisions_are_read_without_a_checkout(repo: Path) -> None:
    release_new("PB-2026-05", date="2026-03-01", source=["PB-2023-38"], summary="x", policy=repo / "policy")
    git(repo, "commit", "-q", "-am", "release")
    code_add("G2012", effective="2026-04-01", modality=["audio-video"], release="PB-2026-05", source="PB-2023-38",
             description="Brief virtual check-in", category="behavioral-health", policy=repo / "policy")
    code_end("T1016", date="2026-03-31", release="PB-2026-05", policy=repo / "policy")
    d = diff("main~1", "main", policy=repo / "policy")
    assert [r["id"] for r in d.releases] == ["PB-2026-05"] and d.rows == [] and d.decisions == []
    assert git(repo, "status", "--porcelain").strip() != ""  # the working tree was not touched
    d = diff("rev:main", policy=repo / "policy")
    assert {r["code"] for r in d.rows} == {"G2012", "T1016"}


def test_folders_compare_and_bad_specs_are_clear_errors(tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(policy_dir(), base)
    head = tmp_path / "head"
    shutil.copytree(policy_dir(), head)
    code_end("90791", date="2026-06-30", release="TABLE-2025-12-26", policy=head)
    d = diff(str(base), str(head))
    assert [(r["action"], r["code"]) for r in d.rows] == [("ended", "90791")]
    assert {e["code"] for e in d.decisions} == {"90791"}
    res = CliRunner().invoke(main, ["diff", "no-such-thing", "--policy", str(head)])
    assert res.exit_code == 1
    assert "error: BASE 'no-such-thing' is not a policy folder, a release id (known:" in res.stderr
    res = CliRunner().invoke(main, ["diff", "release:PB-1999-01", "--policy", str(head)])
    assert res.exit_code == 1 and "unknown release 'PB-1999-01'" in res.stderr
    res = CliRunner().invoke(main, ["diff", str(base), str(head), "--exit-code"])
    assert res.exit_code == 1 and "#### 90791" in res.stdout


def test_a_row_that_replaces_another_says_what_it_changes(tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(policy_dir(), base)
    head = tmp_path / "head"
    shutil.copytree(policy_dir(), head)
    code_set("H0031", effective="2026-04-01", release="TABLE-2025-12-26", guideline="Seen in person once a year.",
             policy=head)
    d = diff(str(base), str(head))
    assert [(r["action"], r["period"]) for r in d.rows] == [("ended", "H0031@2025-12-26"),
                                                            ("added", "H0031@2026-04-01")]
    added = d.rows[1]
    assert added["replaces"] == "H0031@2025-12-26"
    assert [c["field"] for c in added["changes"]] == ["guideline"]
    assert d.decisions == []  # a guideline is read by people, not by the interpreter
    assert "replaces H0031@2025-12-26 (guideline now: “Seen in person once a year.”)" in d.to_markdown()
