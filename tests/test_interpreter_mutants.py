"""Example tests that pin down what the mutation run (docs/testing.md) found unchecked, and regressions the
Hypothesis properties found: each asserts one exact behaviour of the interpreter or the meaning checks."""

from __future__ import annotations

from pathlib import Path

from cmap_policy import load_policy
from cmap_policy.interpreter import evaluate
from cmap_policy.testing import PolicyTree, write_tree
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
    assert "(95, FR, GT)" in not_indicated and "(93, FQ)" in not_indicated


def test_limits_to_confirm_do_not_follow_the_order_of_limits_in_the_file(tmp_path: Path) -> None:
    tree = fixture_tree()
    a = load_policy(write_tree(tree, tmp_path / "a" / "policy"))
    b = load_policy(write_tree(_reversed_lists(tree), tmp_path / "b" / "policy"))
    probe = line("99999", "2026-03-02", "95")  # no age, provider type or units: three limits to confirm
    kinds = [lim.kind for lim in evaluate(a, probe).to_confirm]
    assert kinds == ["age", "provider-type", "units-per-day"]
    assert [lim.kind for lim in evaluate(b, probe).to_confirm] == kinds
