"""Example tests that pin down what the mutation run (docs/testing.md) found unchecked, and regressions the
Hypothesis properties found: each asserts one exact behaviour of the interpreter or the meaning checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

from cmap_policy import load_policy
from cmap_policy.interpreter import decide, evaluate, find_period
from cmap_policy.model import ClaimLine, Policy
from cmap_policy.reasons import REASONS
from cmap_policy.resources import examples_dir
from cmap_policy.testing import PolicyTree, read_tree, write_tree
from tests.helpers import fixture_tree, line

# --- regressions from test_properties.py: decisions must not depend on the order of lists in the files ----------


def _reversed_lists(tree: PolicyTree) -> PolicyTree:
    out = tree.copy()
    out.program["modifiers"].reverse()
    for mod in out.program["modifiers"]:
        mod["claim_types"].reverse()
    for doc in out.codes.values():
        for p in doc["periods"]:
            p.get("limits", []).reverse()
    return out


def test_messages_do_not_follow_the_order_of_modifiers_in_program_json(tmp_path: Path) -> None:
    tree = fixture_tree()
    a = load_policy(write_tree(tree, tmp_path / "a" / "policy"))
    b = load_policy(write_tree(_reversed_lists(tree), tmp_path / "b" / "policy"))
    assert a.hash == b.hash
    for probe in (line("90791", "2026-02-02", "G0"),  # MODALITY_NOT_INDICATED lists the modifiers of each modality
                  line("99999", "2026-03-02", "FQ", claim_type="professional", rcc="0900")):  # FQ's claim types
        da, db = evaluate(a, probe), evaluate(b, probe)
        assert da.as_dict() == db.as_dict()
    not_indicated = evaluate(a, line("90791", "2026-02-02", "G0")).reasons[0].message
    assert "(audio-video: 95, GT; audio-only: 93, FQ)" in not_indicated


def test_limits_to_confirm_do_not_follow_the_order_of_limits_in_the_file(tmp_path: Path) -> None:
    tree = fixture_tree()
    a = load_policy(write_tree(tree, tmp_path / "a" / "policy"))
    b = load_policy(write_tree(_reversed_lists(tree), tmp_path / "b" / "policy"))
    probe = line("99999", "2026-03-02", "95")  # no age, provider type or units: three limits to confirm
    kinds = [lim.kind for lim in evaluate(a, probe).to_confirm]
    assert kinds == ["age", "provider-type", "units-per-day"]
    assert [lim.kind for lim in evaluate(b, probe).to_confirm] == kinds


# --- every reason, exactly: code, message, rule, claim adjustment reason code and citation -----------------------

CMAP = "policy"
DEMO = "demo"


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Policy]:
    return {CMAP: load_policy(), DEMO: load_policy(examples_dir() / "demo-policy"),
            "fixture": load_policy(write_tree(fixture_tree(), tmp_path_factory.mktemp("fixture") / "policy"))}


EXACT = [
    (CMAP, None, line("90791", "2026-02-02", pos="11"), 'NOT_A_TELEHEALTH_LINE', None,
     None, None,
     'Nothing on the line marks it as telehealth (no telehealth modifier, place of service or modality), '
     'so the telehealth table does not apply.'),
    (CMAP, None, line("T1016", "2026-01-05", "93"), 'ON_TELEHEALTH_TABLE', None,
     'policy/codes/T1016.json#T1016@2025-12-26', 'TABLE-2025-12-26',
     'T1016 is on the CMAP telehealth table for audio-only (telephone) (in force by 2025-12-26, its real '
     'start not known).'),
    (CMAP, None, line("H2019", "2021-06-01", "95"), 'ON_TELEHEALTH_TABLE', None,
     'policy/codes/H2019.json#H2019@2020-03-18', 'PB-2020-14',
     'H2019 is on the CMAP telehealth table for audio-video (telemedicine) (from 2020-03-18 to 2023-05-11).'),
    (DEMO, None, line("99995", "2024-06-01", "95"), 'NOT_ON_TELEHEALTH_TABLE', '204',
     'demo-policy/program.json#/program', 'DEMO-RULES',
     '99995 is not on the CMAP telehealth table (release DEMO-R4, which holds the whole table): only '
     'listed codes are payable via telehealth.'),
    (CMAP, None, line("97156", "2026-01-05", "95"), 'NOT_PERMITTED_VIA_TELEHEALTH', '204',
     'policy/codes/97156.json#97156@2025-12-26', 'TABLE-2025-12-26',
     "The table lists 97156 as not permitted via telehealth (in force by 2025-12-26, its real start not "
     "known). Not permitted via telehealth: parent training, with or without the child present, is given "
     "in person. The official table's own policy-guideline text for this row is not public."),
    (DEMO, None, line("99991", "2023-12-31", "95"), 'OUTSIDE_EFFECTIVE_DATES', '204',
     'demo-policy/codes/99991.json#99991@2024-01-01', 'DEMO-RULES',
     '99991 is not on the telehealth table on the date of service, and this data holds the whole table for '
     'that date: it is listed from 2024-01-01.'),
    (CMAP, 'PB-2020-14', line("90834", "2026-02-02", "95"), 'CODE_NOT_IN_DATA', None,
     'policy/program.json#/program', 'CMAP-TABLE',
     '90834 is not in this data: release PB-2020-14 holds only the rows public sources name, so it cannot '
     'say whether the code is on the CMAP telehealth table. The official CMAP Telehealth Table '
     '(https://www.ctdssmap.com/CTPortal/Portals/0/StaticContent/Publications/Telehealth_Table.xlsx) '
     'decides.'),
    (CMAP, None, line("H2019", "2024-03-01", "GT"), 'DATE_NOT_IN_DATA', None,
     'policy/codes/H2019.json#H2019@2020-03-18', 'CMAP-TABLE',
     'H2019 is in this data (a row from 2020-03-18 to 2023-05-11), but no public source it holds (release '
     'TABLE-2025-12-26) covers the date of service. The official CMAP Telehealth Table '
     '(https://www.ctdssmap.com/CTPortal/Portals/0/StaticContent/Publications/Telehealth_Table.xlsx) '
     'decides; this data holds only the rows public sources name.'),
    (CMAP, None, line("97153", "2024-03-01", "95"), 'DATE_NOT_IN_DATA', None,
     'policy/codes/97153.json#97153@2020-03-18', 'CMAP-TABLE',
     '97153 is in this data (a row from 2020-03-18 to 2023-05-11 and a row in force by 2025-12-26, its '
     'real start not known), but no public source it holds (release TABLE-2025-12-26) covers the date of '
     'service. The official CMAP Telehealth Table '
     '(https://www.ctdssmap.com/CTPortal/Portals/0/StaticContent/Publications/Telehealth_Table.xlsx) '
     'decides; this data holds only the rows public sources name.'),
    (CMAP, None, line("97153", "2019-03-01", "95"), 'DATE_NOT_IN_DATA', None,
     'policy/codes/97153.json#97153@2020-03-18', 'CMAP-TABLE',
     '97153 is in this data (a row from 2020-03-18 to 2023-05-11), but no public source it holds (release '
     'TABLE-2025-12-26) covers the date of service. The official CMAP Telehealth Table '
     '(https://www.ctdssmap.com/CTPortal/Portals/0/StaticContent/Publications/Telehealth_Table.xlsx) '
     'decides; this data holds only the rows public sources name.'),
    (CMAP, None, line("T1016", "2026-01-05", "95", "93"), 'CONFLICTING_MODIFIERS', '4',
     'policy/program.json#/modifiers', 'CPT-95',
     'The line signals more than one modality: modifier 93 signals audio-only (telephone); modifier 95 '
     'signals audio-video (telemedicine).'),
    (CMAP, None, line("90791", "2026-02-02", "95", modality="audio-only"), 'CONFLICTING_MODIFIERS', '4',
     'policy/program.json#/modifiers', 'CPT-95',
     'The line signals more than one modality: the stated modality signals audio-only (telephone); '
     'modifier 95 signals audio-video (telemedicine).'),
    (CMAP, None, line("97153", "2021-06-01", "93"), 'MODIFIER_NOT_IN_EFFECT', '182',
     'policy/program.json#/modifiers/93', 'CPT-93',
     'Modifier 93 exists in its code set from 2022-01-01, not on the date of service.'),
    (CMAP, None, line("97153", "2021-06-01", "95", pos="10"), 'POS_NOT_IN_EFFECT', '58',
     'policy/program.json#/places_of_service/10', 'CMS-POS',
     "Place of service 10 (telehealth provided in the patient's home) exists from 2022-01-01, not on the "
     "date of service."),
    (DEMO, None, line("99992", "2024-06-01", "95", pos="10"), 'POS_NOT_ACCEPTED', '58',
     'demo-policy/program.json#/places_of_service/10', 'DEMO-RULES',
     "Place of service 10 (telehealth in the patient's home): DEMO rule: lines with place of service 10 "
     "are not accepted."),
    (CMAP, None, line("90791", "2026-02-02", "G0"), 'MODALITY_NOT_INDICATED', None,
     'policy/codes/90791.json#90791@2025-12-26', 'TABLE-2025-12-26',
     'The line is marked as telehealth but nothing on it says how it was delivered, and 90791 is listed '
     'for audio-video (telemedicine) only: add the modifier of the way it was delivered (audio-video: 95, '
     'GT; audio-only: 93, FQ).'),
    (CMAP, None, line("90791", "2026-02-02", pos="02"), 'MODALITY_NOT_INDICATED', None,
     'policy/codes/90791.json#90791@2025-12-26', 'TABLE-2025-12-26',
     'The line is marked as telehealth but nothing on it says how it was delivered, and 90791 is listed '
     'for audio-video (telemedicine) only: add the modifier of the way it was delivered (audio-video: 95, '
     'GT; audio-only: 93, FQ).'),
    (CMAP, None, line("97153", "2022-06-01", "93"), 'MODALITY_UNDETERMINED', None,
     'policy/codes/97153.json#97153@2020-03-18', 'PB-2020-14',
     '97153 is listed for audio-video (telemedicine) (from 2020-03-18 to 2023-05-11); the sources neither '
     'allow nor rule out audio-only (telephone) for it. The official CMAP Telehealth Table '
     '(https://www.ctdssmap.com/CTPortal/Portals/0/StaticContent/Publications/Telehealth_Table.xlsx) '
     'decides.'),
    (CMAP, None, line("97153", "2026-02-02", "93"), 'MODALITY_NOT_ALLOWED', '4',
     'policy/codes/97153.json#97153@2025-12-26', 'TABLE-2025-12-26',
     '97153 is listed for audio-video (telemedicine) only (in force by 2025-12-26, its real start not '
     'known); the line is audio-only (telephone) (modifier 93).'),
    (CMAP, None, line("90791", "2026-02-02", "95", pos="10"), 'POS_GUIDANCE', None,
     'policy/program.json#/places_of_service/10', 'TABLE-2025-12-26',
     "Place of service 10 (telehealth provided in the patient's home): CMAP billing guidance: bill "
     "modifier GT or 95 with the place of service where the visit would have happened in person. A source "
     "says how to bill, not that lines with this place of service are denied."),
    (CMAP, None, line("T1016", "2026-02-02", "G0"), 'MODIFIER_EXPECTED', None,
     'policy/codes/T1016.json#T1016@2025-12-26', 'TABLE-2025-12-26',
     'Nothing on the line says how it was delivered; T1016 is listed for audio-only (telephone) or '
     'audio-video (telemedicine), so either way is payable: add the modifier of the way it was delivered '
     '(audio-video: 95, GT; audio-only: 93, FQ).'),
    (DEMO, None, line("99991", "2024-06-01", "93", member_age=9, established_patient=False),
     'ESTABLISHED_PATIENT_REQUIRED', '272',
     'demo-policy/codes/99991.json#99991@2024-01-01', 'DEMO-RULES',
     'The member is not an established patient. DEMO: audio-only for established patients only.'),
    (DEMO, None, line("99993", "2024-06-01", "GQ", claim_type="institutional"), 'MODIFIER_NOT_FOR_CLAIM_TYPE', '4',
     'demo-policy/program.json#/modifiers/GQ', 'DEMO-RULES',
     'Modifier GQ is used on professional claims, not on institutional claims.'),
    (DEMO, None, line("T9991", "2024-06-01", "95", claim_type="institutional"), 'RCC_REQUIRED', '16',
     'demo-policy/codes/T9991.json#T9991@2024-01-01', 'DEMO-RULES',
     'On an institutional claim T9991 needs a revenue center code: one of 0900, 0914.'),
    (DEMO, None, line("T9991", "2024-06-01", "95", claim_type="institutional", rcc="0100"), 'RCC_NOT_ALLOWED', '199',
     'demo-policy/codes/T9991.json#T9991@2024-01-01', 'DEMO-RULES',
     'Revenue center code 0100 is not allowed with T9991; the table allows 0900, 0914.'),
    (DEMO, None, line("99991", "2024-06-01", "95", member_age=40), 'AGE_OUTSIDE_LIMIT', '6',
     'demo-policy/codes/99991.json#99991@2024-01-01', 'DEMO-STATUTE',
     'The member is 40; the period allows ages 3 to 17. DEMO: ages 3 to 17.'),
    (DEMO, None, line("99991", "2025-06-01", "95", provider_type="dentist"), 'PROVIDER_TYPE_NOT_ALLOWED', '8',
     'demo-policy/codes/99991.json#99991@2025-01-01', 'DEMO-RULES',
     "Provider type 'dentist' is not one of clinic, physician. DEMO: clinics and physicians only."),
    (DEMO, None, line("99992", "2024-06-01", "95", units=6), 'UNITS_OVER_LIMIT', '151',
     'demo-policy/codes/99992.json#99992@2024-01-01', 'DEMO-RULES',
     '6 units billed; at most 4 a day. DEMO: at most 4 units a day.'),
]


@pytest.mark.parametrize(("which", "release", "probe", "code", "carc", "rule", "source", "message"), EXACT,
                         ids=[f"{row[3]}-{i}" for i, row in enumerate(EXACT)])
def test_each_reason_exactly(policies: dict[str, Policy], which: str, release: str | None, probe: ClaimLine,
                             code: str, carc: str | None, rule: str | None, source: str | None, message: str) -> None:
    for decide_with in (decide, evaluate, evaluate):  # the reference, then the cache cold and warm
        d = decide_with(policies[which], probe, release=release)
        (reason,) = [r for r in d.reasons if r.code == code]
        assert reason.message == message
        assert (reason.carc, reason.rule) == (carc, rule)
        assert (reason.citation.source.id if reason.citation else None) == source
        assert reason.kind == REASONS[code].kind
        policy = policies[which]
        assert (d.release, d.policy_hash) == (release or policy.latest.id, policy.hash)
        assert isinstance(d.attestations, tuple) and isinstance(d.to_confirm, tuple)
        if code == "NOT_A_TELEHEALTH_LINE":
            assert (d.period, d.modality, d.attestations, d.to_confirm) == (None, None, (), ())


# --- limits at their edges ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "reasons", "confirm"), [
    ({"member_age": 2}, ["AGE_OUTSIDE_LIMIT"], []),
    ({"member_age": 3}, ["ON_TELEHEALTH_TABLE"], []),
    ({"member_age": 17}, ["ON_TELEHEALTH_TABLE"], []),
    ({"member_age": 18}, ["AGE_OUTSIDE_LIMIT"], []),
    ({}, ["ON_TELEHEALTH_TABLE"], ["age"]),
])
def test_age_limit_edges(policies: dict[str, Policy], fields: dict[str, Any], reasons: list[str],
                         confirm: list[str]) -> None:
    d = evaluate(policies[DEMO], line("99991", "2024-06-01", "95", **fields))
    assert list(d.reason_codes) == reasons
    assert [lim.kind for lim in d.to_confirm] == confirm


@pytest.mark.parametrize(("units", "reasons"), [(0, ["ON_TELEHEALTH_TABLE"]), (4, ["ON_TELEHEALTH_TABLE"]),
                                                (5, ["UNITS_OVER_LIMIT"])])
def test_units_limit_edges(policies: dict[str, Policy], units: int, reasons: list[str]) -> None:
    for _ in range(2):  # cold, then from the cache
        assert list(evaluate(policies[DEMO], line("99992", "2024-06-01", "95", units=units)).reason_codes) == reasons


@pytest.mark.parametrize(("mods", "fields", "reasons", "confirm"), [
    (("93",), {"member_age": 9}, ["ON_TELEHEALTH_TABLE"], ["established-patient"]),
    (("93",), {"member_age": 9, "established_patient": True}, ["ON_TELEHEALTH_TABLE"], []),
    (("93",), {"member_age": 9, "established_patient": False}, ["ESTABLISHED_PATIENT_REQUIRED"], []),
    (("95",), {"member_age": 9, "established_patient": False}, ["ON_TELEHEALTH_TABLE"], []),  # audio-only limit
    (("95", "93"), {"member_age": 9, "established_patient": False}, ["CONFLICTING_MODIFIERS"], []),
])
def test_a_limit_applies_only_to_its_modalities(policies: dict[str, Policy], mods: tuple[str, ...],
                                                fields: dict[str, Any], reasons: list[str], confirm: list[str]) -> None:
    d = evaluate(policies[DEMO], line("99991", "2024-06-01", *mods, **fields))
    assert list(d.reason_codes) == reasons
    assert [lim.kind for lim in d.to_confirm] == confirm


@pytest.mark.parametrize(("ptype", "reasons", "confirm"), [("clinic", ["ON_TELEHEALTH_TABLE"], []),
                                                           ("physician", ["ON_TELEHEALTH_TABLE"], []),
                                                           ("fqhc", ["PROVIDER_TYPE_NOT_ALLOWED"], []),
                                                           (None, ["ON_TELEHEALTH_TABLE"], ["provider-type"])])
def test_provider_type_limit(policies: dict[str, Policy], ptype: str | None, reasons: list[str],
                             confirm: list[str]) -> None:
    d = evaluate(policies[DEMO], line("99991", "2025-06-01", "95", provider_type=ptype))
    assert list(d.reason_codes) == reasons
    assert [lim.kind for lim in d.to_confirm] == confirm


def test_open_age_bounds_say_any(tmp_path: Path) -> None:
    tree = read_tree(examples_dir() / "demo-policy")
    (age,) = [lim for lim in tree.codes["99991"]["periods"][0]["limits"] if lim["kind"] == "age"]
    del age["max_age"]
    policy = load_policy(write_tree(tree, tmp_path / "policy"))
    d = evaluate(policy, line("99991", "2024-06-01", "95", member_age=2))
    assert d.reasons[0].message.startswith("The member is 2; the period allows ages 3 to any.")
    assert evaluate(policy, line("99991", "2024-06-01", "95", member_age=130)).payable
    age["max_age"], age["min_age"] = 17, None
    del age["min_age"]
    policy = load_policy(write_tree(tree, tmp_path / "policy2"))
    assert evaluate(policy, line("99991", "2024-06-01", "95", member_age=0)).payable
    d = evaluate(policy, line("99991", "2024-06-01", "95", member_age=18))
    assert d.reasons[0].message.startswith("The member is 18; the period allows ages 0 to 17.")


def test_rcc_only_on_institutional_claims(policies: dict[str, Policy]) -> None:
    demo = policies[DEMO]
    assert evaluate(demo, line("T9991", "2024-06-01", "95", rcc="0100")).payable  # professional: no RCC rule
    assert evaluate(demo, line("T9991", "2024-06-01", "95", claim_type="institutional", rcc="0914")).payable
    d = evaluate(demo, line("99992", "2024-06-01", "95", claim_type="institutional"))  # a period without RCCs
    assert d.payable


# --- finding the period ---------------------------------------------------------------------------------------------

def test_find_period_names_the_neighbours(policies: dict[str, Policy]) -> None:
    view = policies[CMAP].views[policies[CMAP].latest.id]["97153"]
    first, second = view.periods
    day = dt.date.fromisoformat
    assert find_period(view, day("2019-12-31")) == (None, None, first)
    assert find_period(view, day("2020-03-18")) == (first, None, second)
    assert find_period(view, day("2023-05-11")) == (first, None, second)
    assert find_period(view, day("2023-05-12")) == (None, first, second)
    assert find_period(view, day("2025-12-25")) == (None, first, second)
    assert find_period(view, day("2025-12-26")) == (second, None, None)
    assert find_period(view, day("2099-01-01")) == (second, None, None)
    (only,) = policies[CMAP].views[policies[CMAP].latest.id]["H2019"].periods
    assert find_period(policies[CMAP].views[policies[CMAP].latest.id]["H2019"], day("2024-01-01")) == (None, only, None)


# --- the cache gives the reference decision -------------------------------------------------------------------------

def _grid(policy: Policy) -> list[ClaimLine]:
    days = sorted({d for cv in policy.views[policy.latest.id].values() for p in cv.periods
                   for d in (p.effective, p.effective - dt.timedelta(days=1), p.effective + dt.timedelta(days=40),
                             *((p.end, p.end + dt.timedelta(days=1)) if p.end else ()))}
                  # and either side of every day a dated rule of the program, or a release's coverage, changes
                  | {d + dt.timedelta(days=k) for d in (*policy.program.date_bounds(),
                                                         *(x for x in policy.complete_from.values() if x))
                     for k in (-1, 0)})
    codes = [*policy.codes, "90834"]
    out = []
    for i, (code, day) in enumerate(itertools.product(codes, days)):
        mods = [("95",), ("93",), ("GQ",), ("G0",), ("95", "93"), (), ("FR",), ("FR", "95")][i % 8]
        out.append(ClaimLine(code, day, mods, pos=["11", "02", "10", None][i % 4],
                             claim_type="institutional" if i % 5 == 0 else "professional",
                             rcc=["0900", "0100", None][i % 3], modality="audio-video" if i % 7 == 0 else None,
                             member_age=[None, 2, 9, 40][i % 4], provider_type=[None, "clinic", "dentist"][i % 3],
                             units=[None, 4, 6][i % 3], established_patient=[None, True, False][i % 3]))
    return out


@pytest.mark.parametrize("which", [CMAP, DEMO, "fixture"])
def test_the_cache_gives_the_reference_decision_in_any_order(policies: dict[str, Policy], which: str) -> None:
    policy = policies[which]
    lines = _grid(policy)
    for release in [r.id for r in policy.releases]:
        reference = [decide(policy, ln, release=release) for ln in lines]
        for order in (lines, lines[::-1], lines[1::2] + lines[::2]):
            for ln in order:
                want = reference[lines.index(ln)]
                assert evaluate(policy, ln, release=release) == want, ln


def test_one_slot_one_decision(policies: dict[str, Policy]) -> None:
    policy = policies[CMAP]
    for mods in (("95",), ("93",)):
        # the same slot (97153's 2025 period), three dates: no message names the date, so the cache
        # hands back one decision, equal to the one decide() computes afresh for each date
        found = [evaluate(policy, line("97153", day, *mods)) for day in ("2026-02-02", "2026-03-03", "2027-12-26")]
        for day, d in zip(("2026-02-02", "2026-03-03", "2027-12-26"), found, strict=True):
            assert d == decide(policy, line("97153", day, *mods))
            assert day not in d.reasons[0].message
        assert found[0] is found[1] is found[2]


def test_a_broken_limit_is_a_denial_not_a_condition_to_confirm(policies: dict[str, Policy]) -> None:
    demo = policies[DEMO]
    for probe in (line("99992", "2024-06-01", "95", units=5), line("99991", "2024-06-01", "95", member_age=40),
                  line("99991", "2025-06-01", "95", provider_type="dentist"),
                  line("99991", "2024-06-01", "93", member_age=9, established_patient=False)):
        for d in (decide(demo, probe), evaluate(demo, probe), evaluate(demo, probe)):
            assert not d.payable and d.to_confirm == ()


def test_the_cache_splits_slots_where_an_attestation_ends(policies: dict[str, Policy]) -> None:
    demo = policies[DEMO]  # DEMO_FIRST_YEAR applies from 2024-01-01 to 2024-12-31
    days = ["2024-12-29", "2024-12-30", "2024-12-31", "2025-01-01", "2025-01-02", "2025-01-03"]
    for order in (days, days[::-1]):
        fresh = dataclasses.replace(demo)  # a cache of its own for each order
        for day in order:
            d = evaluate(fresh, line("99992", day, "95"))
            assert d == decide(demo, line("99992", day, "95"))
            assert ("DEMO_FIRST_YEAR" in [a.id for a in d.attestations]) == (day <= "2024-12-31")
