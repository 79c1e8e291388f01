"""The claim-line checker's data: every answer the form can give is the interpreter's decision, exhaustively.

The browser tests (test_site_browser.py) drive the form and its script; these read the data with a second,
independent reader (``site_support.check_answer``) and compare every class of line the form can send, on
the bundled policy and on SYNTHETIC ones (revenue center codes, limits, a release that holds the whole
table), with ``interpreter.decide``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from cmap_policy.interpreter import decide
from cmap_policy.lines import MAX_MODIFIERS, parse_line
from cmap_policy.load.loader import load_policy
from cmap_policy.model import ClaimLine, Policy
from cmap_policy.site.check import CODE_STAND_IN, CheckData, check_files, check_messages
from cmap_policy.testing import synthetic_policy
from cmap_policy.testing.trees import write_tree

from .site_support import check_answer, check_payloads

UNLISTED = ("99213", "G2012", "A0001")


def _every_form_line(policy: Policy, data: CheckData) -> list[ClaimLine]:
    """One line of every class the form can send, on the first and the last day of every date cell of every
    listed code and of codes no release lists: every set of at most four of the form's modifiers (in its
    order), every place of service it knows and one it does not, both claim types, and each revenue center
    code a row lists, another one and none."""
    codes: list[str] = [*data.codes, *UNLISTED]
    lines = []
    for code in codes:
        cells = data.cells.get(code, data.cells[None])
        for i, (_start, day, period) in enumerate(cells):
            days = [day] + ([cells[i + 1][0] - dt.timedelta(days=1)] if i + 1 < len(cells) else [])
            rccs: list[str | None] = [None, "0100", *(period.revenue_center_codes if period else ())]
            for d in days:
                for front in data.fronts:
                    mods = tuple(m for k, m in enumerate(data.modifiers) if front.mask >> k & 1)
                    for pos in (front.pos, "11") if front.pos is None else (front.pos,):
                        for rcc in rccs if front.claim_type == "institutional" else [None]:
                            lines.append(ClaimLine(code, d, mods, pos, front.claim_type, rcc))
    return lines


def _compare(policy: Policy) -> tuple[int, list[str]]:
    data = CheckData(policy)
    files = check_payloads(check_files(policy))
    bad = []
    lines = _every_form_line(policy, data)
    for line in lines:
        want = decide(policy, line).as_dict()
        got = check_answer(files, line)
        if got != want:
            bad.append(f"{line}\n  interpreter: {want}\n  data:        {got}")
    return len(lines), bad


def test_every_answer_of_the_bundled_policy_is_the_interpreters() -> None:
    checked, bad = _compare(load_policy())
    assert not bad, f"{len(bad)} of {checked} lines differ:\n" + "\n".join(bad[:5])
    assert checked > 100_000  # every class of line, not a sample


@pytest.mark.parametrize("seed", [2, 3])
def test_every_answer_of_a_synthetic_policy_is_the_interpreters(tmp_path: Path, seed: int) -> None:
    # SYNTHETIC policies have what the bundled one lacks: revenue center codes, limits, rows listed as not
    # permitted, and releases that hold the whole table (so an unlisted code is not payable).
    policy = load_policy(write_tree(synthetic_policy(12, seed=seed), tmp_path))
    periods = [p for cv in policy.views[policy.latest.id].values() for p in cv.periods]
    assert any(p.revenue_center_codes for p in periods) and any(p.limits for p in periods)
    checked, bad = _compare(policy)
    assert not bad, f"{len(bad)} of {checked} lines differ:\n" + "\n".join(bad[:5])


def test_a_page_loads_the_common_file_and_one_codes_file(tmp_path: Path) -> None:
    # The common file holds no listed code's cells (only the list of codes), so it does not grow with the
    # table; each code's file holds that code's cells alone.
    policy = load_policy(write_tree(synthetic_policy(30, seed=4), tmp_path))
    files = check_payloads(check_files(policy))
    codes = list(policy.views[policy.latest.id])
    common = {k: v for k, v in files["common"].items() if k != "codes"}
    text = json.dumps(common)
    assert [c for c in codes if c in text] == []
    assert files["common"]["codes"] == codes
    assert set(files) == {"common", *codes}
    for code in codes:
        others = [c for c in codes if c != code and c in json.dumps(files[code])]
        assert others == [], (code, others)


def test_the_form_says_what_the_command_line_says_of_a_bad_field() -> None:
    # The messages the form shows are the command line's own, with the value in place of {value}.
    messages = check_messages()
    program = load_policy().program
    for field, value, key, shown in (("code", "12", "code", "'12'"), ("date", "2021/01/05", "date", "'2021/01/05'"),
                                     ("date", "2021-02-30", "calendar", "2021-02-30"), ("pos", "1A", "pos", "'1A'"),
                                     ("rcc", "09000", "rcc", "'09000'"), ("modifiers", "9", "modifier", "'9'"),
                                     ("modifiers", ["95", "93", "GT", "FQ", "25"], "modifiers",
                                      str(MAX_MODIFIERS + 1))):
        record: dict[str, Any] = {"code": "T1016", "date": "2026-01-05", field: value}
        with pytest.raises(ValueError) as err:
            parse_line(record, program)
        assert getattr(err.value, "message", "") == messages[key].replace("{value}", shown), (field, value)


def test_a_code_no_release_lists_is_decided_once_with_a_stand_in() -> None:
    # The unlisted code's answers name only the stand-in, which the script replaces by the code typed.
    files = check_payloads(check_files(load_policy()))
    text = json.dumps(files["common"]["unlisted"])
    assert CODE_STAND_IN in text
    for code in UNLISTED:
        assert code not in text
