"""Author spec tests (`cmap-policy test`): running cases, diffs, coverage, reachability, located errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cmap_policy import evaluate, load_policy
from cmap_policy.authoring import spec
from cmap_policy.cli import main
from cmap_policy.reasons import REASONS
from cmap_policy.resources import examples_dir, policy_dir, schema_dir
from cmap_policy.testing import read_tree, write_tree

from .helpers import line

DEMO = examples_dir() / "demo-policy"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
# The reasons the bundled CMAP data cannot produce: it has no RCCs, no provider-type or units limits (its age
# and established-patient limits are those of the era rules), and every modifier is valid on both claim types
# (see ../docs/testing.md).
# No public source holds the whole table, denies a place of service, or states an RCC or a limit for CMAP:
# so no bundled line can get these reasons (the DEMO policy reaches each).
CMAP_UNREACHABLE = {"NOT_ON_TELEHEALTH_TABLE", "OUTSIDE_EFFECTIVE_DATES", "POS_NOT_ACCEPTED",
                    "MODIFIER_NOT_FOR_CLAIM_TYPE", "RCC_REQUIRED", "RCC_NOT_ALLOWED", "PROVIDER_TYPE_NOT_ALLOWED",
                    "UNITS_OVER_LIMIT"}


def _case(name: str = "a case", **line: Any) -> dict[str, Any]:
    expect = line.pop("expect", {"outcome": "payable", "reasons": ["ON_TELEHEALTH_TABLE"]})
    release = line.pop("release", None)
    out: dict[str, Any] = {"name": name, "line": {"code": "T1016", "date": "2026-01-05", "modifiers": ["93"],
                                                  **line}, "expect": expect}
    if release is not None:
        out["release"] = release
    return out


def _write_cases(folder: Path, *cases: dict[str, Any], name: str = "t.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"$schema": "../../schema/tests.schema.json", "cases": list(cases)}, indent=2),
                    encoding="utf-8")
    return path


def _cases_in(folder: Path) -> int:
    return sum(len(json.loads(p.read_text(encoding="utf-8"))["cases"]) for p in folder.glob("*.json"))


def test_bundled_author_tests_pass_with_full_coverage() -> None:
    report = spec.test()
    assert report.failed == 0
    assert report.passed == _cases_in(policy_dir() / "tests") > 0
    assert report.coverage.period_percent == 100.0
    assert report.coverage.periods_uncovered == ()
    assert report.coverage.reason_percent == 100.0
    assert set(report.coverage.unreachable) == CMAP_UNREACHABLE
    assert report.ok


def test_bundled_period_coverage_counts_every_release_view() -> None:
    policy = load_policy()
    expected = {(rel.id, p.id) for rel in policy.releases for cv in policy.views[rel.id].values() for p in cv.periods}
    report = spec.test(policy=policy)
    assert set(report.coverage.periods) == expected
    # a pandemic period is in the views of the twelve releases from PB-2020-14 on, so it is twelve items
    in_views = [r.id for r in policy.releases if "T1016" in policy.views[r.id]]
    assert len(in_views) == 12
    assert sum(1 for _, pid in report.coverage.periods if pid == "T1016@2020-03-18") == len(in_views)


def test_demo_policy_reaches_every_reason_and_period() -> None:
    report = spec.test(DEMO / "tests")  # the folder beside the demo tree selects that tree
    assert report.policy_hash == load_policy(DEMO).hash
    assert report.failed == 0 and report.passed == _cases_in(DEMO / "tests")
    assert report.coverage.unreachable == {}
    assert report.coverage.reasons_covered == set(REASONS)
    assert report.coverage.period_percent == 100.0


def test_demo_policy_is_marked_illustrative() -> None:
    program = json.loads((DEMO / "program.json").read_text(encoding="utf-8"))
    assert "DEMO" in program["program"]["name"] and "not CMAP" in program["program"]["name"]
    assert all(s["secondary"] for s in program["sources"])


def test_cli_last_line_and_exit_code() -> None:
    result = CliRunner().invoke(main, ["test"])
    assert result.exit_code == 0, result.output
    last = result.stdout.rstrip("\n").splitlines()[-1]
    match = SUMMARY.match(last)
    assert match is not None, last
    assert int(match.group(1)) == _cases_in(policy_dir() / "tests") and match.group(2) == "0"
    assert "periods 115/115 (100.0%)" in result.stdout


def test_cli_json_format_is_one_document() -> None:
    result = CliRunner().invoke(main, ["test", str(DEMO), "--format", "json", "--fail-under", "100"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["failed"] == 0 and doc["ok"] is True
    assert doc["coverage"]["reasons"]["percent"] == 100.0 and doc["coverage"]["reasons"]["uncovered"] == []
    assert doc["summary"] == f"{doc['passed']} passed, 0 failed"


def test_failure_shows_a_structured_diff(tmp_path: Path) -> None:
    path = _write_cases(tmp_path / "tests", _case("audio-only 97153", code="97153", expect={
        "outcome": "payable", "reasons": ["ON_TELEHEALTH_TABLE"], "period": "97153@2020-03-18"}))
    report = spec.test(path)
    assert (report.passed, report.failed) == (0, 1)
    diff = {d["field"]: d for d in report.results[0].diff}
    assert diff["outcome"] == {"field": "outcome", "expected": "payable", "actual": "not_payable"}
    assert diff["reasons"]["missing"] == ["ON_TELEHEALTH_TABLE"]
    assert diff["reasons"]["unexpected"] == ["MODALITY_NOT_ALLOWED"]
    assert "audio-only" in diff["reasons"]["messages"]["MODALITY_NOT_ALLOWED"]
    assert diff["period"] == {"field": "period", "expected": "97153@2020-03-18", "actual": "97153@2025-12-26"}

    result = CliRunner().invoke(main, ["test", str(path)])
    assert result.exit_code == 1
    lines = result.stdout.rstrip("\n").splitlines()
    assert lines[-1] == "0 passed, 1 failed"
    assert any(line.startswith("FAIL ") and "t.json:" in line and "/cases/0" in line for line in lines)
    assert any("- missing:" in line and "ON_TELEHEALTH_TABLE" in line for line in lines)
    assert any("+ unexpected: MODALITY_NOT_ALLOWED" in line for line in lines)


def test_reason_order_does_not_matter_and_period_is_optional(tmp_path: Path) -> None:
    path = _write_cases(tmp_path / "tests", _case(modifiers=["95", "93"], pos="10", expect={
        "outcome": "not_payable", "reasons": ["POS_GUIDANCE", "CONFLICTING_MODIFIERS"]}))
    report = spec.test(path)
    assert (report.passed, report.failed) == (1, 0)


def test_period_null_expects_no_period(tmp_path: Path) -> None:
    path = _write_cases(tmp_path / "tests", _case(date="2020-03-14", modifiers=["95"], expect={
        "outcome": "undetermined", "reasons": ["DATE_NOT_IN_DATA"], "period": "T1016@2020-03-18"}))
    report = spec.test(path)
    assert report.results[0].diff == ({"field": "period", "expected": "T1016@2020-03-18", "actual": None},)


def test_fail_under(tmp_path: Path) -> None:
    path = _write_cases(tmp_path / "tests", _case())
    assert spec.test(path).ok
    low = spec.test(path, fail_under=50)
    assert low.failed == 0 and not low.coverage_ok and not low.ok
    result = CliRunner().invoke(main, ["test", str(path), "--fail-under", "50"])
    assert result.exit_code == 1
    assert "coverage is under 50%" in result.stdout
    assert result.stdout.rstrip("\n").splitlines()[-1] == "1 passed, 0 failed"
    assert spec.test(path, fail_under=0).ok


def test_uncovered_items_are_listed(tmp_path: Path) -> None:
    path = _write_cases(tmp_path / "tests", _case())
    report = spec.test(path)
    cov = report.coverage
    assert cov.periods_covered == {("TABLE-2025-12-26", "T1016@2025-12-26")}
    assert ("PB-2020-14", "T1016@2020-03-18") in cov.periods_uncovered
    assert "NOT_PERMITTED_VIA_TELEHEALTH" in cov.reasons_uncovered
    assert "ON_TELEHEALTH_TABLE" not in cov.reasons_uncovered
    text = CliRunner().invoke(main, ["test", str(path)]).stdout
    assert "T1016@2020-03-18 (release PB-2020-14)" in text
    assert "uncovered reasons:" in text and "NOT_PERMITTED_VIA_TELEHEALTH" in text


@pytest.mark.parametrize(("case", "pointer", "rule"), [
    (_case(modifiers=["59"]), "/cases/0/line/modifiers/0", "meaning:unknown-modifier"),
    (_case(modality="telepathy"), "/cases/0/line/modality", "meaning:unknown-modality"),
    (_case(release="PB-1999-01"), "/cases/0/release", "meaning:unknown-release"),
    (_case(code="9101"), "/cases/0/line/code", "schema:pattern"),
    (_case(date="2026-02-30"), "/cases/0/line/date", "schema:format"),
    (_case(expect={"outcome": "payable", "reasons": ["MODALITY_NOT_ALLOWED"]}), "/cases/0/expect/reasons",
     "meaning:impossible-expectation"),
    (_case(expect={"outcome": "not_payable", "reasons": ["ON_TELEHEALTH_TABLE"]}), "/cases/0/expect/reasons",
     "meaning:impossible-expectation"),
    (_case(expect={"outcome": "payable", "reasons": ["NO_SUCH_REASON"]}), "/cases/0/expect/reasons/0", "schema:enum"),
    (_case(expect={"outcome": "payable", "reasons": ["ON_TELEHEALTH_TABLE"], "period": "T1016@2021-01-01"}),
     "/cases/0/expect/period", "meaning:unknown-period"),
    (_case(expect={"outcome": "payable", "reasons": ["ON_TELEHEALTH_TABLE"], "period": "T1017@2020-03-18"}),
     "/cases/0/expect/period", "meaning:unknown-period"),
    ({"name": "x", "line": {"code": "T1016", "date": "2026-01-05", "units": 3}}, "/cases/0", "schema:required"),
])
def test_malformed_cases_get_located_errors(tmp_path: Path, case: dict[str, Any], pointer: str, rule: str) -> None:
    path = _write_cases(tmp_path / "tests", _case("fine"), case, name="bad.json")
    pointer = pointer.replace("/cases/0", "/cases/1")
    with pytest.raises(spec.SpecFileError) as err:
        spec.test(path)
    found = [p for p in err.value.problems if p.pointer == pointer and p.rule == rule]
    assert found, [str(p) for p in err.value.problems]
    assert found[0].file.endswith("bad.json") and found[0].line is not None and found[0].line > 1

    result = CliRunner().invoke(main, ["test", str(path)])
    assert result.exit_code == 1
    assert f"bad.json:{found[0].line}:" in result.output and pointer in result.output
    assert result.stdout.rstrip("\n").splitlines()[-1] == "0 passed, 0 failed"


def test_duplicate_case_names(tmp_path: Path) -> None:
    path = _write_cases(tmp_path / "tests", _case("same"), _case("same"))
    with pytest.raises(spec.SpecFileError) as err:
        spec.test(path)
    assert [p.pointer for p in err.value.problems] == ["/cases/1/name"]


def test_invalid_json_is_located(tmp_path: Path) -> None:
    folder = tmp_path / "tests"
    folder.mkdir()
    (folder / "broken.json").write_text('{"cases": [\n  {"name": "x",}\n]}\n', encoding="utf-8")
    with pytest.raises(spec.SpecFileError) as err:
        spec.test(folder)
    (problem,) = err.value.problems
    assert problem.rule == "json" and problem.line == 2


def test_no_test_files_is_not_ok(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    report = spec.test(tmp_path / "tests")
    assert report.results == () and not report.ok and report.notes
    result = CliRunner().invoke(main, ["test", str(tmp_path / "tests")])
    assert result.exit_code == 1 and result.stdout.rstrip("\n").splitlines()[-1] == "0 passed, 0 failed"


def test_policy_option_and_tests_beside_a_copied_tree(tmp_path: Path) -> None:
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    # beside the tree: the copy is used
    assert spec.test(copy / "tests").policy_hash == load_policy(copy).hash
    # an explicit --policy wins: the demo tests make no sense against CMAP (unknown release ids)
    with pytest.raises(spec.SpecFileError):
        spec.test(copy / "tests", policy=policy_dir())
    result = CliRunner().invoke(main, ["test", str(copy / "tests" / "reasons.json"), "--policy", str(copy)])
    assert result.exit_code == 0, result.output


def test_broken_policy_is_reported_not_raised_by_the_cli(tmp_path: Path) -> None:
    tree = read_tree(DEMO)
    tree.codes["99992"]["category"] = "nowhere"
    root = write_tree(tree, tmp_path / "demo")
    shutil.copytree(DEMO / "tests", root / "tests")
    result = CliRunner().invoke(main, ["test", str(root)])
    assert result.exit_code == 1
    assert "unknown category" in result.output and "the policy has 1 problem(s)" in result.output


def test_reachability_follows_the_data(tmp_path: Path) -> None:
    demo = read_tree(DEMO)
    assert spec.reachable_reasons(load_policy(DEMO)) == {}
    assert set(spec.reachable_reasons(load_policy())) == CMAP_UNREACHABLE

    for doc in demo.codes.values():
        for p in doc["periods"]:
            p.pop("revenue_center_codes", None)
            p["limits"] = [lim for lim in p.get("limits", []) if lim["kind"] != "age"]
    for mod in demo.program["modifiers"]:
        mod["claim_types"] = ["institutional", "professional"]
    for pos in demo.program["places_of_service"]:
        pos["guidance"] = [g for g in pos.get("guidance", []) if g["kind"] != "deny"]
    for rel in demo.releases["releases"]:
        rel["coverage"] = "partial"
        rel.pop("covers_from", None)
    why = spec.reachable_reasons(load_policy(write_tree(demo, tmp_path / "demo")))
    assert set(why) == {"RCC_REQUIRED", "RCC_NOT_ALLOWED", "AGE_OUTSIDE_LIMIT", "MODIFIER_NOT_FOR_CLAIM_TYPE",
                        "POS_NOT_ACCEPTED", "NOT_ON_TELEHEALTH_TABLE", "OUTSIDE_EFFECTIVE_DATES"}
    assert why["RCC_REQUIRED"] == "no period lists revenue center codes"


def test_age_limit_spanning_every_age_is_unreachable(tmp_path: Path) -> None:
    demo = read_tree(DEMO)
    for lim in demo.codes["99991"]["periods"][0]["limits"]:
        if lim["kind"] == "age":
            lim.update({"min_age": 0, "max_age": 130})
    assert "AGE_OUTSIDE_LIMIT" in spec.reachable_reasons(load_policy(write_tree(demo, tmp_path / "demo")))


def test_outside_dates_unreachable_only_when_every_date_is_covered(tmp_path: Path) -> None:
    demo = read_tree(DEMO)
    demo.codes = {"99992": demo.codes["99992"]}
    demo.codes["99992"]["periods"][0]["effective"] = "0001-01-01"
    assert "OUTSIDE_EFFECTIVE_DATES" in spec.reachable_reasons(load_policy(write_tree(demo, tmp_path / "a")))
    demo.codes["99992"]["periods"][0]["effective"] = "0001-01-02"
    assert "OUTSIDE_EFFECTIVE_DATES" not in spec.reachable_reasons(load_policy(write_tree(demo, tmp_path / "b")))


def test_outside_dates_reachable_after_a_row_that_leaves_the_table(tmp_path: Path) -> None:
    """No release of the bundled policy holds the whole table, but a row whose source says the code left the table
    makes the day after it a known gap: a line then gets OUTSIDE_EFFECTIVE_DATES, so it is reachable; a later row
    that starts the next day closes the gap again."""
    tree = read_tree(policy_dir())
    last = tree.codes["T1016"]["periods"][-1]
    last.update({"end": "2026-03-31", "ended_in": last["introduced_in"], "removed": True})
    policy = load_policy(write_tree(tree, tmp_path / "left"))
    assert "OUTSIDE_EFFECTIVE_DATES" not in spec.reachable_reasons(policy)
    assert evaluate(policy, line("T1016", "2026-04-01", "93")).reason_codes == ("OUTSIDE_EFFECTIVE_DATES",)
    tree.codes["T1016"]["periods"].append({**last, "effective": "2026-04-01"})
    for key in ("end", "ended_in", "removed", "start_known"):
        tree.codes["T1016"]["periods"][-1].pop(key)
    assert "OUTSIDE_EFFECTIVE_DATES" in spec.reachable_reasons(load_policy(write_tree(tree, tmp_path / "back")))


def _properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            out.append((f"{where}/{name}", sub))
        for key, sub in node.items():
            out.extend(_properties(sub, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            out.extend(_properties(sub, f"{where}/{i}"))
    return out


def test_tests_schema_documents_every_property_and_knows_every_reason() -> None:
    doc = json.loads((schema_dir() / "tests.schema.json").read_text(encoding="utf-8"))
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].endswith("/schema/tests.schema.json")
    undocumented = [w for w, sub in _properties(doc) if not (sub.get("title") and sub.get("description"))]
    assert undocumented == []
    enum = doc["$defs"]["expect"]["properties"]["reasons"]["items"]["enum"]
    assert enum == list(REASONS)
