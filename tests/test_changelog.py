"""cmap-policy changelog: per release, the rows added, ended and changed, as data and as Markdown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from cmap_policy import load_policy
from cmap_policy.authoring.changelog import change_report, changelog, render_markdown
from cmap_policy.authoring.edit import code_add, code_end, code_set, release_new
from cmap_policy.cli import main
from cmap_policy.resources import policy_dir


def test_the_bundled_history_release_by_release() -> None:
    report = change_report(load_policy())
    later = ["PB-2020-17", "PB-2020-28", "PB-2020-38", "PB-2020-44", "PB-2020-90"]
    assert [r["release"] for r in report] == ["ECONSULT-2020", "PB-2020-09-10", "PB-2020-14", *later, "EO-7DD-7FF",
                                              "PA-20-2", "PA-21-9", "PB-2023-38", "PB-2024-81", "TABLE-2025-12-26"]
    by_id = {r["release"]: r for r in report}
    pandemic = by_id["PB-2020-14"]
    assert pandemic["counts"] == {"added": 9, "changed": 0, "ended": 0}
    assert {r["code"] for r in pandemic["changes"]} == {"90846", "97153", "H2012", "H2014", "H2019", "S9484",
                                                         "S9485", "T1016", "T1017"}
    assert all(r["effective"] == "2020-03-18" and r["citation"]["source"] == "PB-2020-14"
               for r in pandemic["changes"])
    ended = by_id["PB-2023-38"]
    assert ended["counts"] == {"added": 0, "changed": 0, "ended": 9}
    assert {r["end"] for r in ended["changes"]} == {"2023-05-11"}
    assert {r["ended_in"] for r in ended["changes"]} == {"PB-2023-38"}
    # the releases no public source names codes for: the timeline from before 2020, with no rows
    for rel in ["ECONSULT-2020", "PB-2020-09-10", *later, "EO-7DD-7FF", "PA-20-2", "PA-21-9", "PB-2024-81"]:
        assert by_id[rel]["changes"] == [], rel
    table = by_id["TABLE-2025-12-26"]
    assert table["counts"]["added"] == 7
    # the reading shows each row in force, not since when: named with its start unknown, not "added from"
    assert all(r["start_known"] is False and r["effective"] == "2025-12-26" for r in table["changes"])
    assert all(r["coverage"] == "partial" for r in report) and not any(by_id[r]["dates_known"] for r in later)
    row = next(r for r in table["changes"] if r["code"] == "97156")
    assert row["status"] == "not-permitted" and row["citation"]["secondary"] is True
    assert table["implements"][0]["id"] == "TABLE-2025-12-26"
    json.dumps(report)  # machine-readable all the way down


def test_one_release_only() -> None:
    report = change_report(load_policy(), "PB-2023-38")
    assert len(report) == 1 and report[0]["release"] == "PB-2023-38"


def test_markdown_names_each_release_for_what_it_is() -> None:
    text = render_markdown(change_report(load_policy()))
    # newest first; a reading of the table by a third party is named so, not after an id this data made up
    reading = "## Secondary reading: A third party's reading of the CMAP Telehealth Table dated 12-26-25"
    assert text.index(reading) < text.index("## Provider bulletin PB-2020-14")
    assert "## Provider bulletin PB-2023-38, as summarised by a secondary source" in text
    assert "## Provider bulletin PB-2020-44, as summarised by a secondary source (dates not known)" in text
    assert "## Important Message" not in text  # no release here implements one of DSS's Important Messages
    assert "**Effective for dates of service on and after:** 2023-05-12" in text
    assert "### Rows ended" in text and "### Codes added to the telehealth table" in text
    assert "| 97153 | Autism behavior treatment" in text
    # the 2025 rows are named with their start unknown, not "coming back": nothing says they left or returned
    assert "### Rows named, their start not known" in text
    assert "where none does, this data cannot say" in text
    assert "**Published:** not known" in text
    assert "[97153](codes/97153.md)" not in text and "[97153](codes/97153.md)" in render_markdown(
        change_report(load_policy()), link_codes=True)
    assert "This release does not add, end or change any row of the telehealth table." in text
    assert "secondary source" in text and text.endswith("\n")


def test_a_change_that_starts_a_new_row_is_one_changed_row(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    release_new("PB-2026-05", date="2026-03-01", effective="2026-04-01", source=["PB-2023-38"], summary="Update.",
                policy=root)
    code_set("T1016", effective="2026-04-01", release="PB-2026-05", modality=["audio-video"], policy=root)
    code_end("90791", date="2026-03-31", release="PB-2026-05", policy=root)
    code_add("G2012", effective="2026-04-01", modality=["audio-video"], release="PB-2026-05", source="PB-2023-38",
             description="Brief virtual check-in", category="behavioral-health", policy=root)
    (rep,) = changelog("PB-2026-05", policy=root)
    assert rep["counts"] == {"added": 1, "changed": 1, "ended": 1}
    assert [(r["action"], r["code"]) for r in rep["changes"]] == [("added", "G2012"), ("changed", "T1016"),
                                                                  ("ended", "90791")]
    changed = rep["changes"][1]
    assert changed["effective"] == "2026-04-01" and changed["previous"]["end"] == "2026-03-31"
    assert changed["changes"] == [{"field": "modalities", "before": ["audio-only", "audio-video"],
                                   "after": ["audio-video"]}]
    text = render_markdown([rep])
    assert "### Rows changed" in text and "modalities: audio-only, audio-video → audio-video" in text
    assert "*1 added, 1 changed, 1 ended.*" in text


def test_cli_json_is_the_report_and_an_unknown_release_is_a_usage_error() -> None:
    res = CliRunner().invoke(main, ["changelog", "--release", "PB-2020-14", "--format", "json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout) == change_report(load_policy(), "PB-2020-14")
    res = CliRunner().invoke(main, ["changelog"])
    assert res.exit_code == 0 and res.stdout.startswith("# Changes to the CMAP telehealth table")
    res = CliRunner().invoke(main, ["changelog", "--release", "PB-1999-01"])
    assert res.exit_code == 2 and "unknown release 'PB-1999-01'" in res.output


def test_a_removed_code_and_a_row_that_takes_over_from_one_of_unknown_start(tmp_path: Path) -> None:
    """The Important Message says which ended row took its code off the table (and what that means), and a new row
    after one whose start was not known changes only what the source changed (not the start's being known)."""
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    release_new("PB-2026-05", date="2026-03-01", effective="2026-04-01", source=["PB-2023-38"], summary="Update.",
                policy=root)
    code_end("T1016", date="2026-03-31", release="PB-2026-05", removed=True, policy=root)
    code_end("90791", date="2026-03-31", release="PB-2026-05", policy=root)
    code_set("H0031", effective="2026-04-01", release="PB-2026-05", guideline="New text.", policy=root)
    (rep,) = changelog("PB-2026-05", policy=root)
    assert [(r["action"], r["code"], r["removed"]) for r in rep["changes"]] == [
        ("changed", "H0031", False), ("ended", "90791", False), ("ended", "T1016", True)]
    assert [c["field"] for c in rep["changes"][0]["changes"]] == ["guideline"]
    text = render_markdown([rep])
    assert "| T1016 | Case management, each 15 minutes | 2025-12-26 | 2026-03-31, removed from the table |" in text
    assert "| 90791 |" in text and "2026-03-31, removed" not in text.split("| 90791 |")[1].split("\n")[0]
    assert "A code *removed from the table* is not payable via telehealth after the end date" in text
    assert "| H0031 | Mental health assessment, by non-physician | 2026-04-01 | new guideline |" in text
