"""``diff --claims``: the impact report of the batch engine, checked against deciding the file line by line.

The direct computation decides each line with ``eval`` (``api.eval_lines``, the interpreter line by line) under
each side, pairs the lines by number and counts in plain Python what the report should say; the report of
``engines.impact`` (two batch engines, compared as arrays) must match it field for field, on synthetic files,
hostile ones and every input format.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from click.testing import CliRunner  # noqa: E402

from cmap_policy.api import eval_lines  # noqa: E402
from cmap_policy.cli import main  # noqa: E402
from cmap_policy.engines.impact import EXAMPLES, impact  # noqa: E402
from cmap_policy.load import load_policy  # noqa: E402
from cmap_policy.model import Policy  # noqa: E402
from cmap_policy.testing import synthetic_policy, write_tree  # noqa: E402
from cmap_policy.testing.claims import random_records  # noqa: E402

COLUMNS = ["line_id", "claim_id", "code", "date", "modifiers", "pos", "claim_type", "rcc", "modality",
           "member_age", "provider_type", "units", "established_patient"]


def _decided(path: Path, policy: Policy, release: str | None) -> dict[int, Any]:
    return {r.number: r for r in eval_lines(path, policy=policy, release=release)}


def direct(path: Path, base: tuple[Policy, str | None], head: tuple[Policy, str | None],
           amounts: dict[int, float | None] | None = None) -> dict[str, Any]:
    """What the report must say, from ``eval`` line by line under each side."""
    before, after = _decided(path, *base), _decided(path, *head)
    assert before.keys() == after.keys()
    groups: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    outcomes: dict[str, Counter[str]] = {"before": Counter(), "after": Counter()}
    errors = 0
    for n in sorted(before):
        b, h = before[n], after[n]
        if b.error is not None:
            assert h.error is not None and (h.error.field, h.error.message) == (b.error.field, b.error.message)
            errors += 1
            continue
        ob, oh = b.decision.outcome.value, h.decision.outcome.value
        outcomes["before"][ob] += 1
        outcomes["after"][oh] += 1
        rb, rh = " ".join(b.decision.reason_codes), " ".join(h.decision.reason_codes)
        if (ob, rb) == (oh, rh):
            continue
        g = groups.setdefault((ob, oh, rb, rh, b.line.code), {"lines": 0, "amount": 0.0, "first": n,
                                                                "date": b.line.date.isoformat(),
                                                                "line_id": b.line.line_id})
        g["lines"] += 1
        if amounts is not None and amounts.get(n) is not None:
            g["amount"] += amounts[n]
    return {"groups": groups, "outcomes": outcomes, "errors": errors, "compared": len(before) - errors}


def check_report(report: dict[str, Any], want: dict[str, Any], with_amount: bool) -> None:
    groups = want["groups"]
    changed = sum(g["lines"] for g in groups.values())
    outcome_changed = sum(g["lines"] for k, g in groups.items() if k[0] != k[1])
    assert report["lines"] == {"read": want["compared"] + want["errors"], "compared": want["compared"],
                               "errors": want["errors"], "outcome_changed": outcome_changed,
                               "reasons_changed_only": changed - outcome_changed,
                               "unchanged": want["compared"] - changed}
    for side in ("before", "after"):
        assert {k: v for k, v in report["outcomes"][side].items() if v} == dict(want["outcomes"][side])
    transitions: dict[tuple[str, str], dict[str, Any]] = {}
    for k, g in groups.items():
        if k[0] == k[1]:
            continue
        t = transitions.setdefault((k[0], k[1]), {"lines": 0, "amount": 0.0, "by_code": Counter(), "firsts": []})
        t["lines"] += g["lines"]
        t["amount"] += g["amount"]
        t["by_code"][k[4]] += g["lines"]
        t["firsts"].append((g["first"], g["date"], g["line_id"], k[4]))
    got = {(t["from"], t["to"]): t for t in report["transitions"]}
    assert got.keys() == transitions.keys()
    for pair, t in transitions.items():
        g = got[pair]
        assert g["lines"] == t["lines"]
        assert g["by_code"] == dict(t["by_code"])
        assert [(e["line"], e["date"], e["line_id"], e["code"]) for e in g["examples"]] == \
            sorted(t["firsts"])[:EXAMPLES]
        if with_amount:
            assert g["amount"] == pytest.approx(t["amount"], abs=0.005)
        else:
            assert g["amount"] is None
    appeared: Counter[str] = Counter()
    gone: Counter[str] = Counter()
    for k, g in groups.items():
        for r in set(k[3].split()) - set(k[2].split()):
            appeared[r] += g["lines"]
        for r in set(k[2].split()) - set(k[3].split()):
            gone[r] += g["lines"]
    assert report["reasons"] == {"appeared": dict(appeared), "gone": dict(gone)}
    by_code: Counter[str] = Counter()
    for k, g in groups.items():
        by_code[k[4]] += g["lines"]
    assert {c["code"]: c["outcome_changed"] + c["reasons_changed"] for c in report["by_code"]} == dict(by_code)


def _write_csv(path: Path, records: list[dict[str, Any]], extra: dict[str, list[str]] | None = None) -> None:
    out = io.StringIO()
    names = COLUMNS + list(extra or {})
    w = csv.writer(out, lineterminator="\n")
    w.writerow(names)
    for i, rec in enumerate(records):
        w.writerow([rec.get(c, "") for c in COLUMNS] + [v[i] for v in (extra or {}).values()])
    path.write_text(out.getvalue(), encoding="utf-8")


@pytest.fixture(scope="module")
def bundled() -> Policy:
    return load_policy()


def _amounts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice([f"{rng.randint(0, 50000) / 100:.2f}", str(rng.randint(1, 300)), "", "abc", " 12.5 "])
            for _ in range(n)]


def _as_float(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return None


def test_synthetic_csv_with_amounts_matches_eval_line_by_line(tmp_path: Path, bundled: Policy) -> None:
    records = list(random_records(bundled, 4000, seed=11, messy=0.08))
    amounts = _amounts(len(records), 3)
    with_amount, plain = tmp_path / "claims.csv", tmp_path / "plain.csv"
    _write_csv(with_amount, records, {"amount": amounts})
    _write_csv(plain, records)
    base, head = (bundled, "PB-2020-14"), (bundled, None)
    report = impact(with_amount, bundled, bundled, base_release="PB-2020-14").as_dict()
    by_line = {i + 2: _as_float(a) for i, a in enumerate(amounts)}  # line 1 is the header
    want = direct(plain, base, head, by_line)
    assert want["compared"] > 3000 and want["groups"], "the sides must differ on this file for the test to mean much"
    check_report(report, want, with_amount=True)
    assert report["amount"]["column"] == "amount"
    decided = {n for n, r in _decided(plain, bundled, None).items() if r.error is None}
    assert report["amount"]["unread"] == sum(1 for i, a in enumerate(amounts) if a == "abc" and i + 2 in decided)
    assert report["amount"]["lines_with_amount"] == sum(1 for i, a in enumerate(amounts)
                                                        if _as_float(a) is not None and i + 2 in decided)


def test_two_synthetic_policies_jsonl_and_parquet(tmp_path: Path) -> None:
    a = load_policy(write_tree(synthetic_policy(120, seed=1), tmp_path / "a"))
    b = load_policy(write_tree(synthetic_policy(120, seed=2), tmp_path / "b"))
    records = list(random_records(a, 3000, seed=5, messy=0.05))
    jsonl = tmp_path / "claims.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    check_report(impact(jsonl, a, b).as_dict(), direct(jsonl, (a, None), (b, None)), with_amount=False)
    clean = [r for r in random_records(a, 3000, seed=6)]
    amounts = [round(random.Random(i).uniform(0, 900), 2) for i in range(len(clean))]
    # blanks as nulls, and the same lines as JSON Lines for eval (which reads no Parquet): rows and lines count from 1
    table = pa.table({**{c: [r.get(c) or None for r in clean] for c in COLUMNS}, "amount": amounts})
    parquet, plain = tmp_path / "claims.parquet", tmp_path / "plain.jsonl"
    pq.write_table(table, parquet)
    plain.write_text("".join(json.dumps({k: v for k, v in r.items() if v}) + "\n" for r in clean), encoding="utf-8")
    want = direct(plain, (a, None), (b, None), {i + 1: v for i, v in enumerate(amounts)})
    check_report(impact(parquet, a, b).as_dict(), want, with_amount=True)


HOSTILE = (b"code,date,modifiers,amount\n"
           b"97153,2021-06-01,95,10.00\n"
           b"\n"
           b"97153,2021-06-01,93,1e5\n"
           b"97153,2021-06-01,9\xff3,1\n"
           b"\xff\xfe,2021-06-01,95,1\n"
           b'"97153,2021-06-01,95,1\n'
           b"97153,2021-06-01\n"
           b"97153," + b"9" * 2000 + b",95,1\n"
           b"T1016,2023-06-01,95 93 GT 25 59,1\n"
           b"T1016,2026-01-05,93,12345678901234567890\n"
           b"H2019,2021-06-01,95,7.5\r\n"
           b"H2019,2021-06-01,95,-3\n")


def test_hostile_csv_every_line_accounted_and_same_as_eval(tmp_path: Path, bundled: Policy) -> None:
    path = tmp_path / "hostile.csv"
    path.write_bytes(HOSTILE)
    plain = tmp_path / "plain.csv"
    # the same lines without the amount column, for eval (which has no such field)
    rows = HOSTILE.split(b"\n")
    plain.write_bytes(b"\n".join(r.rsplit(b",", 1)[0] if r.count(b",") >= 3 else r for r in rows))
    report = impact(path, bundled, bundled, base_release="PB-2020-14").as_dict()
    want = direct(plain, (bundled, "PB-2020-14"), (bundled, None))
    assert report["lines"]["read"] == want["compared"] + want["errors"]
    assert report["lines"]["compared"] == want["compared"]
    assert {e["line"] for e in report["errors"]} == {n for n, r in _decided(plain, bundled, None).items()
                                                     if r.error is not None}
    assert report["header_error"] is None  # the amount column is not a problem of the header here


def test_cli_diff_claims_formats_and_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "claims.csv"
    path.write_text("code,date,modifiers,amount\n97153,2021-06-01,95,100.00\n97153,2021-06-01,93,50\n"
                    "T1016,2026-01-05,93,20\n", encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(main, ["diff", "PB-2020-14", "TABLE-2025-12-26", "--claims", str(path), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["lines"]["read"] == 3
    assert data["base"]["release"] == "PB-2020-14" and data["head"]["release"] == "TABLE-2025-12-26"
    moved = {(t["from"], t["to"]): t for t in data["transitions"]}
    assert list(moved) == [("undetermined", "payable")]
    assert moved[("undetermined", "payable")]["amount"] == 20.0
    assert [e["line"] for e in moved[("undetermined", "payable")]["examples"]] == [4]
    assert data["reasons"] == {"appeared": {"ON_TELEHEALTH_TABLE": 1}, "gone": {"MODALITY_UNDETERMINED": 1}}
    res = runner.invoke(main, ["diff", "PB-2020-14", "TABLE-2025-12-26", "--claims", str(path), "--exit-code"])
    assert res.exit_code == 1
    assert "### Transitions" in res.output and "undetermined → payable" in res.output and "$20.00" in res.output
    same = runner.invoke(main, ["diff", "PB-2023-38", "PB-2023-38", "--claims", str(path), "--exit-code"])
    assert same.exit_code == 0 and "No line of the file changes its decision." in same.output
    missing = runner.invoke(main, ["diff", "PB-2020-14", "--claims", str(tmp_path / "none.csv")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_log_replay_reports_with_the_same_impact_report(tmp_path: Path, bundled: Policy) -> None:
    pytest.importorskip("orjson")
    records = [{k: v for k, v in r.items() if v} for r in random_records(bundled, 1500, seed=21)]
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    log = tmp_path / "decisions.jsonl"
    with log.open("w", encoding="utf-8") as out:
        for result in eval_lines(inputs, policy=bundled, release="PB-2020-14"):
            if result.decision is None:
                out.write(json.dumps({"input": records[result.number - 1]}) + "\n")  # no outcome: not replayable
                continue
            d = result.decision
            out.write(json.dumps({"input": records[result.number - 1], "outcome": d.outcome.value,
                                  "reasons": list(d.reason_codes), "release": d.release,
                                  "policy_hash": d.policy_hash}) + "\n")
        out.write("{not json\n")
    res = CliRunner().invoke(main, ["log", "replay", str(log), "--format", "json"])
    assert res.exit_code == 1  # the last record is not JSON, and is reported
    assert f"{log}:{len(records) + 1}: not valid JSON" in res.stderr
    replayed = json.loads(res.stdout)
    want = direct(inputs, (bundled, "PB-2020-14"), (bundled, None))
    assert want["groups"]
    check_report(replayed, {**want, "errors": want["errors"] + 1}, with_amount=False)
    assert replayed["base"]["release"] == "PB-2020-14" and replayed["head"]["release"] == bundled.latest.id
    # and it is the report of diff --claims on the same lines
    claims = impact(inputs, bundled, bundled, base_release="PB-2020-14").as_dict()
    assert replayed["transitions"] == claims["transitions"] and replayed["reasons"] == claims["reasons"]
    md = CliRunner().invoke(main, ["log", "replay", str(log), "--format", "md"])
    assert "### Transitions" in md.stdout
