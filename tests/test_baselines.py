"""The benchmark's plain-Python baseline decides as the interpreter does, so that its speed is a fair floor.

``benchmarks/run.py`` compares the engines against this baseline; a baseline that decided differently
(or less) would make every ratio meaningless. The peer engines (Cedar, ZEN) are checked against the
interpreter by the benchmark itself, on its latency sample, before their figures are reported.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cmap_policy import ClaimLine, load_policy
from cmap_policy.interpreter import decide
from cmap_policy.model import Policy
from cmap_policy.testing import synthetic_policy, write_tree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from baselines import Line, PlainPython  # noqa: E402

_POLICIES: dict[str, Policy] = {}


def _policy(name: str, tmp: Path) -> Policy:
    if name not in _POLICIES:
        if name == "bundled":
            _POLICIES[name] = load_policy()
        elif name == "demo":
            _POLICIES[name] = load_policy(ROOT / "examples" / "demo-policy")
        else:
            _POLICIES[name] = load_policy(write_tree(synthetic_policy(40, seed=3), tmp / "policy"))
    return _POLICIES[name]


@st.composite
def lines(draw: st.DrawFn, policy: Policy) -> ClaimLine:
    program = policy.program
    return ClaimLine(
        draw(st.sampled_from([*policy.codes, "99999", "A0001"])),
        draw(st.dates(dt.date(2017, 1, 1), dt.date(2027, 12, 31))),
        tuple(draw(st.lists(st.sampled_from([*program.modifiers, "25"]), max_size=3, unique=True))),
        draw(st.sampled_from([None, "11", *program.places_of_service])),
        draw(st.sampled_from(["professional", "institutional"])),
        draw(st.sampled_from([None, "0510", "0900", "0914"])),
        draw(st.sampled_from([None, *program.modalities])),
        draw(st.sampled_from([None, 2, 15, 40, 80])),
        draw(st.sampled_from([None, "clinic", "physician", "fqhc"])),
        draw(st.sampled_from([None, 1, 3, 12])),
        draw(st.sampled_from([None, True, False])),
    )


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["bundled", "demo", "synthetic"]), st.data())
def test_the_plain_python_baseline_decides_every_line_as_the_interpreter(name: str, data: st.DataObject) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        policy = _policy(name, Path(tmp))
    release = data.draw(st.sampled_from([r.id for r in policy.releases]))
    plain = PlainPython(policy, release)
    for ln in data.draw(st.lists(lines(policy), min_size=1, max_size=40)):
        d = decide(policy, ln, release=release)
        assert plain.decide(Line.of(ln)) == (d.outcome.value, d.reason_codes, d.period.id if d.period else None), ln
