"""Every reason code, asserted on the decision it belongs to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cmap_policy import Decision, Outcome, Policy, evaluate, load_policy
from cmap_policy.errors import UnknownReleaseError
from cmap_policy.reasons import REASONS
from cmap_policy.testing import bundled_tree, write_tree

from .helpers import FIXTURE_SOURCE, fixture_tree, line


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def fixture_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    tree = fixture_tree()
    pos02 = next(p for p in tree.program["places_of_service"] if p["code"] == "02")
    pos02["guidance"].append({"kind": "deny", "effective": "2026-03-01", "text": "Fixture: not accepted.",
                              "citation": {"source": "FIXTURE"}})
    return load_policy(write_tree(tree, tmp_path_factory.mktemp("fixture") / "policy"))


@pytest.fixture(scope="module")
def complete_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    """The bundled policy with a release that holds the whole table from 2025-01-01 (made up, as an import of
    the official spreadsheet would be)."""
    tree = bundled_tree()
    tree.program["sources"].append(dict(FIXTURE_SOURCE))
    tree.releases["releases"].append({"id": "FIX-WHOLE", "published": "2026-03-01", "effective": "2026-03-01",
                                      "implements": ["FIXTURE"], "summary": "Fixture: the whole table",
                                      "coverage": "complete", "covers_from": "2025-01-01"})
    return load_policy(write_tree(tree, tmp_path_factory.mktemp("whole") / "policy"))


def codes(decision: Decision) -> list[str]:
    return [r.code for r in decision.reasons]


def test_audio_only_code_is_payable_by_telephone(policy: Policy) -> None:
    d = evaluate(policy, line("T1016", "2026-01-05", "93", pos="11"))
    assert d.outcome is Outcome.PAYABLE
    assert codes(d) == ["ON_TELEHEALTH_TABLE"]
    assert d.period is not None and d.period.id == "T1016@2025-12-26"
    assert d.modality == "audio-only"
    assert d.reasons[0].rule == "policy/codes/T1016.json#T1016@2025-12-26"
    assert d.reasons[0].citation is not None and d.reasons[0].citation.source.id == "TABLE-2025-12-26"


def test_video_only_code_is_not_payable_by_telephone(policy: Policy) -> None:
    d = evaluate(policy, line("97153", "2026-01-05", "93"))
    assert d.outcome is Outcome.NOT_PAYABLE
    assert codes(d) == ["MODALITY_NOT_ALLOWED"]
    assert "audio-video" in d.reasons[0].message and "audio-only" in d.reasons[0].message
    assert d.reasons[0].carc == "4"
    assert d.period is not None and d.period.id == "97153@2025-12-26"


def test_a_code_the_sources_do_not_name_is_undetermined_not_denied(policy: Policy) -> None:
    d = evaluate(policy, line("90834", "2024-03-01", "95", pos="11"))
    assert d.outcome is Outcome.UNDETERMINED
    assert codes(d) == ["CODE_NOT_IN_DATA"]
    assert d.period is None
    assert d.reasons[0].carc is None and d.reasons[0].kind == "undetermined"
    assert "official CMAP Telehealth Table" in d.reasons[0].message
    assert d.reasons[0].citation is not None and d.reasons[0].citation.source.id == "CMAP-TABLE"
    assert d.reasons[0].citation.source.url.endswith("Telehealth_Table.xlsx")


def test_a_complete_release_denies_an_unlisted_code(complete_policy: Policy) -> None:
    d = evaluate(complete_policy, line("90834", "2026-04-01", "95", pos="11"))
    assert d.outcome is Outcome.NOT_PAYABLE
    assert codes(d) == ["NOT_ON_TELEHEALTH_TABLE"]
    assert d.reasons[0].carc == REASONS["NOT_ON_TELEHEALTH_TABLE"].carc == "204"
    # before the date from which the release holds the whole table, it is still undetermined
    assert codes(evaluate(complete_policy, line("90834", "2024-06-01", "95"))) == ["CODE_NOT_IN_DATA"]


def test_not_permitted_is_its_own_reason(policy: Policy) -> None:
    d = evaluate(policy, line("97156", "2026-01-05", "95"))
    assert d.outcome is Outcome.NOT_PAYABLE
    assert codes(d) == ["NOT_PERMITTED_VIA_TELEHEALTH"]
    assert d.reasons[0].citation is not None and d.reasons[0].citation.source.secondary


def test_a_date_no_public_source_covers_is_undetermined(policy: Policy) -> None:
    d = evaluate(policy, line("97153", "2024-03-01", "95"))
    assert codes(d) == ["DATE_NOT_IN_DATA"] and d.outcome is Outcome.UNDETERMINED
    msg = d.reasons[0].message
    assert "from 2020-03-18 to 2023-05-11" in msg and "in force by 2025-12-26" in msg and "not known" in msg
    before = evaluate(policy, line("90791", "2024-06-01", "95", pos="11"))
    assert codes(before) == ["DATE_NOT_IN_DATA"] and before.reasons[0].carc is None
    after = evaluate(policy, line("H2019", "2023-05-12", "95"))
    assert codes(after) == ["DATE_NOT_IN_DATA"] and "to 2023-05-11" in after.reasons[0].message


def test_outside_dates_is_a_denial_only_where_the_whole_table_is_known(complete_policy: Policy) -> None:
    d = evaluate(complete_policy, line("H2019", "2026-04-01", "95"))
    assert codes(d) == ["OUTSIDE_EFFECTIVE_DATES"] and d.outcome is Outcome.NOT_PAYABLE
    assert "ended 2023-05-11" in d.reasons[0].message and d.reasons[0].carc == "204"
    # before a row whose real start is not known, even a complete release cannot say
    assert codes(evaluate(complete_policy, line("90791", "2025-06-01", "95"))) == ["DATE_NOT_IN_DATA"]


def test_period_boundaries_are_inclusive(policy: Policy) -> None:
    assert evaluate(policy, line("H2019", "2020-03-18", "95")).payable
    assert evaluate(policy, line("H2019", "2023-05-11", "95")).payable
    assert not evaluate(policy, line("H2019", "2020-03-17", "95")).payable
    assert not evaluate(policy, line("H2019", "2023-05-12", "95")).payable


def test_not_a_telehealth_line(policy: Policy) -> None:
    d = evaluate(policy, line("90791", "2026-02-02", pos="11"))
    assert d.outcome is Outcome.NOT_TELEHEALTH
    assert codes(d) == ["NOT_A_TELEHEALTH_LINE"]
    other_modifier = evaluate(policy, line("90791", "2026-02-02", "25", pos="11"))
    assert other_modifier.outcome is Outcome.NOT_TELEHEALTH


def test_conflicting_modifiers(policy: Policy) -> None:
    d = evaluate(policy, line("T1016", "2026-01-05", "95", "93"))
    assert codes(d) == ["CONFLICTING_MODIFIERS"]
    assert d.modality is None
    stated = evaluate(policy, line("T1016", "2026-01-05", "95", modality="audio-only"))
    assert codes(stated) == ["CONFLICTING_MODIFIERS"]


def test_modality_not_indicated(policy: Policy) -> None:
    d = evaluate(policy, line("90791", "2026-02-02", "G0"))
    assert codes(d) == ["MODALITY_NOT_INDICATED"] and d.outcome is Outcome.UNDETERMINED
    assert "95, GT" in d.reasons[0].message and "93, FQ" in d.reasons[0].message
    both = evaluate(policy, line("T1016", "2026-02-02", "G0"))
    assert both.payable and codes(both) == ["ON_TELEHEALTH_TABLE", "MODIFIER_EXPECTED"]
    assert both.reasons[1].kind == "warn" and both.reasons[1].carc is None


def test_pos_guidance_warns_and_all_reasons_are_given(policy: Policy) -> None:
    d = evaluate(policy, line("90791", "2026-02-02", pos="02"))
    assert codes(d) == ["MODALITY_NOT_INDICATED", "POS_GUIDANCE"]
    assert d.reasons[1].carc is None and d.reasons[1].kind == "warn"
    assert "GT or 95" in d.reasons[1].message
    paid = evaluate(policy, line("90791", "2026-02-02", "95", pos="10"))
    assert paid.payable and codes(paid) == ["ON_TELEHEALTH_TABLE", "POS_GUIDANCE"]
    unlisted = evaluate(policy, line("90834", "2026-02-02", "95", "93", pos="10"))
    assert codes(unlisted) == ["CODE_NOT_IN_DATA", "CONFLICTING_MODIFIERS", "POS_GUIDANCE"]
    assert unlisted.outcome is Outcome.NOT_PAYABLE  # a denial outweighs what the data cannot say
    # the guidance is dated: the public reading is of the table dated 12-26-25
    assert codes(evaluate(policy, line("97153", "2022-06-01", "95", pos="10"))) == ["ON_TELEHEALTH_TABLE"]


def test_a_source_that_denies_a_place_of_service_denies(fixture_policy: Policy) -> None:
    d = evaluate(fixture_policy, line("99999", "2026-03-02", "95", pos="02", member_age=10, provider_type="clinic",
                                      units=1))
    assert codes(d) == ["POS_NOT_ACCEPTED", "POS_GUIDANCE"] and d.reasons[0].carc == "58"


def test_codes_and_modifiers_exist_from_their_dates(policy: Policy) -> None:
    d = evaluate(policy, line("97153", "2021-06-01", "93"))
    assert codes(d) == ["ERA_UNDETERMINED", "MODIFIER_NOT_IN_EFFECT", "MODALITY_UNDETERMINED"]
    assert d.outcome is Outcome.NOT_PAYABLE
    assert d.reasons[1].carc == "182" and "2022-01-01" in d.reasons[1].message
    pos = evaluate(policy, line("97153", "2021-06-01", "95", pos="10"))
    assert codes(pos) == ["POS_NOT_IN_EFFECT"] and pos.reasons[0].carc == "58"
    assert evaluate(policy, line("97153", "2022-01-01", "95", pos="10")).payable


def test_pandemic_audio_only_is_undetermined_not_assumed(policy: Policy) -> None:
    d = evaluate(policy, line("97153", "2022-06-01", "93", established_patient=False))
    # with what the sources say of audio-only in 2022 (Public Act 21-9; PB 2020-14's limited services)
    assert codes(d) == ["ERA_UNDETERMINED", "MODALITY_UNDETERMINED"] and d.outcome is Outcome.UNDETERMINED
    assert "Public Act 21-9" in d.reasons[0].message and d.reasons[0].carc is None
    assert d.period is not None and d.period.undetermined_modalities == ("audio-only",)
    assert d.to_confirm == ()
    video = evaluate(policy, line("97153", "2021-06-01", "95", established_patient=False))
    assert video.payable and video.to_confirm == ()


def test_fr_describes_the_supervisor_not_the_member(policy: Policy) -> None:
    assert evaluate(policy, line("H0031", "2026-02-02", "FR")).outcome is Outcome.NOT_TELEHEALTH
    with_95 = evaluate(policy, line("H0031", "2026-02-02", "FR", "95"))
    assert with_95.payable and with_95.modality == "audio-video"


def test_bitemporal_release(policy: Policy) -> None:
    # As published by PB 2020-14, the pandemic rows had no end yet.
    early = evaluate(policy, line("H2019", "2024-03-01", "95"), release="PB-2020-14")
    assert early.payable and early.release == "PB-2020-14"
    assert early.period is not None and early.period.end is None
    later = evaluate(policy, line("H2019", "2024-03-01", "95"), release="PB-2023-38")
    assert codes(later) == ["DATE_NOT_IN_DATA"]
    # no source named 90791 before the reading of the table dated 2025-12-26
    assert codes(evaluate(policy, line("90791", "2026-02-02", "95"), release="PB-2024-81")) == [
        "CODE_NOT_IN_DATA"]
    with pytest.raises(UnknownReleaseError, match="unknown release"):
        evaluate(policy, line("90791", "2026-02-02", "95"), release="NOPE")


def test_attestations_follow_pb_2023_38(policy: Policy) -> None:
    d = evaluate(policy, line("T1016", "2026-01-05", "93"))
    ids = {a.id for a in d.attestations}
    assert {"INFORMED_CONSENT", "IDENTITY_VERIFIED", "MEDICAL_NECESSITY", "AUDIO_ONLY_CONDITIONS"} <= ids
    video = evaluate(policy, line("T1016", "2026-01-05", "95"))
    assert "AUDIO_ONLY_CONDITIONS" not in {a.id for a in video.attestations}
    pandemic = evaluate(policy, line("H2019", "2021-01-05", "95"))
    assert {a.id for a in pandemic.attestations} == {"COVID_CONSENT", "COVID_CONDITIONS"}
    eo_7g = evaluate(policy, line("H2019", "2020-04-23", modality="audio-only"))
    assert "EO_7G_ESTABLISHED_PATIENT" in {a.id for a in eo_7g.attestations}
    eo_7ff = evaluate(policy, line("H2019", "2020-04-24", modality="audio-only"))
    assert "EO_7G_ESTABLISHED_PATIENT" not in {a.id for a in eo_7ff.attestations}


def test_decision_carries_release_and_hash(policy: Policy) -> None:
    d = evaluate(policy, line("T1016", "2026-01-05", "93"))
    assert d.release == policy.latest.id
    assert d.policy_hash == policy.hash and len(policy.hash) == 64
    data = d.as_dict()
    assert data["outcome"] == "payable" and data["period"] == "T1016@2025-12-26"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"claim_type": "institutional", "rcc": "0900", "member_age": 10, "provider_type": "clinic", "units": 4},
         []),
        ({"claim_type": "institutional"}, ["RCC_REQUIRED"]),
        ({"claim_type": "institutional", "rcc": "0100"}, ["RCC_NOT_ALLOWED"]),
        ({"member_age": 21}, ["AGE_OUTSIDE_LIMIT"]),
        ({"member_age": 2}, ["AGE_OUTSIDE_LIMIT"]),
        ({"provider_type": "dentist"}, ["PROVIDER_TYPE_NOT_ALLOWED"]),
        ({"units": 5}, ["UNITS_OVER_LIMIT"]),
        ({"member_age": 30, "units": 9, "provider_type": "x"},
         ["AGE_OUTSIDE_LIMIT", "PROVIDER_TYPE_NOT_ALLOWED", "UNITS_OVER_LIMIT"]),
    ],
)
def test_fixture_limits_and_rccs(fixture_policy: Policy, kwargs: dict[str, Any], expected: list[str]) -> None:
    d = evaluate(fixture_policy, line("99999", "2026-03-02", "95", **kwargs))
    if expected:
        assert codes(d) == expected
        assert d.outcome is Outcome.NOT_PAYABLE
    else:
        assert d.payable and d.to_confirm == ()


def test_fixture_unknown_fields_become_conditions_to_confirm(fixture_policy: Policy) -> None:
    d = evaluate(fixture_policy, line("99999", "2026-03-02", "95"))
    assert d.payable
    assert sorted(lim.kind for lim in d.to_confirm) == ["age", "provider-type", "units-per-day"]


def test_fixture_established_patient_for_audio_only(fixture_policy: Policy) -> None:
    new = evaluate(fixture_policy, line("99999", "2026-03-02", "93", established_patient=False, member_age=10,
                                        provider_type="clinic", units=1))
    assert codes(new) == ["ESTABLISHED_PATIENT_REQUIRED"] and new.reasons[0].carc == "272"
    video = evaluate(fixture_policy, line("99999", "2026-03-02", "95", established_patient=False, member_age=10,
                                          provider_type="clinic", units=1))
    assert video.payable


def test_fixture_modifier_not_for_claim_type(fixture_policy: Policy) -> None:
    d = evaluate(fixture_policy, line("99999", "2026-03-02", "FQ", established_patient=True))
    assert codes(d) == ["MODIFIER_NOT_FOR_CLAIM_TYPE"]
    ok = evaluate(fixture_policy, line("99999", "2026-03-02", "FQ", established_patient=True,
                                       claim_type="institutional", rcc="0914"))
    assert ok.payable


def test_every_reason_code_is_exercised_here() -> None:
    # Keeps this file honest: each reason in the catalogue has a test above that asserts it.
    text = Path(__file__).read_text(encoding="utf-8")
    missing = [code for code in REASONS if f'"{code}"' not in text]
    assert missing == []


def test_era_rules_speak_of_every_code_on_their_dates(policy: Policy) -> None:
    # before the emergency, live video was not paid, whatever the code (listed or not)
    for code in ("97153", "99213"):
        d = evaluate(policy, line(code, "2020-03-12", "GT"))
        assert "NOT_PAID_IN_ERA" in codes(d) and d.outcome is Outcome.NOT_PAYABLE, code
        assert next(r for r in d.reasons if r.code == "NOT_PAID_IN_ERA").carc == "204"
    assert codes(evaluate(policy, line("99213", "2020-03-13", "GT"))) == ["CODE_NOT_IN_DATA"]
    # a category without codes (e-consults in 2019) explains an undetermined line and denies nothing
    d = evaluate(policy, line("99451", "2019-06-03", "GQ"))
    assert codes(d) == ["CODE_NOT_IN_DATA", "ERA_UNDETERMINED"] and "e-consults" in d.reasons[1].message
    # a telephone line before the emergency: the age on the line decides what it can
    assert codes(evaluate(policy, line("99213", "2019-06-03", modality="audio-only", member_age=19))) == [
        "CODE_NOT_IN_DATA", "AGE_OUTSIDE_LIMIT"]
    young = evaluate(policy, line("99213", "2019-06-03", modality="audio-only"))
    assert codes(young) == ["CODE_NOT_IN_DATA", "ERA_UNDETERMINED"] and [lim.kind for lim in young.to_confirm] == [
        "age"]
    # PB 2020-14 and Executive Order 7G: audio-only for established patients only, until 2020-04-23
    assert codes(evaluate(policy, line("99213", "2020-04-23", modality="audio-only", established_patient=False))) \
        == ["CODE_NOT_IN_DATA", "ESTABLISHED_PATIENT_REQUIRED"]
    assert codes(evaluate(policy, line("99213", "2020-04-24", modality="audio-only", established_patient=False))) \
        == ["CODE_NOT_IN_DATA", "ERA_UNDETERMINED"]
