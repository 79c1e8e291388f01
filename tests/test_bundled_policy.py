"""The bundled CMAP policy: valid, every fact cited, secondary sources marked, and deciding the public facts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from click.testing import CliRunner

from cmap_policy import ClaimLine, evaluate, load_policy
from cmap_policy.api import validate
from cmap_policy.cli import main
from cmap_policy.testing import bundled_tree

PANDEMIC_CODES = ("H2019", "T1017", "S9484", "S9485", "H2012", "97153", "H2014", "T1016", "90846")
TABLE_READING = {  # code: modalities in the secondary reading of the table dated 2025-12-26
    "90791": ["audio-video"], "H0031": ["audio-video"], "H0046": ["audio-video"], "H2014": ["audio-video"],
    "97153": ["audio-video"], "T1016": ["audio-only", "audio-video"], "97156": [],
}


@pytest.fixture(scope="module")
def policy():
    return load_policy()


@pytest.fixture(scope="module")
def tree():
    return bundled_tree()


def _line(code: str, date: str, *mods: str, **kw: Any) -> ClaimLine:
    return ClaimLine(code, dt.date.fromisoformat(date), tuple(mods), **kw)


def _citations(value: Any, where: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "citation" and isinstance(v, dict):
                yield where + "/citation", v
            else:
                yield from _citations(v, f"{where}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _citations(v, f"{where}/{i}")


# ------------------------------------------------------------------------------------------- data and sources


def test_bundled_policy_validates():
    assert validate() == []


def test_every_citation_names_a_listed_source(tree):
    sources = {s["id"] for s in tree.program["sources"]}
    docs = {"program.json": tree.program, **{f"codes/{c}.json": d for c, d in tree.codes.items()}}
    found = 0
    for name, doc in docs.items():
        for where, cite in _citations(doc):
            found += 1
            assert cite["source"] in sources, f"{name}{where} cites unknown source {cite['source']!r}"
    assert found > 40
    for st in tree.program["statutes"]:
        assert st["source"] in sources
    for rel in tree.releases["releases"]:
        assert set(rel["implements"]) <= sources


def test_third_party_readings_are_marked_secondary(tree):
    secondary = {s["id"]: s["secondary"] for s in tree.program["sources"]}
    # Read through a third party's summary or copy, not from DSS's own text.
    for sid in ("TABLE-2025-12-26", "PB-2020-14", "EO-7F-7G", "PB-2023-38", "PB-2024-81", "MODIFIERS"):
        assert secondary[sid] is True, sid
    for sid in ("CGS-17b-245e", "CGS-17b-245g", "CGS-17b-259b", "CMAP-TH-PAGE", "CMS-POS"):
        assert secondary[sid] is False, sid


def test_the_sources_of_the_public_facts_are_all_there(tree):
    ids = {s["id"] for s in tree.program["sources"]}
    assert {"CGS-17b-245e", "CGS-17b-245g", "CMAP-TH-PAGE", "PB-2023-38", "PB-2024-81", "PB-2020-14", "EO-7F-7G",
            "TABLE-2025-12-26", "CMS-POS", "MODIFIERS"} <= ids
    statutes = {s["id"] for s in tree.program["statutes"]}
    assert {"CGS-17b-245e", "CGS-17b-245g"} <= statutes


def test_release_history(policy):
    rels = [(r.id, r.effective.isoformat()) for r in policy.releases]
    assert rels == [("PB-2020-14", "2020-03-18"), ("PB-2023-38", "2023-05-12"), ("PB-2024-81", "2025-01-01"),
                    ("TABLE-2025-12-26", "2025-12-26")]
    # No public source names PB 2024-81's e-consult codes, so it adds no row.
    assert not any(p.introduced_in == "PB-2024-81" for c in policy.codes.values() for p in c.periods)


def test_codes_and_modalities_as_the_sources_name_them(policy):
    assert set(policy.codes) == set(PANDEMIC_CODES) | set(TABLE_READING)
    for code in PANDEMIC_CODES:
        first = policy.codes[code].periods[0]
        assert (first.effective, first.end) == (dt.date(2020, 3, 18), dt.date(2023, 5, 11)), code
        assert first.citation.source.id == "PB-2020-14" and first.ended_in == "PB-2023-38"
    for code, modalities in TABLE_READING.items():
        last = policy.codes[code].periods[-1]
        assert list(last.modalities) == modalities, code
        assert last.permitted == bool(modalities)
        assert last.citation.source.id == "TABLE-2025-12-26" and last.end is None
        # The reading gives no row dates: the data says so rather than inventing one.
        assert "silent" in last.dates_note and "2025-12-26" in last.dates_note


def test_billing_rules_are_data(tree):
    pos = {p["code"]: p for p in tree.program["places_of_service"]}
    assert pos["02"]["marks_telehealth"] and not pos["02"]["accepted"]
    assert pos["10"]["marks_telehealth"] and not pos["10"]["accepted"]
    assert pos["02"]["citation"]["source"] == "TABLE-2025-12-26"
    mods = {m["code"]: m["modality"] for m in tree.program["modifiers"]}
    assert mods == {"95": "audio-video", "GT": "audio-video", "93": "audio-only", "FQ": "audio-only",
                    "GQ": "asynchronous", "FR": "audio-video", "G0": None}


def test_post_emergency_conditions_are_attestations(policy):
    att = {a.id: a for a in policy.program.attestations}
    for aid in ("INFORMED_CONSENT", "IN_PERSON_AVAILABLE", "IDENTITY_VERIFIED", "DOCUMENTATION",
                "MEDICAL_NECESSITY", "ESTABLISHED_PATIENT_WHERE_REQUIRED"):
        assert att[aid].effective == dt.date(2023, 5, 12) and att[aid].citation.source.id == "PB-2023-38", aid
    assert att["AUDIO_ONLY_CONDITIONS"].modalities == ("audio-only",)


# ------------------------------------------------------------------------------------------- decisions


def test_97153_audio_only_in_2026_is_not_payable(policy):
    d = evaluate(policy, _line("97153", "2026-01-05", "93"))
    assert not d.payable and d.reason_codes == ("MODALITY_NOT_ALLOWED",)
    assert evaluate(policy, _line("97153", "2026-01-05", "95")).payable


def test_t1016_audio_only_in_2026_is_payable_with_the_audio_only_conditions(policy):
    d = evaluate(policy, _line("T1016", "2026-01-05", "93"))
    assert d.payable and d.modality == "audio-only"
    ids = {a.id for a in d.attestations}
    assert {"AUDIO_ONLY_CONDITIONS", "INFORMED_CONSENT", "ESTABLISHED_PATIENT_WHERE_REQUIRED"} <= ids
    assert "AUDIO_ONLY_CONDITIONS" not in {a.id for a in evaluate(policy, _line("T1016", "2026-01-05", "95"))
                                           .attestations}


def test_97156_is_not_permitted_and_cites_the_secondary_reading(policy):
    d = evaluate(policy, _line("97156", "2026-01-05", "95"))
    assert d.reason_codes == ("NOT_PERMITTED_VIA_TELEHEALTH",)
    cite = d.reasons[0].citation
    assert cite is not None and cite.source.id == "TABLE-2025-12-26" and cite.source.secondary


@pytest.mark.parametrize("code", PANDEMIC_CODES)
def test_pb_2020_14_codes_by_audio_video_in_2021_are_payable_and_end_with_the_emergency(policy, code):
    d = evaluate(policy, _line(code, "2021-06-01", "95"))
    assert d.payable and d.period is not None and d.period.citation.source.id == "PB-2020-14"
    assert not d.attestations  # the standing conditions start with PB 2023-38
    after = evaluate(policy, _line(code, "2023-05-12", "95"))
    assert not after.payable and after.reason_codes == ("OUTSIDE_EFFECTIVE_DATES",)


def test_pandemic_audio_only_needs_an_established_patient(policy):
    assert evaluate(policy, _line("H2019", "2021-06-01", "93", established_patient=True)).payable
    d = evaluate(policy, _line("H2019", "2021-06-01", "93", established_patient=False))
    assert d.reason_codes == ("ESTABLISHED_PATIENT_REQUIRED",)
    assert d.reasons[0].citation is not None and d.reasons[0].citation.source.id == "EO-7F-7G"


def test_an_unlisted_code_is_not_payable(policy):
    d = evaluate(policy, _line("99213", "2026-01-05", "95"))
    assert not d.payable and d.reason_codes == ("NOT_ON_TELEHEALTH_TABLE",)


def test_pos_02_is_not_accepted_and_gt_is_audio_video(policy):
    assert evaluate(policy, _line("90791", "2026-01-05", "95", pos="02")).reason_codes == ("POS_NOT_ACCEPTED",)
    assert evaluate(policy, _line("90791", "2026-01-05", "GT", pos="11")).payable
    assert evaluate(policy, _line("90791", "2026-01-05", "GQ")).reason_codes == ("MODALITY_NOT_ALLOWED",)


def test_as_published_before_the_table_reading_90791_was_not_listed(policy):
    d = evaluate(policy, _line("90791", "2026-01-05", "95"), release="PB-2024-81")
    assert d.reason_codes == ("NOT_ON_TELEHEALTH_TABLE",)


# ------------------------------------------------------------------------------------------- show


def test_show_97156_says_not_permitted_and_where_that_comes_from():
    res = CliRunner().invoke(main, ["show", "97156"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "listed as NOT PERMITTED via telehealth" in out
    assert "TABLE-2025-12-26" in out and "row 97156" in out
    assert "SECONDARY source" in out
    assert "spreadsheet" in out and "authority" in out.lower()
