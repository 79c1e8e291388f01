"""The one timeline of a code and the one slot of a line (``cmap_policy.timeline``), and the one home of the caches.

Each reading of the timeline is checked against the interpreter's own bisect (``find_period``, ``known_gap``,
``holds_whole_table``) day by day around every boundary, on the CMAP policy, the demo policy and SYNTHETIC
policies; the slot against ``decide``: lines with one slot get one decision.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from cmap_policy import caches, load_policy
from cmap_policy.interpreter import decide, evaluate
from cmap_policy.model import ClaimLine, Policy
from cmap_policy.resources import examples_dir
from cmap_policy.testing import synthetic_policy, write_tree
from cmap_policy.timeline import (
    Slots,
    Span,
    Stretch,
    cells,
    cut_offs,
    find_period,
    known_gap,
    row_cuts,
    spans,
    stretches,
)

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> list[Policy]:
    out = [load_policy(), load_policy(examples_dir() / "demo-policy")]
    for seed in (1, 2):
        root = tmp_path_factory.mktemp(f"synthetic{seed}") / "policy"
        out.append(load_policy(write_tree(synthetic_policy(60, seed=seed), root)))
    return out


def _probe_days(policy: Policy, release: str, code: str) -> list[dt.date]:
    """Either side of every day the code's rows or the release's cut-offs change, and far before and after."""
    view = policy.views[release].get(code)
    cuts = row_cuts(view.periods if view else ()) | set(cut_offs(policy, release))
    return sorted({d + k * DAY for d in cuts for k in (-1, 0, 1)} | {dt.date(1990, 1, 1), dt.date(2090, 1, 1)})


def _within(first: dt.date | None, last: dt.date | None, day: dt.date) -> bool:
    return (first is None or first <= day) and (last is None or day <= last)


def _stretch_at(line: tuple[Stretch, ...], day: dt.date) -> Stretch:
    (found,) = [s for s in line if _within(s.first, s.last, day)]
    return found


def _span_at(timeline: tuple[Span, ...], day: dt.date) -> Span:
    (found,) = [s for s in timeline if _within(s.start, s.end, day)]
    return found


def test_stretches_tile_the_day_line_and_agree_with_find_period(policies: list[Policy]) -> None:
    checked = 0
    for policy in policies:
        for rel in policy.releases:
            for code, view in policy.views[rel.id].items():
                line = stretches(view)
                assert line[0].first is None and line[-1].last is None
                for a, b in itertools.pairwise(line):  # no hole, no overlap
                    assert a.last is not None and b.first == a.last + DAY
                for day in _probe_days(policy, rel.id, code):
                    s = _stretch_at(line, day)
                    period, before, after = find_period(view, day)
                    assert s.period is period, (code, day)
                    if period is None:
                        assert (s.before, s.after) == (before, after), (code, day)
                    checked += 1
    assert checked > 1000


def test_spans_say_known_exactly_where_the_interpreter_does(policies: list[Policy]) -> None:
    for policy in policies:
        for rel in policy.releases:
            for code in [*policy.views[rel.id], "ZZ999"]:
                view = policy.views[rel.id].get(code)
                timeline = spans(policy, code, rel.id)
                for day in _probe_days(policy, rel.id, code):
                    s = _span_at(timeline, day)
                    whole = policy.holds_whole_table(rel.id, day)
                    if view is None:
                        assert s.period is None and s.known == whole
                        continue
                    period, before, after = find_period(view, day)
                    assert s.period is period
                    if period is None:
                        assert s.known == known_gap(before, after, whole), (code, day)


def test_a_gap_is_split_only_where_its_known_state_changes(policies: list[Policy]) -> None:
    for policy in policies:
        for rel in policy.releases:
            for code in policy.views[rel.id]:
                timeline = spans(policy, code, rel.id)
                for a, b in itertools.pairwise(timeline):
                    assert not (a.period is None and b.period is None and a.known == b.known), (code, a, b)


def test_cells_start_at_every_cut_and_tile_the_day_line() -> None:
    cuts = {dt.date(2020, 3, 1), dt.date(2021, 1, 1), dt.date(2020, 3, 1) + DAY}
    found = cells(cuts)
    assert [c.first for c in found] == [None, *sorted(cuts)]
    assert found[0].last == found[0].day == dt.date(2020, 2, 29)
    assert found[-1].last is None and found[-1].day == dt.date(2021, 1, 1)
    for a, b in itertools.pairwise(found):
        assert a.last is not None and b.first == a.last + DAY
        assert a.first is None or a.first == a.day  # a cell but the first is decided on its first day
    assert len(cells(())) == 1 and cells(())[0].first is None and cells(())[0].last is None


def test_cut_offs_are_the_programs_dated_rules_and_where_the_release_holds_the_whole_table(
        policies: list[Policy]) -> None:
    for policy in policies:
        for rel in policy.releases:
            whole = policy.complete_from.get(rel.id)
            want = set(policy.program.date_bounds()) | ({whole} if whole else set())
            assert set(cut_offs(policy, rel.id)) == want
            assert list(cut_offs(policy, rel.id)) == sorted(want)


def _lines(policy: Policy, release: str) -> list[ClaimLine]:
    """A few line fronts and limit fields, on every probe day of some codes (and of one no release lists)."""
    out = []
    for code in [*list(policy.views[release])[:25], "ZZ999"]:
        for day in _probe_days(policy, release, code):
            for k in range(6):
                out.append(ClaimLine(code, day, [("95",), ("93",), (), ("FR", "95"), ("95", "93")][k % 5],
                                     pos=["02", "10", None, "11"][k % 4],
                                     claim_type="institutional" if k % 3 == 0 else "professional",
                                     rcc=["0900", None, "0100"][k % 3], modality=[None, "audio-only"][k % 2],
                                     member_age=[None, 2, 40][k % 3], provider_type=[None, "clinic", "x"][k % 3],
                                     units=[None, 1, 99][k % 3], established_patient=[None, True, False][k % 3]))
    return out


def test_lines_with_one_slot_get_one_decision(policies: list[Policy]) -> None:
    shared = 0
    for policy in policies:
        slots = Slots(policy)
        for rel in policy.releases[-2:]:
            seen: dict[tuple[object, ...], tuple[ClaimLine, object]] = {}
            for ln in _lines(policy, rel.id):
                key = slots.key(rel.id, ln)
                d = decide(policy, ln, release=rel.id)
                if key in seen:
                    shared += 1
                    assert d == seen[key][1], (seen[key][0], ln)
                else:
                    seen[key] = (ln, d)
    assert shared > 100  # the slot is coarser than the line: many lines share one


def test_the_slot_changes_at_a_cut_off(policies: list[Policy]) -> None:
    policy = policies[1]  # the demo: an attestation in force for 2024 only
    slots = Slots(policy)
    rel = policy.latest.id
    for day in cut_offs(policy, rel):
        before = ClaimLine("99992", day - DAY, ("95",))
        on = ClaimLine("99992", day, ("95",))
        assert slots.key(rel, before) != slots.key(rel, on)


def test_every_cache_has_its_bound_and_clear_all_empties_them(policies: list[Policy]) -> None:
    policy = policies[1]
    evaluate(policy, ClaimLine("99992", dt.date(2024, 6, 1), ("95",)))
    assert caches.sizes()["interpreter.decisions"] >= 1 and caches.sizes()["interpreter.policies"] >= 1
    caches.clear_all()
    assert all(n == 0 for n in caches.sizes().values())
    small = caches.Cache[int, int]("spark.engines")
    for i in range(caches.BOUNDS["spark.engines"] * 3):
        assert small.put(i, i * 2) == i * 2
        assert len(small) <= caches.BOUNDS["spark.engines"]
        assert small[i] == i * 2
    with pytest.raises(KeyError, match="no cache named"):
        caches.Cache("nowhere")


def test_a_decision_after_clear_all_is_the_same(policies: list[Policy]) -> None:
    policy = policies[0]
    ln = ClaimLine("97153", dt.date(2026, 1, 5), ("93",))
    first = evaluate(policy, ln)
    caches.clear_all()
    again = evaluate(policy, ln)
    assert again == first == decide(policy, ln) and again is not first
