"""The bundled CMAP policy: valid, every fact cited, secondary sources marked, and deciding the public facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from cmap_policy import ClaimLine, Policy, evaluate, load_policy
from cmap_policy.api import validate
from cmap_policy.cli import main
from cmap_policy.testing import PolicyTree, bundled_tree

LATER_BULLETINS = ("PB-2020-17", "PB-2020-28", "PB-2020-38", "PB-2020-44", "PB-2020-90")
PANDEMIC_CODES = ("H2019", "T1017", "S9484", "S9485", "H2012", "97153", "H2014", "T1016", "90846")
TABLE_READING = {  # code: modalities in the secondary reading of the table dated 2025-12-26
    "90791": ["audio-video"], "H0031": ["audio-video"], "H0046": ["audio-video"], "H2014": ["audio-video"],
    "97153": ["audio-video"], "T1016": ["audio-only", "audio-video"], "97156": [],
}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def tree() -> PolicyTree:
    return bundled_tree()


def _line(code: str, date: str, *mods: str, **kw: Any) -> ClaimLine:
    return ClaimLine(code, dt.date.fromisoformat(date), tuple(mods), **kw)


def _citations(value: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
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


def test_bundled_policy_validates() -> None:
    assert validate() == []


def test_every_citation_names_a_listed_source(tree: PolicyTree) -> None:
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


def test_third_party_readings_are_marked_secondary(tree: PolicyTree) -> None:
    secondary = {s["id"]: s["secondary"] for s in tree.program["sources"]}
    # Read through a third party's summary or copy, not from DSS's own text.
    for sid in ("TABLE-2025-12-26", "PB-2020-14", "PB-2020-14-AUDIO", "PB-2020-09-10", "PB-2020-LATER", "EO-7F-7G",
                "EO-7DD-7FF", "EO-7DD-PROVIDERS", "BEFORE-2020-PHONE", "BEFORE-2020-VIDEO", "CCHP-CT-2021", "PA-20-2",
                "PA-21-9", "ASD-GUIDE", "PB-2023-38", "PB-2024-81", "CCHP-CT-FQHC", "CCHP-CT-DEF", "ECONSULT-2020",
                "MODIFIERS-CAREPARTNERS", "MODIFIERS-FCSO", "MOD-FQ-DATE", "CPT-95"):
        assert secondary[sid] is True, sid
    for sid in ("CGS-17b-245e", "CGS-17b-245g", "CGS-17b-259b", "CMAP-TH-PAGE", "CMAP-TABLE", "CMS-POS", "CPT-93"):
        assert secondary[sid] is False, sid


def test_every_source_has_a_real_address(tree: PolicyTree) -> None:
    for src in tree.program["sources"]:
        assert src["url"].startswith("https://"), src["id"]
        assert " " not in src["url"], src["id"]
    urls = {s["id"]: s["url"] for s in tree.program["sources"]}
    assert urls["PB-2023-38"].endswith("Filename=pb23_38.pdf&URI=Bulletins/pb23_38.pdf")
    assert urls["CMAP-TABLE"].endswith("/Publications/Telehealth_Table.xlsx")
    assert urls["CMAP-TH-PAGE"] == "https://www.ctdssmap.com/CTPortal/Telehealth-Information"
    assert tree.program["program"]["official_table"]["source"] == "CMAP-TABLE"


def test_the_sources_of_the_public_facts_are_all_there(tree: PolicyTree) -> None:
    ids = {s["id"] for s in tree.program["sources"]}
    assert {"CGS-17b-245e", "CGS-17b-245g", "CMAP-TH-PAGE", "CMAP-TABLE", "PB-2023-38", "PB-2024-81", "PB-2020-14",
            "EO-7F-7G", "EO-7DD-7FF", "TABLE-2025-12-26", "CMS-POS", "CPT-93"} <= ids
    statutes = {s["id"] for s in tree.program["statutes"]}
    assert {"CGS-17b-245e", "CGS-17b-245g"} <= statutes


def test_release_history(policy: Policy) -> None:
    rels = [(r.id, r.published.isoformat(), r.effective.isoformat(), r.coverage) for r in policy.releases]
    assert rels == [("ECONSULT-2020", "2020-01-01", "2020-01-01", "partial"),
                    ("PB-2020-09-10", "2020-03-13", "2020-03-13", "partial"),
                    ("PB-2020-14", "2020-03-19", "2020-03-18", "partial"),
                    *((bulletin, "2020-03-19", "2020-03-19", "partial") for bulletin in LATER_BULLETINS),
                    ("EO-7DD-7FF", "2020-04-22", "2020-04-22", "partial"),
                    ("PA-20-2", "2020-07-31", "2020-07-31", "partial"),
                    ("PA-21-9", "2021-05-10", "2021-05-10", "partial"),
                    ("PB-2023-38", "2023-05-12", "2023-05-12", "partial"),
                    ("PB-2024-81", "2024-12-01", "2025-01-01", "partial"),
                    ("TABLE-2025-12-26", "2025-12-26", "2025-12-26", "partial")]
    # No public source holds the whole table, so no release denies a code merely for being absent.
    assert all(v is None for v in policy.complete_from.values())
    # No public source names the codes of PB 2020-09, the later pandemic bulletins or PB 2024-81: no rows.
    # Nor those of the statutes and executive orders, nor the e-consult codes of 2019.
    for rel in ("ECONSULT-2020", "PB-2020-09-10", *LATER_BULLETINS, "EO-7DD-7FF", "PA-20-2", "PA-21-9", "PB-2024-81",
                "PB-2023-38"):
        assert not any(p.introduced_in == rel for c in policy.codes.values() for p in c.periods), rel
    # Each later pandemic bulletin is a release of its own, its date unknown and its code list not public.
    for bulletin in LATER_BULLETINS:
        release = policy.release(bulletin)
        assert not release.dates_known and "Code list not public" in release.summary, bulletin
        assert sorted(s.id for s in release.implements) == ["CCHP-CT-2021", "PB-2020-LATER"]
    assert policy.release("PB-2020-14").dates_known


def test_codes_and_modalities_as_the_sources_name_them(policy: Policy) -> None:
    assert set(policy.codes) == set(PANDEMIC_CODES) | set(TABLE_READING)
    for code in PANDEMIC_CODES:
        first = policy.codes[code].periods[0]
        assert (first.effective, first.end) == (dt.date(2020, 3, 18), dt.date(2023, 5, 11)), code
        assert first.citation.source.id == "PB-2020-14" and first.ended_in == "PB-2023-38"
        # PB 2020-14 allowed them by telehealth; no public source says whether by telephone
        assert first.modalities == ("audio-video",) and first.undetermined_modalities == ("audio-only",), code
        assert first.limits == () and first.start_known, code
    assert "targeted case management" in policy.codes["T1017"].periods[0].citation.section
    for code, modalities in TABLE_READING.items():
        last = policy.codes[code].periods[-1]
        assert list(last.modalities) == modalities, code
        assert last.permitted == bool(modalities)
        assert last.citation.source.id == "TABLE-2025-12-26" and last.end is None
        # The reading gives no row dates: the data says so, as data, rather than inventing a start.
        assert last.effective == dt.date(2025, 12, 26) and last.start_known is False, code


def test_billing_rules_are_data(policy: Policy) -> None:
    program = policy.program
    for code in ("02", "10"):
        pos = program.places_of_service[code]
        assert pos.marks_telehealth and pos.citation.source.id == "CMS-POS"
        (g,) = pos.guidance
        # bill-it-this-way guidance from the reading of the table: a warning, dated, never a denial
        assert (g.kind, g.effective, g.start_known, g.citation.source.id) == (
            "warn", dt.date(2025, 12, 26), False, "TABLE-2025-12-26")
    assert program.places_of_service["02"].effective == dt.date(2017, 1, 1)
    assert program.places_of_service["10"].effective == dt.date(2022, 1, 1)
    mods = {m.code: (m.modality, m.marks_telehealth) for m in program.modifiers.values()}
    assert mods == {"95": ("audio-video", True), "GT": ("audio-video", True), "93": ("audio-only", True),
                    "FQ": ("audio-only", True), "GQ": ("asynchronous", True), "G0": (None, True),
                    "FR": (None, False)}
    assert program.modifiers["93"].effective == dt.date(2022, 1, 1)
    assert program.modifiers["93"].citation.source.id == "CPT-93"


def test_the_executive_orders_are_dated(policy: Policy) -> None:
    att = {a.id: a for a in policy.program.attestations}
    eo = att["EO_7G_ESTABLISHED_PATIENT"]
    # 7G (2020-03-19): established patients for Medicaid audio-only; 7FF (2020-04-24): new patients too
    assert (eo.effective, eo.end, eo.modalities) == (dt.date(2020, 3, 19), dt.date(2020, 4, 23), ("audio-only",))
    sources = {s.id: s for s in policy.program.sources.values()}
    assert "7F (2020-03-18)" in sources["EO-7F-7G"].title and "7G (2020-03-19)" in sources["EO-7F-7G"].title


def test_post_emergency_conditions_are_attestations(policy: Policy) -> None:
    att = {a.id: a for a in policy.program.attestations}
    for aid in ("INFORMED_CONSENT", "IN_PERSON_AVAILABLE", "IDENTITY_VERIFIED", "DOCUMENTATION",
                "MEDICAL_NECESSITY", "ESTABLISHED_PATIENT_WHERE_REQUIRED"):
        assert att[aid].effective == dt.date(2023, 5, 12) and att[aid].citation.source.id == "PB-2023-38", aid
    assert att["AUDIO_ONLY_CONDITIONS"].modalities == ("audio-only",)


# ------------------------------------------------------------------------------------------- decisions


def test_97153_audio_only_in_2026_is_not_payable(policy: Policy) -> None:
    d = evaluate(policy, _line("97153", "2026-01-05", "93"))
    assert not d.payable and d.reason_codes == ("MODALITY_NOT_ALLOWED",)
    assert evaluate(policy, _line("97153", "2026-01-05", "95")).payable


def test_t1016_audio_only_in_2026_is_payable_with_the_audio_only_conditions(policy: Policy) -> None:
    d = evaluate(policy, _line("T1016", "2026-01-05", "93"))
    assert d.payable and d.modality == "audio-only"
    ids = {a.id for a in d.attestations}
    assert {"AUDIO_ONLY_CONDITIONS", "INFORMED_CONSENT", "ESTABLISHED_PATIENT_WHERE_REQUIRED"} <= ids
    assert "AUDIO_ONLY_CONDITIONS" not in {a.id for a in evaluate(policy, _line("T1016", "2026-01-05", "95"))
                                           .attestations}


def test_97156_is_not_permitted_and_cites_the_secondary_reading(policy: Policy) -> None:
    d = evaluate(policy, _line("97156", "2026-01-05", "95"))
    assert d.reason_codes == ("NOT_PERMITTED_VIA_TELEHEALTH",)
    cite = d.reasons[0].citation
    assert cite is not None and cite.source.id == "TABLE-2025-12-26" and cite.source.secondary


@pytest.mark.parametrize("code", PANDEMIC_CODES)
def test_pb_2020_14_codes_by_audio_video_in_2021_are_payable_and_then_the_sources_fall_silent(policy: Policy,
                                                                                             code: str) -> None:
    d = evaluate(policy, _line(code, "2021-06-01", "95"))
    assert d.payable and d.period is not None and d.period.citation.source.id == "PB-2020-14"
    assert {a.id for a in d.attestations} == {"COVID_CONSENT", "COVID_CONDITIONS"}
    after = evaluate(policy, _line(code, "2023-05-12", "95"))
    assert after.undetermined and after.reason_codes == ("DATE_NOT_IN_DATA",)
    phone = evaluate(policy, _line(code, "2022-06-01", "93"))
    # undetermined, with what the sources say of audio-only then (Public Act 21-9, PB 2020-14, PB 20-44)
    assert phone.undetermined and phone.reason_codes == ("ERA_UNDETERMINED", "MODALITY_UNDETERMINED")
    assert phone.reasons[0].citation is not None and phone.reasons[0].citation.source.id == "PA-21-9"


def test_done_when_lines_give_what_the_sources_support(policy: Policy) -> None:
    """The lines the fidelity review tried, each with what the sources support."""
    def outcome(code: str, date: str, *mods: str, **kw: Any) -> str:
        return evaluate(policy, _line(code, date, *mods, **kw)).outcome.value

    assert outcome("99213", "2026-01-05", "95", pos="10") == "undetermined"
    assert outcome("90834", "2024-03-01", "95", pos="11") == "undetermined"
    assert outcome("90791", "2024-06-01", "95", pos="11") == "undetermined"
    assert outcome("90791", "2026-01-05", "95", pos="11") == "payable"
    assert outcome("90791", "2026-01-05", "93") == "not_payable"
    assert outcome("97156", "2026-01-05", "95") == "not_payable"
    assert outcome("H0031", "2026-01-05", "FR") == "not_telehealth"


@pytest.mark.parametrize("pos", ["02", "10"])
def test_no_line_at_pos_02_or_10_is_denied_on_guidance_alone(policy: Policy, pos: str) -> None:
    # The only public guidance says how to bill, not that lines are denied: on every date the code exists,
    # a line at 02 or 10 is decided as the same line at an in-person place of service, plus a warning.
    for code in [*PANDEMIC_CODES, *TABLE_READING, "99213"]:
        for date in ("2022-06-01", "2024-06-01", "2026-01-05"):
            for mods in (("95",), ("93",), ("GT",)):
                at_pos = evaluate(policy, _line(code, date, *mods, pos=pos))
                in_person = evaluate(policy, _line(code, date, *mods, pos="11"))
                assert at_pos.outcome == in_person.outcome, (code, date, mods)
                assert "POS_NOT_ACCEPTED" not in at_pos.reason_codes
                extra = set(at_pos.reason_codes) - set(in_person.reason_codes)
                assert extra <= {"POS_GUIDANCE"}


def test_an_unnamed_code_is_undetermined_and_names_the_official_table(policy: Policy) -> None:
    d = evaluate(policy, _line("99213", "2026-01-05", "95"))
    assert d.undetermined and d.reason_codes == ("CODE_NOT_IN_DATA",)
    assert "Telehealth_Table.xlsx" in d.reasons[0].message and d.reasons[0].carc is None


def test_pos_02_carries_guidance_and_gt_is_audio_video(policy: Policy) -> None:
    d = evaluate(policy, _line("90791", "2026-01-05", "95", pos="02"))
    assert d.payable and d.reason_codes == ("ON_TELEHEALTH_TABLE", "POS_GUIDANCE")
    assert evaluate(policy, _line("90791", "2026-01-05", "GT", pos="11")).payable
    assert evaluate(policy, _line("90791", "2026-01-05", "GQ")).reason_codes == ("MODALITY_NOT_ALLOWED",)


def test_as_published_before_the_table_reading_90791_was_not_in_the_data(policy: Policy) -> None:
    d = evaluate(policy, _line("90791", "2026-01-05", "95"), release="PB-2024-81")
    assert d.reason_codes == ("CODE_NOT_IN_DATA",)


# ------------------------------------------------------------------------------------------- show


def test_show_97156_says_not_permitted_and_where_that_comes_from() -> None:
    res = CliRunner().invoke(main, ["show", "97156"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "listed as NOT PERMITTED via telehealth" in out
    assert "TABLE-2025-12-26" in out and "97156 parent training" in out
    assert "SECONDARY source" in out
    assert "spreadsheet" in out and "authority" in out.lower()
    assert "real start is not known" in out


def test_show_says_what_the_data_covers() -> None:
    res = CliRunner().invoke(main, ["show", "99213"])
    assert res.exit_code == 0, res.output
    assert "not in this data" in res.output and "Telehealth_Table.xlsx" in res.output
    assert "NOT on the CMAP telehealth table" not in res.output
    gaps = CliRunner().invoke(main, ["show", "97153", "--date", "2024-06-01"])
    assert "no public source" in gaps.output


def test_modifiers_that_are_not_telehealth_change_nothing_for_the_autism_codes(policy: Policy) -> None:
    # The ABA guide: 97156 with U2 (the child present) is in person only, like 97156; H0032 with TS is absent
    # from the table as read, like H0032: neither U2 nor TS is a telehealth modifier, so neither changes a decision.
    day = dt.date(2026, 1, 5)
    for code, extra, outcome, reasons in (("97156", "U2", "not_payable", ("NOT_PERMITTED_VIA_TELEHEALTH",)),
                                          ("H0032", "TS", "undetermined", ("CODE_NOT_IN_DATA",))):
        plain = evaluate(policy, ClaimLine(code, day, modifiers=("95",), pos="12"))
        marked = evaluate(policy, ClaimLine(code, day, modifiers=(extra, "95"), pos="12"))
        assert (marked.outcome.value, marked.reason_codes) == (plain.outcome.value, plain.reason_codes) \
            == (outcome, reasons), code


def test_era_rules_deny_only_where_the_line_says_enough(policy: Policy) -> None:
    rules = {r.id: r for r in policy.program.era_rules}
    # the only rule that denies every line it reads: live video before the emergency
    assert [r.id for r in rules.values() if r.verdict == "deny"] == ["BEFORE_PANDEMIC_VIDEO"]
    assert rules["BEFORE_PANDEMIC_VIDEO"].end == dt.date(2020, 3, 12)
    # the rest deny only through a limit the line's own fields break (age, established patient)
    limited = {r.id: [lim.kind for lim in r.limits] for r in rules.values() if r.limits}
    assert limited == {"BEFORE_PANDEMIC_TELEPHONE": ["age"], "PB_2020_14_AUDIO_ONLY": ["established-patient"]}
    for r in rules.values():
        assert r.citation.source.secondary and r.citation.source.url.startswith("https://"), r.id
    # e-consults: a category without codes, on the site and in the explanation, never a denial
    assert {r.id for r in rules.values() if r.category == "e-consult"} == {"BEFORE_2020_ECONSULT",
                                                                          "ECONSULT_NOT_PAYABLE_2020"}
    child = evaluate(policy, ClaimLine("T1016", dt.date(2019, 6, 3), modality="audio-only", member_age=12))
    adult = evaluate(policy, ClaimLine("T1016", dt.date(2019, 6, 3), modality="audio-only", member_age=19))
    assert child.undetermined and "ERA_UNDETERMINED" in child.reason_codes
    assert not adult.payable and not adult.undetermined and "AGE_OUTSIDE_LIMIT" in adult.reason_codes
