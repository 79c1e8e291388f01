"""Edit commands: each writes valid, formatted files, or refuses with a reason and writes nothing."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from cmap_policy import api
from cmap_policy.authoring.edit import code_add, code_end, code_set, release_new
from cmap_policy.authoring.fmt import fmt
from cmap_policy.cli import main
from cmap_policy.errors import EditError
from cmap_policy.resources import policy_dir

BULLETINS = "https://www.ctdssmap.com/CTPortal/Provider/Provider-Bulletins"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    dest = tmp_path / "policy"
    shutil.copytree(policy_dir(), dest)
    return dest


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read(root: Path, rel: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((root / rel).read_text(encoding="utf-8")))


def _release(root: Path, rid: str = "PB-2026-05") -> None:
    release_new(rid, date="2026-03-01", effective="2026-04-01", source=["PB-2026-05"], summary="Test release.",
                source_title="Provider Bulletin 2026-05", source_url=BULLETINS, policy=root)


def _refused(root: Path, fn, *args, **kwargs) -> EditError:  # type: ignore[no-untyped-def]
    before = _snapshot(root)
    with pytest.raises(EditError) as info:
        fn(*args, policy=root, **kwargs)
    assert _snapshot(root) == before, "a refused edit wrote something"
    return info.value


def test_release_new_appends_a_release_and_adds_a_new_source(root: Path) -> None:
    res = release_new("PB-2026-05", date="2026-03-01", effective="2026-04-01", source=["PB-2026-05"],
                      summary="Adds codes.", source_title="Provider Bulletin 2026-05", source_url=BULLETINS,
                      policy=root)
    assert sorted(p.name for p in res.written) == ["program.json", "releases.json"]
    rel = _read(root, "releases.json")["releases"][-1]
    assert rel == {"id": "PB-2026-05", "published": "2026-03-01", "effective": "2026-04-01",
                   "implements": ["PB-2026-05"], "summary": "Adds codes.", "coverage": "partial"}
    source = next(s for s in _read(root, "program.json")["sources"] if s["id"] == "PB-2026-05")
    assert source["kind"] == "bulletin" and source["secondary"] is False
    assert res.policy.latest.id == "PB-2026-05"
    assert fmt(root, check=True).ok and api.validate(root) == []


def test_release_new_can_hold_the_whole_table(root: Path) -> None:
    res = release_new("TABLE-2026-06", date="2026-06-01", source=["CMAP-TABLE"], summary="The official table.",
                      coverage="complete", covers_from="2023-05-12", policy=root)
    rel = _read(root, "releases.json")["releases"][-1]
    assert (rel["coverage"], rel["covers_from"]) == ("complete", "2023-05-12")
    assert res.policy.complete_from["TABLE-2026-06"] == dt.date(2023, 5, 12)
    assert "--covers-from is for" in _refused(root, release_new, "X-1", date="2026-07-01", source=["CMAP-TABLE"],
                                               summary="x", covers_from="2023-05-12").message


def test_release_new_with_a_known_source_touches_only_releases(root: Path) -> None:
    res = release_new("PB-2026-06", date="2026-01-01", source=["PB-2023-38"], summary="Clarifies.", policy=root)
    assert [p.name for p in res.written] == ["releases.json"]
    assert _read(root, "releases.json")["releases"][-1]["effective"] == "2026-01-01"


def test_release_new_refusals(root: Path) -> None:
    assert "already exists" in _refused(root, release_new, "PB-2023-38", date="2026-01-01", source=["PB-2023-38"],
                                        summary="x").message
    err = _refused(root, release_new, "PB-2026-07", date="2026-01-01", source=["NOPE"], summary="x")
    assert "unknown source 'NOPE'" in err.message and "--source-title" in err.message
    err = _refused(root, release_new, "PB-2019-01", date="2019-01-01", source=["PB-2023-38"], summary="x")
    assert err.problems and err.problems[0].rule == "meaning:release-order"
    assert "releases.json" in err.problems[0].file


def test_code_add_writes_a_new_code_file(root: Path) -> None:
    _release(root)
    res = code_add("g2012", effective="2026-04-01", modality=["audio-video"], release="PB-2026-05",
                   source="PB-2026-05", section="table", description="Brief virtual check-in",
                   category="behavioral-health", policy=root)
    assert [p.name for p in res.written] == ["G2012.json"]
    doc = _read(root, "codes/G2012.json")
    assert doc["system"] == "HCPCS" and doc["$schema"] == "../../schema/code.schema.json"
    assert doc["periods"] == [{"effective": "2026-04-01", "status": "permitted", "modalities": ["audio-video"],
                               "guideline": "Payable via telehealth by audio-video.",
                               "citation": {"source": "PB-2026-05", "section": "table"},
                               "introduced_in": "PB-2026-05"}]
    assert "G2012" in res.policy.codes and fmt(root, check=True).ok


def test_code_add_refusals(root: Path) -> None:
    _release(root)
    common = {"effective": "2026-04-01", "release": "PB-2026-05", "source": "PB-2026-05"}
    new = {"description": "Brief check-in", "category": "behavioral-health"}
    err = _refused(root, code_add, "T1016", modality=["audio-video"], **common)
    assert "already on the table" in err.message and "code set" in err.message
    err = _refused(root, code_add, "G2012", modality=["audio-video"], **common)
    assert "--description and --category" in err.message
    err = _refused(root, code_add, "G2012", modality=["video"], **new, **common)
    assert [p.rule for p in err.problems] == ["meaning:unknown-modality"]
    assert err.problems[0].file.endswith("codes/G2012.json") and err.problems[0].line is not None
    err = _refused(root, code_add, "G2012", modality=["audio-video"], **{**new, "category": "dental"}, **common)
    assert [p.rule for p in err.problems] == ["meaning:unknown-category"]
    err = _refused(root, code_add, "G2012", modality=["audio-video"], **new, effective="2026-04-01",
                   release="PB-2099-01", source="PB-2026-05")
    assert "unknown release 'PB-2099-01'" in err.message and "release new" in err.message
    assert "not a procedure code" in _refused(root, code_add, "123", modality=["audio-video"], **common).message
    err = _refused(root, code_add, "G2012", **new, **common)
    assert "--modality" in err.message


def test_code_add_lists_an_ended_code_again(root: Path) -> None:
    _release(root)
    code_add("T1017", effective="2026-04-01", modality=["audio-video"], release="PB-2026-05", source="PB-2026-05",
             policy=root)
    periods = _read(root, "codes/T1017.json")["periods"]
    assert [p["effective"] for p in periods] == ["2020-03-18", "2026-04-01"]


def test_code_end_sets_end_and_ended_in(root: Path) -> None:
    _release(root)
    res = code_end("T1016", date="2026-03-31", release="PB-2026-05", policy=root)
    assert [p.name for p in res.written] == ["T1016.json"]
    last = _read(root, "codes/T1016.json")["periods"][-1]
    assert last["end"] == "2026-03-31" and last["ended_in"] == "PB-2026-05"
    assert res.policy.codes["T1016"].periods[-1].end is not None
    assert fmt(root, check=True).ok


def test_code_end_refusals(root: Path) -> None:
    _release(root)
    err = _refused(root, code_end, "T1017", date="2026-03-31", release="PB-2026-05")
    assert "no open row" in err.message and "2023-05-11" in err.message
    err = _refused(root, code_end, "T1016", date="2025-01-01", release="PB-2026-05")
    assert "cannot end before it starts" in err.message
    assert "not on the table" in _refused(root, code_end, "G2012", date="2026-03-31", release="PB-2026-05").message
    # a release older than the one that added the row cannot end it
    err = _refused(root, code_end, "T1016", date="2026-03-31", release="PB-2023-38")
    assert [p.rule for p in err.problems] == ["meaning:ended-before-introduced"]


def test_code_set_ends_the_open_row_the_day_before_and_copies_it(root: Path) -> None:
    _release(root)
    res = code_set("T1016", effective="2026-04-01", release="PB-2026-05", modality=["audio-video"],
                   guideline="Audio-video only from April 2026.", policy=root)
    periods = _read(root, "codes/T1016.json")["periods"]
    old, new = periods[-2], periods[-1]
    assert old["end"] == "2026-03-31" and old["ended_in"] == "PB-2026-05"
    assert new["effective"] == "2026-04-01" and new["introduced_in"] == "PB-2026-05"
    assert new["modalities"] == ["audio-video"] and new["guideline"] == "Audio-video only from April 2026."
    assert new["citation"] == old["citation"] and "end" not in new and "dates_note" not in new
    assert res.policy.hash != "" and fmt(root, check=True).ok


def test_code_set_gives_the_new_row_its_own_known_start(root: Path) -> None:
    """H0031's open row has an unknown start (a dated reading of the table): the new row starts on the date the
    source gives, so it is not marked unknown; a guideline change keeps the open row's modalities, undetermined
    ones included, and a modality change states them all."""
    _release(root)
    assert _read(root, "codes/H0031.json")["periods"][-1]["start_known"] is False
    code_set("H0031", effective="2026-04-01", release="PB-2026-05", guideline="New text.", policy=root)
    old, new = _read(root, "codes/H0031.json")["periods"][-2:]
    assert old["start_known"] is False and "start_known" not in new
    assert api.show("H0031", policy=root).span_on(dt.date(2026, 4, 1)).period.start_known  # type: ignore[union-attr]
    doc = _read(root, "codes/H0031.json")
    doc["periods"][-1]["undetermined_modalities"] = ["audio-only"]
    (root / "codes/H0031.json").write_text(json.dumps(doc), encoding="utf-8")
    code_set("H0031", effective="2026-05-01", release="PB-2026-05", guideline="Newer text.", policy=root)
    assert _read(root, "codes/H0031.json")["periods"][-1]["undetermined_modalities"] == ["audio-only"]
    code_set("H0031", effective="2026-06-01", release="PB-2026-05", modality=["audio-video"], policy=root)
    assert "undetermined_modalities" not in _read(root, "codes/H0031.json")["periods"][-1]


def test_code_set_refusals(root: Path) -> None:
    _release(root)
    assert "nothing to change" in _refused(root, code_set, "T1016", effective="2026-04-01",
                                           release="PB-2026-05").message
    err = _refused(root, code_set, "T1016", effective="2025-12-26", release="PB-2026-05", modality=["audio-video"])
    assert "must start after it" in err.message
    err = _refused(root, code_set, "T1017", effective="2026-04-01", release="PB-2026-05", modality=["audio-video"])
    assert "no open row" in err.message
    err = _refused(root, code_set, "T1016", effective="2026-04-01", release="PB-2026-05", source="NOPE")
    assert [p.rule for p in err.problems] == ["meaning:unknown-source"]


def test_code_set_to_not_permitted_drops_modalities_and_limits(root: Path) -> None:
    _release(root)
    code_set("T1016", effective="2026-04-01", release="PB-2026-05", status="not-permitted", policy=root)
    new = _read(root, "codes/T1016.json")["periods"][-1]
    assert new["status"] == "not-permitted" and new["modalities"] == [] and "limits" not in new


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_cli_edits_and_their_messages(root: Path) -> None:
    res = run("release", "new", "PB-2026-05", "--date", "2026-03-01", "--effective", "2026-04-01", "--source",
              "PB-2026-05", "--source-title", "Provider Bulletin 2026-05", "--source-url", "https://www.ctdssmap.com/CTPortal/Provider/Provider-Bulletins",
              "--summary", "Adds G2012.", "--policy", str(root))
    assert res.exit_code == 0, res.output
    assert "wrote " in res.stdout and "ok: release PB-2026-05 started; the policy is valid" in res.stdout
    res = run("code", "add", "G2012", "--effective", "2026-04-01", "--modality", "audio-video", "--release",
              "PB-2026-05", "--source", "PB-2026-05", "--description", "Brief virtual check-in", "--category",
              "behavioral-health", "--policy", str(root))
    assert res.exit_code == 0, res.output
    res = run("code", "end", "T1016", "--date", "2026-03-31", "--release", "PB-2026-05", "--policy", str(root))
    assert res.exit_code == 0, res.output
    res = run("code", "set", "90791", "--effective", "2026-04-01", "--release", "PB-2026-05", "--modality",
              "audio-video", "--modality", "audio-only", "--policy", str(root))
    assert res.exit_code == 0, res.output
    assert run("validate", str(root)).exit_code == 0


def test_cli_refusal_says_why_and_that_nothing_was_written(root: Path) -> None:
    before = _snapshot(root)
    res = run("code", "add", "G2012", "--effective", "2026-04-01", "--modality", "video", "--release",
              "TABLE-2025-12-26", "--source", "TABLE-2025-12-26", "--description", "x y z", "--category",
              "behavioral-health", "--policy", str(root))
    assert res.exit_code == 1
    assert "error: not written: G2012 added from 2026-04-01 in release TABLE-2025-12-26 would leave the policy " \
           "with 1 problem(s):" in res.stderr
    assert "policy/codes/G2012.json:" in res.stderr and "unknown modality 'video'" in res.stderr
    assert "hint: use one of" in res.stderr and res.stderr.rstrip().endswith("nothing was written")
    assert _snapshot(root) == before
    res = run("code", "end", "T1016", "--date", "2026-02-30", "--release", "TABLE-2025-12-26", "--policy", str(root))
    assert res.exit_code == 2 and "not a real calendar date" in res.output
    res = run("code", "end", "T1016", "--date", "2026-03-31", "--release", "TABLE-2025-12-26", "--policy",
              str(root.parent / "nowhere"))
    assert res.exit_code == 1 and "is not a policy folder" in res.stderr
