"""A million lines through the batch engine, field for field against the interpreter deciding each line alone.

The batch engine decides a slot once and spreads its answer to every row of the slot, keeps slots across
batches, looks a (code, day) pair up once, and leaves the claim type and a refused limit's value out of a
slot where the written decision does not depend on them. Each of those is a way to give a row another
row's answer. At a million lines (several batches, tens of thousands of slots, eight years of dates across
every release of a 400-code SYNTHETIC policy) every row is compared with ``interpreter.evaluate`` on the
same line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cmap_policy import ClaimLine, load_policy
from cmap_policy.engines.batch import run
from cmap_policy.interpreter import evaluate
from cmap_policy.testing import synthetic_policy, write_tree
from cmap_policy.testing.feed import claims_table

N = 1_000_000


@pytest.mark.slow
def test_a_million_lines_field_for_field_against_the_interpreter(tmp_path: Path) -> None:
    policy = load_policy(write_tree(synthetic_policy(400, seed=0), tmp_path / "policy"))
    lines = claims_table(policy, N, np.random.default_rng(20261130), start=dt.date(2019, 6, 1), days=8 * 365)
    src, out = tmp_path / "lines.parquet", tmp_path / "out.parquet"
    pq.write_table(lines, src, row_group_size=300_000)  # several batches: slots carry over between them
    summary = run(src, out, policy=policy)
    assert summary.read == summary.decided == N and summary.errors == 0
    got = pq.read_table(out)
    assert got.num_rows == N
    cols = {name: got[name].to_pylist() for name in ("line", "line_id", "code", "date", "outcome", "reasons",
                                                     "period", "modality", "release", "policy_hash")}
    assert cols["line"] == list(range(1, N + 1))
    assert set(cols["release"]) == {policy.latest.id} and set(cols["policy_hash"]) == {policy.hash}
    wrong = []
    for i, r in enumerate(lines.to_pylist()):
        line = ClaimLine(r["code"], r["date"], tuple(r["modifiers"].split()), r["pos"], r["claim_type"], r["rcc"],
                         None, r["member_age"], r["provider_type"], r["units"], r["established_patient"],
                         r["line_id"])
        d = evaluate(policy, line)
        want = (r["line_id"], r["code"], r["date"], d.outcome.value, " ".join(d.reason_codes),
                d.period.id if d.period else None, d.modality)
        have = (cols["line_id"][i], cols["code"][i], cols["date"][i], cols["outcome"][i], cols["reasons"][i],
                cols["period"][i], cols["modality"][i])
        if have != want:
            wrong.append((i + 1, have, want))
    assert not wrong, f"{len(wrong)} of {N} lines differ; the first: {wrong[:3]}"
    # the lines reach every outcome and many reasons, so that the comparison means something
    assert set(cols["outcome"]) >= {"payable", "not_payable", "not_telehealth"}
    assert len(set(cols["reasons"])) > 30
