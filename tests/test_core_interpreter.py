"""Every reason code, asserted on the decision it belongs to."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmap_policy import Outcome, evaluate, load_policy
from cmap_policy.errors import UnknownReleaseError
from cmap_policy.reasons import REASONS
from cmap_policy.testing import write_tree

from .helpers import fixture_tree, line


@pytest.fixture(scope="module")
def policy():
    return load_policy()


@pytest.fixture(scope="module")
def fixture_policy(tmp_path_factory: pytest.TempPathFactory):
    return load_policy(write_tree(fixture_tree(), tmp_path_factory.mktemp("fixture") / "policy"))


def codes(decision) -> list[str]:
    return [r.code for r in decision.reasons]


def test_audio_only_code_is_payable_by_telephone(policy):
    d = evaluate(policy, line("T1016", "2026-01-05", "93", pos="11"))
    assert d.outcome is Outcome.PAYABLE
    assert codes(d) == ["ON_TELEHEALTH_TABLE"]
    assert d.period is not None and d.period.id == "T1016@2025-12-26"
    assert d.modality == "audio-only"
    assert d.reasons[0].rule == "policy/codes/T1016.json#T1016@2025-12-26"
    assert d.reasons[0].citation is not None and d.reasons[0].citation.source.id == "TABLE-2025-12-26"


def test_video_only_code_is_not_payable_by_telephone(policy):
    d = evaluate(policy, line("97153", "2026-01-05", "93"))
    assert d.outcome is Outcome.NOT_PAYABLE
    assert codes(d) == ["MODALITY_NOT_ALLOWED"]
    assert "audio-video" in d.reasons[0].message and "audio-only" in d.reasons[0].message
    assert d.reasons[0].carc == "4"
    assert d.period is not None and d.period.id == "97153@2025-12-26"


def test_unlisted_code(policy):
    d = evaluate(policy, line("90834", "2024-03-01", "95", pos="11"))
    assert d.outcome is Outcome.NOT_PAYABLE
    assert codes(d) == ["NOT_ON_TELEHEALTH_TABLE"]
    assert d.period is None
    assert d.reasons[0].carc == REASONS["NOT_ON_TELEHEALTH_TABLE"].carc


def test_not_permitted_is_its_own_reason(policy):
    d = evaluate(policy, line("97156", "2026-01-05", "95"))
    assert d.outcome is Outcome.NOT_PAYABLE
    assert codes(d) == ["NOT_PERMITTED_VIA_TELEHEALTH"]
    assert d.reasons[0].citation is not None and d.reasons[0].citation.source.secondary


def test_outside_dates_names_the_nearest_periods(policy):
    d = evaluate(policy, line("97153", "2024-03-01", "95"))
    assert codes(d) == ["OUTSIDE_EFFECTIVE_DATES"]
    msg = d.reasons[0].message
    assert "ended 2023-05-11" in msg and "listed from 2025-12-26" in msg
    before = evaluate(policy, line("90791", "2025-12-25", "95"))
    assert codes(before) == ["OUTSIDE_EFFECTIVE_DATES"]
    assert "listed from 2025-12-26" in before.reasons[0].message
    after = evaluate(policy, line("H2019", "2023-05-12", "95"))
    assert "ended 2023-05-11" in after.reasons[0].message


def test_period_boundaries_are_inclusive(policy):
    assert evaluate(policy, line("H2019", "2020-03-18", "95")).payable
    assert evaluate(policy, line("H2019", "2023-05-11", "95")).payable
    assert not evaluate(policy, line("H2019", "2020-03-17", "95")).payable
    assert not evaluate(policy, line("H2019", "2023-05-12", "95")).payable


def test_not_a_telehealth_line(policy):
    d = evaluate(policy, line("90791", "2026-02-02", pos="11"))
    assert d.outcome is Outcome.NOT_TELEHEALTH
    assert codes(d) == ["NOT_A_TELEHEALTH_LINE"]
    other_modifier = evaluate(policy, line("90791", "2026-02-02", "25", pos="11"))
    assert other_modifier.outcome is Outcome.NOT_TELEHEALTH


def test_conflicting_modifiers(policy):
    d = evaluate(policy, line("T1016", "2026-01-05", "95", "93"))
    assert codes(d) == ["CONFLICTING_MODIFIERS"]
    assert d.modality is None
    stated = evaluate(policy, line("T1016", "2026-01-05", "95", modality="audio-only"))
    assert codes(stated) == ["CONFLICTING_MODIFIERS"]


def test_modality_not_indicated(policy):
    d = evaluate(policy, line("90791", "2026-02-02", "G0"))
    assert codes(d) == ["MODALITY_NOT_INDICATED"]


def test_telehealth_pos_is_not_accepted_and_all_reasons_are_given(policy):
    d = evaluate(policy, line("90791", "2026-02-02", pos="02"))
    assert codes(d) == ["MODALITY_NOT_INDICATED", "POS_NOT_ACCEPTED"]
    assert d.reasons[1].carc == "58"
    unlisted = evaluate(policy, line("90834", "2026-02-02", "95", "93", pos="10"))
    assert codes(unlisted) == ["NOT_ON_TELEHEALTH_TABLE", "CONFLICTING_MODIFIERS", "POS_NOT_ACCEPTED"]


def test_audio_only_in_2021_needs_an_established_patient(policy):
    ok = evaluate(policy, line("97153", "2021-06-01", "93", established_patient=True))
    assert ok.payable
    new = evaluate(policy, line("97153", "2021-06-01", "93", established_patient=False))
    assert codes(new) == ["ESTABLISHED_PATIENT_REQUIRED"]
    unknown = evaluate(policy, line("97153", "2021-06-01", "93"))
    assert unknown.payable
    assert [lim.kind for lim in unknown.to_confirm] == ["established-patient"]
    video = evaluate(policy, line("97153", "2021-06-01", "95", established_patient=False))
    assert video.payable and video.to_confirm == ()


def test_bitemporal_release(policy):
    # As published by PB 2020-14, the pandemic rows had no end yet.
    early = evaluate(policy, line("H2019", "2024-03-01", "95"), release="PB-2020-14")
    assert early.payable and early.release == "PB-2020-14"
    assert early.period is not None and early.period.end is None
    later = evaluate(policy, line("H2019", "2024-03-01", "95"), release="PB-2023-38")
    assert codes(later) == ["OUTSIDE_EFFECTIVE_DATES"]
    # 90791 was not on the table as published before 2025-12-26.
    assert codes(evaluate(policy, line("90791", "2026-02-02", "95"), release="PB-2024-81")) == [
        "NOT_ON_TELEHEALTH_TABLE"]
    with pytest.raises(UnknownReleaseError, match="unknown release"):
        evaluate(policy, line("90791", "2026-02-02", "95"), release="NOPE")


def test_attestations_follow_pb_2023_38(policy):
    d = evaluate(policy, line("T1016", "2026-01-05", "93"))
    ids = {a.id for a in d.attestations}
    assert {"INFORMED_CONSENT", "IDENTITY_VERIFIED", "MEDICAL_NECESSITY", "AUDIO_ONLY_CONDITIONS"} <= ids
    video = evaluate(policy, line("T1016", "2026-01-05", "95"))
    assert "AUDIO_ONLY_CONDITIONS" not in {a.id for a in video.attestations}
    pandemic = evaluate(policy, line("H2019", "2021-01-05", "95"))
    assert pandemic.attestations == ()


def test_decision_carries_release_and_hash(policy):
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
def test_fixture_limits_and_rccs(fixture_policy, kwargs, expected):
    d = evaluate(fixture_policy, line("99999", "2026-03-02", "95", **kwargs))
    if expected:
        assert codes(d) == expected
        assert d.outcome is Outcome.NOT_PAYABLE
    else:
        assert d.payable and d.to_confirm == ()


def test_fixture_unknown_fields_become_conditions_to_confirm(fixture_policy):
    d = evaluate(fixture_policy, line("99999", "2026-03-02", "95"))
    assert d.payable
    assert sorted(lim.kind for lim in d.to_confirm) == ["age", "provider-type", "units-per-day"]


def test_fixture_modifier_not_for_claim_type(fixture_policy):
    d = evaluate(fixture_policy, line("99999", "2026-03-02", "FQ", established_patient=True))
    assert codes(d) == ["MODIFIER_NOT_FOR_CLAIM_TYPE"]
    ok = evaluate(fixture_policy, line("99999", "2026-03-02", "FQ", established_patient=True,
                                       claim_type="institutional", rcc="0914"))
    assert ok.payable


def test_every_reason_code_is_exercised_here():
    # Keeps this file honest: each reason in the catalogue has a test above that asserts it.
    text = Path(__file__).read_text(encoding="utf-8")
    missing = [code for code in REASONS if f'"{code}"' not in text]
    assert missing == []
