"""Export of the table and import of the official spreadsheet: columns, errors, merging, round trips.

An "empty policy" here is a policy folder with the program and the releases of the
policy it stands beside, and no codes: the table's rows are all it gets.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmap_policy import ClaimLine, LineError, evaluate, load_policy, parse_line
from cmap_policy.authoring.table import COLUMNS, FORMATS, TableError, export_table, import_table
from cmap_policy.cli import main
from cmap_policy.model import Code, Policy
from cmap_policy.resources import policy_dir
from cmap_policy.testing import PolicyTree, bundled_tree, read_tree, synthetic_policy, write_tree
from cmap_policy.testing.strategies import claim_records, policy_trees

from .helpers import xlsx_bytes

OFFICIAL = ["Procedure Code", "Description", "Revenue Center Code", "Effective Date", "End Date",
            "Audio-Only Allowed", "Policy Guidelines"]
SLOW = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------------------------------- helpers


def hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def bundled_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "cmap" / "policy"
    shutil.copytree(policy_dir(), dest)
    return dest


def empty_policy(tree: PolicyTree, root: Path) -> Path:
    """The program and releases of ``tree``, no codes (both folders are named policy, so rules compare equal)."""
    return write_tree(PolicyTree(tree.program, tree.releases, {}), root)


def decisions(policy: Policy, lines: list[ClaimLine], release: str) -> list[dict[str, Any]]:
    """Each decision in full but for the policy hash; limits are a set (fmt sorts them), so is to_confirm."""
    out = []
    for line in lines:
        d: dict[str, Any] = evaluate(policy, line, release=release).as_dict()
        d.pop("policy_hash")
        d["to_confirm"] = sorted(d["to_confirm"], key=lambda x: json.dumps(x, sort_keys=True))
        out.append(d)
    return out


def boundary_lines(policy: Policy) -> list[ClaimLine]:
    """Lines on and around every period's first and last day, in several modalities and claim shapes."""
    one = dt.timedelta(days=1)
    days: dict[str, set[dt.date]] = {}
    code: Code | str
    for code in policy.codes.values():
        for p in code.periods:
            days.setdefault(code.code, set()).update({p.effective - one, p.effective})
            if p.end is not None:
                days[code.code].update({p.end, p.end + one})
    days["99213"] = {dt.date(2026, 1, 5)}
    lines = []
    for code, ds in sorted(days.items()):
        for day in sorted(ds):
            lines += [
                ClaimLine(code, day, ("95",)),
                ClaimLine(code, day, ("93",), claim_type="institutional", rcc="0900", member_age=10, units=3,
                          established_patient=False, provider_type="clinic"),
                ClaimLine(code, day, ("GQ",)),
                ClaimLine(code, day, ("95",), claim_type="institutional", member_age=70),
                ClaimLine(code, day, ("25",), pos="11"),  # not a telehealth line
            ]
    return lines


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


# ------------------------------------------------------------------------------------------- export


def test_export_in_force_on_a_date_has_the_official_columns_first() -> None:
    rows = csv_rows(export_table(date=dt.date(2026, 1, 5)))
    assert list(rows[0])[:7] == OFFICIAL
    assert list(rows[0])[7:11] == ["Code System", "Category", "Status", "Modalities"]
    assert "Citation Source" in rows[0]
    by_code = {r["Procedure Code"]: r for r in rows}
    assert set(by_code) == {"90791", "97153", "97156", "H0031", "H0046", "H2014", "T1016"}
    assert by_code["T1016"]["Audio-Only Allowed"] == "Yes" and by_code["97153"]["Audio-Only Allowed"] == "No"
    assert by_code["97156"]["Status"] == "not permitted" and by_code["97156"]["Modalities"] == ""
    assert by_code["90791"]["Effective Date"] == "2025-12-26" and by_code["90791"]["End Date"] == ""
    assert by_code["90791"]["Citation Source"] == "TABLE-2025-12-26" and by_code["90791"]["Secondary Source"] == "Yes"


def test_export_history_and_releases() -> None:
    history = csv_rows(export_table(history=True))
    ended = [r for r in history if r["Procedure Code"] == "H2019"]
    assert [(r["Effective Date"], r["End Date"], r["Ended In"]) for r in ended] == [
        ("2020-03-18", "2023-05-11", "PB-2023-38")]
    assert len(history) == 16
    # As published in PB-2020-14, the pandemic rows had no end yet.
    early = csv_rows(export_table(date=dt.date(2021, 1, 1), release="PB-2020-14"))
    assert {r["Procedure Code"] for r in early} == {"H2019", "T1017", "S9484", "S9485", "H2012", "97153", "H2014",
                                                    "T1016", "90846"}
    assert all(r["End Date"] == "" for r in early)
    assert csv_rows(export_table(date=dt.date(2024, 1, 1))) == []  # nothing listed between the two eras


def test_export_json_and_xlsx_carry_the_same_rows() -> None:
    policy = load_policy()
    doc = json.loads(export_table(policy, date=dt.date(2026, 1, 5), fmt="json"))
    assert doc["release"]["id"] == "TABLE-2025-12-26" and doc["date"] == "2026-01-05"
    assert [c["heading"] for c in doc["columns"]][:7] == OFFICIAL
    t1016 = next(r for r in doc["rows"] if r["procedure_code"] == "T1016")
    assert t1016["audio_only_allowed"] is True and t1016["modalities"] == ["audio-only", "audio-video"]
    assert t1016["citation"] == {"source": "TABLE-2025-12-26", "section": "row T1016", "secondary": True,
                                 "title": policy.program.sources["TABLE-2025-12-26"].title}
    data = export_table(policy, date=dt.date(2026, 1, 5), fmt="xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(data))["Telehealth table"]
    values = list(ws.iter_rows(values_only=True))
    assert list(values[0][:7]) == OFFICIAL and len(values) == 1 + len(doc["rows"])
    assert isinstance(values[1][3], dt.datetime)  # a real date cell, not text
    assert export_table(policy, date=dt.date(2026, 1, 5), fmt="xlsx") == data  # the same policy, the same bytes


def test_export_keeps_formula_like_text_as_text_and_import_reads_it_back(tmp_path: Path) -> None:
    tree = bundled_tree()
    tree.codes["90791"]["periods"][0]["guideline"] = "=HYPERLINK(\"x\") and -more"
    src = load_policy(write_tree(tree, tmp_path / "src" / "policy"))
    csv_data = export_table(src, history=True)
    assert "'=HYPERLINK" in csv_data.decode("utf-8-sig")
    xlsx = export_table(src, history=True, fmt="xlsx")
    cell = openpyxl.load_workbook(io.BytesIO(xlsx))["Telehealth table"]["G2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    for fmt, data in (("csv", csv_data), ("xlsx", xlsx)):
        root = empty_policy(tree, tmp_path / fmt / "policy")
        assert import_table(data, fmt=fmt, release="TABLE-2025-12-26", policy=root).written
        assert load_policy(root).codes["90791"].periods[0].guideline == "=HYPERLINK(\"x\") and -more"


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_without_rows_reads_back_as_an_empty_table(tmp_path: Path, fmt: str) -> None:
    data = export_table(date=dt.date(2019, 1, 1), fmt=fmt)
    root = empty_policy(bundled_tree(), tmp_path / "policy")
    res = import_table(data, fmt=fmt, release="TABLE-2025-12-26", policy=root)
    # an official table with no row says that nothing is listed: the release now holds the whole (empty) table
    assert not res.errors and res.rows == 0 and res.files == ["releases.json"]
    assert load_policy(root).complete_from["TABLE-2025-12-26"] == dt.date(2025, 12, 26)
    again = import_table(data, fmt=fmt, release="TABLE-2025-12-26", policy=root)
    assert not again.written and not again.files  # the same table again changes nothing


def test_export_usage_errors() -> None:
    with pytest.raises(TableError, match="give a date"):
        export_table()
    with pytest.raises(TableError, match="unknown format"):
        export_table(date=dt.date(2026, 1, 5), fmt="ods")
    res = CliRunner().invoke(main, ["export", "--date", "2026-01-05", "--release", "NOPE"])
    assert res.exit_code == 2 and "unknown release" in res.output
    assert CliRunner().invoke(main, ["export"]).exit_code == 2


def test_cli_export_picks_the_format_from_the_file_name(tmp_path: Path) -> None:
    out = tmp_path / "table.xlsx"
    res = CliRunner().invoke(main, ["export", "--date", "2026-01-05", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:2] == b"PK"
    res = CliRunner().invoke(main, ["export", "--history", "--format", "csv"])
    assert res.exit_code == 0 and res.stdout.lstrip("\ufeff").startswith("Procedure Code,Description,")


# ------------------------------------------------------------------------------------------- import: errors


def test_bad_spreadsheet_lists_row_numbered_errors_and_changes_nothing(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    before = hashes(root)
    table = tmp_path / "table.xlsx"
    # No Audio-Only Allowed column, a bad date on row 4, 97153 twice (rows 5 and 6).
    table.write_bytes(xlsx_bytes([
        ["CMAP Telehealth Table"],
        ["Procedure Code", "Description", "Revenue Center Code", "Effective Date", "End Date", "Policy Guidelines"],
        ["90791", "Assessment", None, dt.date(2026, 3, 1), None, "Video only."],
        ["H0031", "Assessment", None, "2026-02-30", None, "Video only."],
        ["97153", "Treatment", None, "3/1/2026", None, "Video only."],
        ["97153", "Treatment", None, "2026-03-01", None, "Video only."],
    ]))
    res = CliRunner().invoke(main, ["import", str(table), "--release", "T-2026-03-01", "--date", "2026-03-01",
                                    "--policy", str(root)])
    assert res.exit_code == 1, res.output
    assert "row 2, column 'Audio-Only Allowed': missing column" in res.output
    assert "row 4, H0031, column 'Effective Date': '2026-02-30' is not a real calendar date" in res.output
    assert "row 6, 97153: duplicate: 97153 from 2026-03-01 is also on row 5" in res.output
    assert "nothing was written" in res.output
    assert hashes(root) == before

    result = import_table(table, release="T-2026-03-01", date=dt.date(2026, 3, 1), policy=root)
    assert {(e.row, e.column) for e in result.errors} == {(2, "Audio-Only Allowed"), (4, "Effective Date"),
                                                          (6, None)}
    assert result.blocked and not result.written and hashes(root) == before


def test_allow_partial_imports_the_readable_rows_and_leaves_the_rest_alone(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    table = tmp_path / "table.csv"
    table.write_text(
        "Procedure Code,Description,Revenue Center Code,Effective Date,End Date,Audio-Only Allowed,Policy Guidelines\n"
        "90834,Psychotherapy,,2026-03-01,,Yes,New.\n"
        "97153,Treatment,,2026-03-01,2026-01-01,No,End before start.\n"
        ",Orphan,,2026-03-01,,No,No code.\n", encoding="utf-8")
    before = hashes(root)
    blocked = import_table(table, release="T-2026-03-01", date=dt.date(2026, 3, 1), policy=root)
    assert [(e.row, e.column) for e in sorted(blocked.errors, key=lambda e: e.row or 0)] == [
        (3, "End Date"), (4, "Procedure Code")]
    assert hashes(root) == before
    res = import_table(table, release="T-2026-03-01", date=dt.date(2026, 3, 1), policy=root, allow_partial=True)
    assert res.written and "codes/90834.json" in res.files
    policy = load_policy(root)
    assert "90834" in policy.codes
    # 97153 had an unreadable row: it is left as it was, not ended as missing from the table.
    assert policy.codes["97153"].periods[-1].end is None
    assert "97153" in res.skipped_codes
    # Codes the table does not list at all are missing from it, and end the day before.
    assert policy.codes["T1016"].periods[-1].end == dt.date(2026, 2, 28)
    assert policy.codes["T1016"].periods[-1].removed  # the whole table no longer lists it: it left the table
    assert not policy.codes["97153"].periods[-2].removed  # ended by a new row, still on the table


def test_unknown_column_is_an_error_unless_mapped(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    table = tmp_path / "t.csv"
    table.write_text(",".join([*OFFICIAL, "Color"]) + "\n90791,x,,2025-12-26,,No,"
                     "\"Audio-video only: not payable by telephone. The official table's own policy-guideline text "
                     "for this row is not public.\",red\n", encoding="utf-8")
    res = import_table(table, release="TABLE-2025-12-26", policy=root, dry_run=True)
    assert [(e.row, e.column) for e in res.errors] == [(1, "Color")] and res.blocked
    res = import_table(table, release="TABLE-2025-12-26", policy=root, dry_run=True, columns=["Color=ignore"])
    assert not res.errors and res.ignored_columns == ["Color"]


def test_result_that_would_not_load_writes_nothing(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    before = hashes(root)
    table = tmp_path / "t.csv"
    table.write_text(",".join([*OFFICIAL, "Limits"]) + "\n"
                     "90834,x,,2026-03-01,,No,Video.,\"[{\"\"kind\"\": \"\"age\"\", \"\"guideline\"\": \"\"x\"\"}]\"\n",
                     encoding="utf-8")
    res = import_table(table, release="T-2026-03-01", date=dt.date(2026, 3, 1), policy=root)
    assert res.policy_problems and not res.written
    assert any("table row 2" in p.message for p in res.policy_problems)
    assert hashes(root) == before


def test_usage_errors(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    table = tmp_path / "t.csv"
    table.write_text(",".join(OFFICIAL) + "\n", encoding="utf-8")
    with pytest.raises(TableError, match=r"not in releases\.json"):
        import_table(table, release="NEW", policy=root)
    with pytest.raises(TableError, match="before the latest release"):
        import_table(table, release="NEW", date=dt.date(2025, 1, 1), policy=root)
    with pytest.raises(TableError, match="later release"):
        import_table(table, release="PB-2024-81", policy=root)
    (tmp_path / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(TableError, match="no header row"):
        import_table(tmp_path / "x.csv", release="TABLE-2025-12-26", policy=root)
    res = CliRunner().invoke(main, ["import", str(tmp_path / "x.csv"), "--release", "TABLE-2025-12-26",
                                    "--policy", str(root)])
    assert res.exit_code == 1 and res.output.startswith("error: ") and "Traceback" not in res.output


# ------------------------------------------------------------------------------------------- import: merging


def _official(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["CPT/HCPCS Code", "Description", "RCC", "EFFECTIVE DATE", "End Date", "Audio Only (Y/N)",
                "Policy Guidelines"])
    w.writerows(rows)
    w.writerow([])
    w.writerow(["Modifier GT or 95 with the place of service where the visit would have happened in person."])
    return buf.getvalue()


SAME = "Audio-video only: not payable by telephone. The official table's own policy-guideline text for this row " \
       "is not public."


def test_import_new_release_merges_rows_into_periods(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    table = tmp_path / "official.csv"
    table.write_text(_official([
        ["90791", "Diagnostic evaluation", "", "12/26/2025", "", "N", SAME],   # unchanged
        ["97153", "Treatment", "", "12/26/2025", "", "Y", "Video or telephone."],  # changed: audio-only allowed
        ["97156", "Guidance", "", "12/26/2025", "", "N", "Not permitted via telehealth."],  # changed guideline
        ["90834", "Psychotherapy", "0900, 914", "3/1/2026", "", "Y", "New."],  # a new CPT code
        ["G2012", "Brief virtual check-in", "", "3/1/2026", "12/31/2026", "Y", "New."],  # a new HCPCS code
        ["H0031", "Assessment", "", "2025-12-26", "", "No", SAME],
        ["H0046", "Services", "", "2025-12-26", "", "No", SAME],
        ["H2014", "Skills", "", "2025-12-26", "", "No", SAME],
        # T1016 is missing: its row ends the day before the release takes effect.
    ]), encoding="utf-8")
    before = hashes(root)
    dry = import_table(table, release="TABLE-2026-03-01", date=dt.date(2026, 3, 1), policy=root, dry_run=True)
    assert not dry.errors and not dry.written and hashes(root) == before
    assert dry.notes == [11]
    res = import_table(table, release="TABLE-2026-03-01", date=dt.date(2026, 3, 1), policy=root)
    # the official table dates the rows the secondary reading saw without their start (90791, 97156, H0031,
    # H0046, H2014: the same decisions, so corrected in place); 97153 changed, T1016 is missing: both end
    assert res.written and res.counts()["new_codes"] == 2 and res.counts()["ended_periods"] == 2
    assert res.counts()["corrected_starts"] == 5
    assert sorted(res.files) == sorted(dry.files) and "releases.json" in res.files and "program.json" in res.files
    policy = load_policy(root)
    assert policy.latest.id == "TABLE-2026-03-01"
    src = policy.program.sources["TABLE-2026-03-01"]
    assert src.kind == "official-table" and not src.secondary

    old, new = policy.codes["97153"].periods[-2:]
    assert (old.effective, old.end, old.ended_in) == (dt.date(2025, 12, 26), dt.date(2026, 2, 28), "TABLE-2026-03-01")
    assert new.effective == dt.date(2026, 3, 1) and new.modalities == ("audio-only", "audio-video")
    assert "2025-12-26" in new.dates_note and new.citation.source.id == "TABLE-2026-03-01"
    assert policy.codes["90791"].periods[-1].end is None and policy.codes["90791"].periods[-1].introduced_in == \
        "TABLE-2025-12-26"
    assert policy.codes["T1016"].periods[-1].end == dt.date(2026, 2, 28)
    assert policy.codes["T1016"].periods[-1].removed  # the whole table no longer lists it: it left the table
    assert not policy.codes["97153"].periods[-2].removed  # ended by a new row, still on the table
    assert not policy.codes["97156"].periods[-1].permitted
    fixed = policy.codes["97156"].periods[-1]
    assert fixed.start_known and fixed.introduced_in == "TABLE-2025-12-26"
    assert fixed.guideline == "Not permitted via telehealth." and fixed.citation.source.id == "TABLE-2026-03-01"
    assert not policy.codes["97153"].periods[-2].start_known  # decided differently by the table: not corrected
    assert {c.code for c in policy.latest.corrections} == {"90791", "97156", "H0031", "H0046", "H2014"}
    assert policy.complete_from["TABLE-2026-03-01"] == dt.date(2026, 3, 1)
    new_cpt, new_hcpcs = policy.codes["90834"], policy.codes["G2012"]
    assert "AMA" in new_cpt.description and "Psychotherapy" not in new_cpt.description
    assert new_hcpcs.description == "Brief virtual check-in" and new_hcpcs.periods[0].end == dt.date(2026, 12, 31)
    assert new_cpt.periods[0].revenue_center_codes == ("0900", "0914")
    assert new_cpt.category == "uncategorized" and "uncategorized" in policy.program.categories

    day = "2026-03-05"
    assert evaluate(policy, ClaimLine("97153", dt.date.fromisoformat(day), ("93",))).payable
    assert evaluate(policy, ClaimLine("T1016", dt.date.fromisoformat(day), ("93",))).reason_codes == (
        "OUTSIDE_EFFECTIVE_DATES",)
    # As published before, nothing changed.
    assert evaluate(policy, ClaimLine("T1016", dt.date.fromisoformat(day), ("93",)),
                    release="TABLE-2025-12-26").payable
    show = CliRunner().invoke(main, ["show", "97153", "--policy", str(root)])
    assert "This row comes from the official CMAP telehealth table." in show.output

    # The same table again: nothing to do, nothing written.
    after = hashes(root)
    again = import_table(table, release="TABLE-2026-03-01", policy=root)
    assert not again.changes and not again.written and hashes(root) == after
    assert "nothing to write" in again.render()


def test_reimporting_a_corrected_table_into_the_same_release_redoes_it(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    rows = [["90834", "x", "", "3/1/2026", "", "Y", "New."], ["T1016", "x", "", "2025-12-26", "", "Y", "Changed."]]
    table = tmp_path / "t.csv"
    table.write_text(_official(rows), encoding="utf-8")
    assert import_table(table, release="R2", date=dt.date(2026, 3, 1), policy=root, category="behavioral-health",
                        allow_partial=True).written
    assert (root / "codes" / "90834.json").exists()
    table.write_text(_official(rows[1:]), encoding="utf-8")  # the correction drops 90834
    res = import_table(table, release="R2", policy=root)
    assert res.deleted == ["codes/90834.json"] and not (root / "codes" / "90834.json").exists()
    assert [c.kind for c in res.changes if c.code == "90834"] == ["removed-code"]
    load_policy(root)


def test_the_official_table_replaces_the_secondary_reading_of_the_same_release(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    table = tmp_path / "official.csv"
    table.write_text(_official([
        ["90791", "x", "", "7/1/2023", "", "N", "Official text."],
        ["97156", "x", "", "7/1/2023", "", "N", "Not permitted via telehealth."],
        ["T1016", "x", "", "7/1/2023", "", "Y", "Official text."],
    ]), encoding="utf-8")
    dry = import_table(table, release="TABLE-2025-12-26", policy=root, dry_run=True)
    assert any("secondary" in w.message and "--source" in w.message for w in dry.warnings)
    res = import_table(table, release="TABLE-2025-12-26", policy=root, source="CMAP-TABLE-2025-12-26")
    assert res.written and not res.errors
    assert {c.code for c in res.changes if c.kind == "removed-code"} == {"H0031", "H0046"}
    policy = load_policy(root)
    assert "TABLE-2025-12-26" in policy.program.sources  # the reading stays listed; no row cites it any more
    last = policy.codes["T1016"].periods[-1]
    assert last.effective == dt.date(2023, 7, 1) and last.citation.source.kind == "official-table"
    assert not last.secondary and last.introduced_in == "TABLE-2025-12-26"
    # The pandemic rows are history: kept as they were.
    assert policy.codes["T1016"].periods[0].citation.source.id == "PB-2020-14"
    assert "H2019" in policy.codes and "H0046" not in policy.codes
    assert not evaluate(policy, ClaimLine("97156", dt.date(2024, 1, 2), ("95",))).payable
    assert evaluate(policy, ClaimLine("T1016", dt.date(2024, 1, 2), ("93",))).payable


def test_changing_a_row_that_is_not_yet_in_force_is_reported_not_guessed(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    table = tmp_path / "t.csv"
    table.write_text(_official([["G2012", "x", "", "6/1/2026", "", "N", "Future."]]), encoding="utf-8")
    assert import_table(table, release="R2", date=dt.date(2026, 3, 1), policy=root, allow_partial=True).written
    before = hashes(root)
    table.write_text(_official([["G2012", "x", "", "6/1/2026", "", "Y", "Future, changed."]]), encoding="utf-8")
    res = import_table(table, release="R3", date=dt.date(2026, 4, 1), policy=root)
    assert any(e.code == "G2012" and "starts on or after the release takes effect" in e.message for e in res.errors)
    assert not res.written and hashes(root) == before


def test_columns_option_maps_other_headings(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    table = tmp_path / "t.csv"
    table.write_text("Code,Desc,Start,Stop,Phone,Notes\nG2012,Check-in,2026-03-01,,yes,Brief.\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["import", str(table), "--release", "R2", "--date", "2026-03-01", "--policy",
                                    str(root), "--allow-partial", "--dry-run", "--format", "json"])
    assert "unknown column" in res.output
    res = CliRunner().invoke(main, ["import", str(table), "--release", "R2", "--date", "2026-03-01", "--policy",
                                    str(root), "--columns", "Start=effective,Stop=end", "--columns",
                                    "Phone=audio_only,Notes=guideline", "--allow-partial"])
    assert res.exit_code == 0, res.output
    assert "missing column" in res.output  # no revenue center code column: listed, read as empty
    period = load_policy(root).codes["G2012"].periods[0]
    assert period.modalities == ("audio-only", "audio-video") and period.guideline == "Brief."


# ------------------------------------------------------------------------------------------- round trips


def test_600_code_synthetic_table_in_xlsx_imports_exports_and_reimports_with_identical_decisions(
        tmp_path: Path) -> None:
    tree = synthetic_policy(n_codes=600, seed=11)
    original = load_policy(write_tree(tree, tmp_path / "orig" / "policy"))
    release = original.latest.id
    table = tmp_path / "table.xlsx"
    table.write_bytes(export_table(original, release=release, fmt="xlsx", history=True))

    first = empty_policy(tree, tmp_path / "first" / "policy")
    res = import_table(table, release=release, policy=first, **_coverage_of(original, release))
    assert res.written and not res.errors and res.counts()["new_codes"] == len(original.views[release])
    imported = load_policy(first)
    lines = boundary_lines(original)
    assert len(lines) > 5000
    expected = decisions(original, lines, release)
    assert decisions(imported, lines, release) == expected
    # the SYNTHETIC table is whole from 2000-01-01, so no line of these dates is undetermined
    assert {d["outcome"] for d in expected} == {"payable", "not_payable", "not_telehealth"}

    again = tmp_path / "again.xlsx"
    again.write_bytes(export_table(imported, release=release, fmt="xlsx", history=True))
    second = empty_policy(tree, tmp_path / "second" / "policy")
    assert import_table(again, release=release, policy=second, **_coverage_of(original, release)).written
    reimported = load_policy(second)
    assert decisions(reimported, lines, release) == expected
    # Two imports of the same rows are the same policy, so they export the same bytes.
    assert reimported.hash == imported.hash
    assert export_table(reimported, release=release, fmt="xlsx", history=True) == again.read_bytes()


def test_replaying_every_bundled_release_rebuilds_every_release(tmp_path: Path) -> None:
    original = load_policy()
    root = empty_policy(bundled_tree(), tmp_path / "replay" / "policy")
    for rel in original.releases:
        table = export_table(original, release=rel.id, fmt="csv", history=True)
        # The descriptions are this project's own words, so they may be stored for CPT codes too.
        res = import_table(table, fmt="csv", release=rel.id, policy=root, cpt_descriptions=True,
                           **_coverage_of(original, rel.id))
        assert not res.errors, res.render()
    rebuilt = load_policy(root)
    lines = boundary_lines(original)
    for rel in original.releases:
        assert decisions(rebuilt, lines, rel.id) == decisions(original, lines, rel.id), rel.id
    assert read_tree(root).codes == bundled_tree().codes  # the very same files, periods and releases


def _coverage_of(policy: Policy, release: str) -> dict[str, Any]:
    """The import options that give a replayed release the coverage the original has."""
    rel = policy.release(release)
    if rel.complete:
        return {"coverage": "complete", "covers_from": rel.covers_from}
    return {"coverage": "partial"}


def _lines(records: list[dict[str, Any]], policy: Policy) -> list[ClaimLine]:
    out = []
    for rec in records:
        with contextlib.suppress(LineError):  # the strategy's records are valid; a bad one is not this test's
            out.append(parse_line(rec, policy.program))
    return out


@SLOW
@given(data=st.data())
def test_export_then_import_into_an_empty_policy_decides_every_line_the_same(data: st.DataObject) -> None:
    tree = data.draw(policy_trees())
    release = data.draw(st.sampled_from([r["id"] for r in tree.releases["releases"]]))
    fmt = data.draw(st.sampled_from(FORMATS))
    records = data.draw(st.lists(claim_records(tree), min_size=1, max_size=20))
    with tempfile.TemporaryDirectory() as tmp:
        original = load_policy(write_tree(tree, Path(tmp) / "a" / "policy"))
        table = export_table(original, release=release, fmt=fmt, history=True)
        root = empty_policy(tree, Path(tmp) / "b" / "policy")
        whole = original.complete_from[release]
        res = import_table(table, fmt=fmt, release=release, policy=root,
                           **({"coverage": "complete", "covers_from": whole} if whole else {"coverage": "partial"}))
        assert not res.errors and not res.policy_problems, res.render()
        imported = load_policy(root)
        lines = _lines(records, original)
        assert decisions(imported, lines, release) == decisions(original, lines, release)


@SLOW
@given(tree=policy_trees(max_codes=4), data=st.data())
def test_importing_each_release_in_turn_rebuilds_the_history(tree: PolicyTree, data: st.DataObject) -> None:
    records = data.draw(st.lists(claim_records(tree), min_size=1, max_size=10))
    with tempfile.TemporaryDirectory() as tmp:
        original = load_policy(write_tree(tree, Path(tmp) / "a" / "policy"))
        root = empty_policy(tree, Path(tmp) / "b" / "policy")
        for rel in original.releases:
            res = import_table(export_table(original, release=rel.id, history=True), fmt="csv", release=rel.id,
                               policy=root, **_coverage_of(original, rel.id))
            assert not res.errors and not res.policy_problems, res.render()
        rebuilt = load_policy(root)
        lines = _lines(records, original)
        for rel in original.releases:
            assert decisions(rebuilt, lines, rel.id) == decisions(original, lines, rel.id)


def test_every_column_is_exported_and_the_readable_ones_are_imported() -> None:
    headings = [c.heading for c in COLUMNS]
    assert headings[:7] == OFFICIAL and len(set(headings)) == len(headings)
    ignored = {c.heading for c in COLUMNS if not c.imported}
    assert ignored == {"Source Title", "Secondary Source", "Introduced In", "Ended In"}


def test_a_partial_source_does_not_end_the_rows_it_does_not_name(tmp_path: Path) -> None:
    root = bundled_copy(tmp_path)
    table = tmp_path / "bulletin.csv"
    table.write_text(_official([["90834", "Psychotherapy", "", "3/1/2026", "", "Y", "New."]]), encoding="utf-8")
    before = load_policy(root)
    res = import_table(table, release="PB-2026-01", date=dt.date(2026, 3, 1), policy=root, coverage="partial",
                       source="PB-2026-01", source_url="https://example.org/pb-2026-01.pdf")
    assert res.written and not res.errors, res.render()
    after = load_policy(root)
    assert res.counts()["ended_periods"] == 0 and res.counts()["new_codes"] == 1
    for code in before.codes:  # every row the bulletin is silent about stands as it was
        assert after.codes[code].periods == before.codes[code].periods
    assert after.latest.coverage == "partial" and after.complete_from["PB-2026-01"] is None
