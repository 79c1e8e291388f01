"""The batch engine gives the interpreter's decisions and errors, line for line."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import tempfile
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmap_policy import LineError, eval_lines, evaluate, load_policy, parse_line
from cmap_policy.engines.batch import Engine, run
from cmap_policy.engines.files import lines_table
from cmap_policy.model import Policy
from cmap_policy.testing import synthetic_policy, write_tree
from cmap_policy.testing.claims import random_records
from cmap_policy.testing.strategies import claim_records, hostile_jsonl, policy_trees

FIELDS = ("line_id", "claim_id", "code", "date", "modifiers", "pos", "claim_type", "rcc", "modality", "member_age",
          "provider_type", "units", "established_patient")


@pytest.fixture(scope="module")
def bundled() -> Policy:
    return load_policy()


def _expected(decision: Any) -> tuple[str, str, str | None, str | None]:
    return (decision.outcome.value, " ".join(decision.reason_codes),
            decision.period.id if decision.period else None, decision.modality)


def _got(row: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    return row["outcome"], row["reasons"], row["period"], row["modality"]


def _write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for rec in records:
            w.writerow({k: ("" if rec.get(k) is None else " ".join(rec[k]) if isinstance(rec.get(k), list)
                            else str(rec[k]).lower() if isinstance(rec.get(k), bool) else rec[k]) for k in FIELDS})


def _compare_file(policy: Policy, src: Path, out: Path, release: str | None = None) -> tuple[int, int]:
    """Decide ``src`` with both engines; assert every decision and every error agree. (decided, errors)."""
    summary = run(src, out, policy=policy, release=release)
    got = pq.read_table(out).to_pylist()
    got_errors = [json.loads(x) for x in out.with_name(out.name.replace(".parquet", ".errors.jsonl")).open()]
    want = list(eval_lines(src, policy=policy, release=release))
    want_decided = [r for r in want if r.decision is not None]
    want_errors = [r for r in want if r.error is not None]
    assert [g["line"] for g in got] == [r.number for r in want_decided]
    for r, g in zip(want_decided, got, strict=True):
        assert _got(g) == _expected(r.decision), (r.number, r.line)
        assert r.line is not None and r.decision is not None
        assert g["line_id"] == r.line.line_id and g["claim_id"] == r.line.claim_id
        assert g["date"] == r.line.date and g["code"] == r.line.code
        assert g["release"] == r.decision.release and g["policy_hash"] == policy.hash
    assert [(e["line"], e["field"], e["error"]) for e in got_errors] == \
        [(r.number, cast(LineError, r.error).field, cast(LineError, r.error).message) for r in want_errors]
    assert summary.read == summary.decided + summary.errors == len(want)
    return summary.decided, summary.errors


@settings(max_examples=100)
@given(data=st.data())
def test_generated_policies_and_lines_agree_with_the_interpreter(data: st.DataObject) -> None:
    tree = data.draw(policy_trees(), label="tree")
    records = data.draw(st.lists(claim_records(tree), min_size=1, max_size=40), label="records")
    with tempfile.TemporaryDirectory() as tmp:
        policy = load_policy(write_tree(tree, Path(tmp) / "policy"))
    release = data.draw(st.sampled_from([r.id for r in policy.releases]), label="release")
    parsed = []
    for i, rec in enumerate(records, 1):
        try:
            parsed.append((i, parse_line(rec, policy.program)))
        except LineError:
            continue
    engine = Engine(policy, release)
    got = engine.decide_lines(lines_table(parsed)).to_pylist()
    assert [g["line"] for g in got] == [i for i, _ in parsed]
    for (_, line), g in zip(parsed, got, strict=True):
        assert _got(g) == _expected(evaluate(policy, line, release=release)), line


def _messy(draw: st.DrawFn, rec: dict[str, Any]) -> dict[str, Any]:
    junk = st.sampled_from(["", " ", "x", "2020-13-01", "2020-1-1", "0000-01-01", "95 93 GT FQ 25", "9", "ab", "-3",
                            " 7 ", "131", "100001", "1.0", "maybe", "Institutional", "AUDIO-ONLY", "t1016", " 2 ",
                            "900", "0900 ", "'x'", 'a"b', "é"])
    for key in draw(st.lists(st.sampled_from(FIELDS[2:]), max_size=2, unique=True)):
        rec[key] = draw(junk)
    return rec


@settings(max_examples=100)
@given(data=st.data())
def test_csv_lines_checked_and_decided_as_the_interpreter_does(data: st.DataObject, bundled: Policy) -> None:
    records = data.draw(st.lists(claim_records(), min_size=1, max_size=30))
    records = [_messy(cast(st.DrawFn, data.draw), r) for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lines.csv"
        _write_csv(src, records)
        _compare_file(bundled, src, Path(tmp) / "out.parquet")


def test_100k_generated_lines_on_the_bundled_policy(tmp_path: Path, bundled: Policy) -> None:
    src = tmp_path / "lines.csv"
    _write_csv(src, list(random_records(bundled, 100_000, seed=1, messy=0.02)))
    decided, errors = _compare_file(bundled, src, tmp_path / "out.parquet")
    assert decided > 90_000 and errors > 1000


def test_100k_generated_lines_on_a_synthetic_600_code_policy(tmp_path: Path) -> None:
    policy = load_policy(write_tree(synthetic_policy(600, seed=8), tmp_path / "policy"))
    records = list(random_records(policy, 100_000, seed=2, messy=0.01))
    src = tmp_path / "lines.csv"
    _write_csv(src, records)
    decided, _ = _compare_file(policy, src, tmp_path / "out.parquet")
    assert decided > 95_000
    _write_csv(src, records[:10_000])  # and as the first release published the table
    _compare_file(policy, src, tmp_path / "out.parquet", policy.releases[0].id)


def test_a_batch_of_many_distinct_provider_types_agrees_with_the_interpreter(tmp_path: Path) -> None:
    """Thousands of distinct provider types on codes whose rows limit them: the engine judges each (span, type)
    pair once, and spreads the verdicts back to the lines; the decisions must be the interpreter's."""
    policy = load_policy(write_tree(synthetic_policy(300, seed=3), tmp_path / "policy"))
    limited = sorted({code for code, view in policy.views[policy.releases[-1].id].items()
                      if any(lim.kind == "provider-type" for p in view.periods for lim in p.limits)})
    assert limited, "the synthetic policy has rows with provider-type limits"
    records = list(random_records(policy, 6000, seed=4, messy=0.0))
    for i, rec in enumerate(records):
        if i % 2:  # half the lines: a limited code, and a provider type no other line has
            rec["code"] = limited[i % len(limited)]
            rec["provider_type"] = f"PT{i:05d}"
    src = tmp_path / "lines.csv"
    _write_csv(src, records)
    decided, _ = _compare_file(policy, src, tmp_path / "out.parquet")
    assert decided > 5000


def test_arrow_columns_as_an_api_caller_may_give_them(bundled: Policy) -> None:
    """Columns handed to the engine as Arrow arrays (the Python API, Spark's workers): dictionaries with unsigned
    8-bit and 16-bit indices, slices that start inside a buffer, booleans, narrow integers and dates with nulls. The
    engine reads indices and values from Arrow's buffers, so each kind is decided as the interpreter decides
    the same line."""
    records = list(random_records(bundled, 1800, seed=5, messy=0.0))
    codes = sorted({r["code"] for r in records})
    assert len(codes) <= 55
    # the codes at indices 200 and up: read as signed bytes they would be negative
    dictionary = pa.array([f"Z{i:04d}" for i in range(200)] + codes)
    flags = [None if i % 3 == 0 else i % 2 == 0 for i in range(len(records))]
    whole = pa.table({
        "code": pa.DictionaryArray.from_arrays(
            pa.array([200 + codes.index(r["code"]) for r in records], pa.uint8()), dictionary),
        "date": pa.array([dt.date.fromisoformat(r["date"]) if i % 11 else None for i, r in enumerate(records)],
                         pa.date32()),
        "modifiers": pa.array([r["modifiers"] or None for r in records]).dictionary_encode()
                     .cast(pa.dictionary(pa.int16(), pa.string())),
        "pos": [r["pos"] or None for r in records],
        "member_age": pa.array([int(r["member_age"]) if r["member_age"] else None for r in records], pa.int16()),
        "units": pa.array([int(r["units"]) if r["units"] else None for r in records], pa.uint32()),
        "established_patient": pa.array(flags, pa.bool_()),
    })
    table = whole.slice(13, 1700)  # every column's data starts inside its buffers
    engine = Engine(bundled)
    decisions, errors = engine.decide_raw(table, pa.array(range(1, table.num_rows + 1), pa.int64()))
    got = {row["line"]: _got(row) for row in decisions.to_pylist()}
    failed = {row["line"] for row in errors.to_pylist()}
    assert got and failed  # lines without a date fail their check
    for number, rec in enumerate(table.to_pylist(), 1):
        fields = {k: (" ".join(v) if k == "modifiers" and isinstance(v, list) else v)
                  for k, v in rec.items() if v is not None}
        try:
            line = parse_line({k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in fields.items()},
                              bundled.program)
        except LineError:
            assert number in failed, (number, rec)
            continue
        assert got[number] == _expected(evaluate(bundled, line)), (number, rec)
    assert len(got) + len(failed) == table.num_rows


def test_typed_parquet_columns(tmp_path: Path, bundled: Policy) -> None:
    records = list(random_records(bundled, 3000, seed=3))
    table = pa.table({
        "line_id": [r["line_id"] for r in records],
        "code": pa.array([r["code"] for r in records]).dictionary_encode(),
        "date": pa.array([dt.date.fromisoformat(r["date"]) for r in records], pa.date32()),
        "modifiers": pa.array([r["modifiers"].split() for r in records], pa.list_(pa.string())),
        "pos": [r["pos"] or None for r in records],
        "claim_type": [r["claim_type"] or None for r in records],
        "member_age": pa.array([int(r["member_age"]) if r["member_age"] else None for r in records], pa.int64()),
        "units": pa.array([float(r["units"]) if r["units"] else None for r in records], pa.float64()),
        "established_patient": pa.array([{"true": True, "yes": True, "false": False, "no": False}.get(
            r["established_patient"]) for r in records], pa.bool_()),
    })
    pq.write_table(table, tmp_path / "in.parquet")
    summary = run(tmp_path / "in.parquet", tmp_path / "out.parquet", policy=bundled)
    assert summary.errors == 0
    got = pq.read_table(tmp_path / "out.parquet").to_pylist()
    for rec, g in zip(table.to_pylist(), got, strict=True):
        rec = {k: v for k, v in rec.items() if v is not None}
        rec["date"] = rec["date"].isoformat()
        line = parse_line(rec, bundled.program)
        assert _got(g) == _expected(evaluate(bundled, line)), rec


def test_malformed_lines_go_to_the_errors_output(tmp_path: Path, bundled: Policy) -> None:
    src = tmp_path / "in.csv"
    good = "T1016,2026-01-05,93"
    lines = ["code,date,modifiers", good, "T1016,2026-01-05", "T1016,2026-01-05,93,extra", "T1016,2026-02-30,93",
             ",2026-01-05,95", "90791,,95", good, 'T1016,"2026-01-05,93', good]
    src.write_bytes(("\n".join(lines) + "\n").encode() + b"T1016,2026-01-05,\xff\xfe\n" + (good + "\n").encode())
    summary = run(src, tmp_path / "out.csv", policy=bundled)
    errors = [json.loads(x) for x in (tmp_path / "out.errors.jsonl").open()]
    decided = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert summary.read == 11 == len(decided) + len(errors)
    assert [int(d["line"]) for d in decided] == [2, 8, 10, 12]
    assert {e["line"]: e["field"] for e in errors} == {3: None, 4: None, 5: "date", 6: "code", 7: "date", 9: None,
                                                       11: None}
    assert all(e["error"] for e in errors)


def test_jsonl_input_matches_the_interpreter(tmp_path: Path, bundled: Policy) -> None:
    src = tmp_path / "in.jsonl"
    recs = list(random_records(bundled, 2000, seed=4, messy=0.05))
    text = "\n".join(json.dumps(r) for r in recs[:1000]) + "\n{not json\n[1, 2]\n\n" + \
        "\n".join(json.dumps(r) for r in recs[1000:]) + "\n"
    src.write_text(text, encoding="utf-8")
    _compare_file(bundled, src, tmp_path / "out.parquet")


def test_every_output_format_keeps_the_input_order(tmp_path: Path, bundled: Policy) -> None:
    src = tmp_path / "in.csv"
    _write_csv(src, list(random_records(bundled, 5000, seed=5)))
    run(src, tmp_path / "o.parquet", policy=bundled)
    run(src, tmp_path / "o.csv", policy=bundled)
    run(src, tmp_path / "o.jsonl", policy=bundled)
    parquet = pq.read_table(tmp_path / "o.parquet").to_pylist()
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    jsonl = [json.loads(x) for x in (tmp_path / "o.jsonl").open()]
    assert [p["line_id"] for p in parquet] == [r["line_id"] for r in rows] == [j["line_id"] for j in jsonl] == \
        [f"L{i}" for i in range(1, 5001)]
    assert [p["reasons"] for p in parquet] == [r["reasons"] for r in rows] == [" ".join(j["reasons"]) for j in jsonl]


def test_small_batches_give_the_same_answers(tmp_path: Path, bundled: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    import cmap_policy.engines.files as files

    src = tmp_path / "in.csv"
    _write_csv(src, list(random_records(bundled, 3000, seed=6, messy=0.05)))
    monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 4096)
    _compare_file(bundled, src, tmp_path / "out.parquet")


def test_an_unknown_column_fails_every_line(tmp_path: Path, bundled: Policy) -> None:
    src = tmp_path / "in.csv"
    src.write_text("code,date,colour\nT1016,2026-01-05,red\nT1016,2026-01-06,blue\n", encoding="utf-8")
    summary = run(src, tmp_path / "out.csv", policy=bundled)
    errors = [json.loads(x) for x in (tmp_path / "out.errors.jsonl").open()]
    assert summary.decided == 0 and [e["field"] for e in errors] == ["colour", "colour"]



def _mixed_jsonl(records: list[dict[str, Any]], hostile: list[bytes], seed: int) -> bytes:
    """Good lines (some values as numbers, some as text, keys in other cases and aliases) among hostile ones."""
    import random

    rng = random.Random(seed)
    out: list[bytes] = []
    for rec in records:
        rec = dict(rec)
        if rng.random() < 0.1 and rec.get("pos"):
            rec["pos"] = int(rec["pos"])  # a number where other lines have text: Arrow refuses the range
        if rng.random() < 0.05:
            rec["Date_Of_Service"] = rec.pop("date")
        out.append(json.dumps(rec).encode())
        if hostile and rng.random() < 0.05:
            out.append(rng.choice(hostile))
    return b"\n".join(out) + b"\n"


@settings(max_examples=25, deadline=None)
@given(st.lists(hostile_jsonl(), min_size=1, max_size=4), st.integers(0, 3), st.sampled_from([300, 5_000, 1 << 20]))
def test_json_lines_read_in_bulk_agree_with_the_interpreter(hostile: list[bytes], seed: int, block: int) -> None:
    """Blocks of every size (a few lines to all of them), clean and hostile lines, values of other types than the
    lines around them: the bulk reader gives the interpreter's lines, numbers and errors."""
    from cmap_policy.engines import jsonl

    policy = load_policy()
    lines = [ln for h in hostile for ln in h.split(b"\n")]
    data = _mixed_jsonl(list(random_records(policy, 400, seed=seed, messy=0.05)), lines, seed)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        src.write_bytes(data)
        old = jsonl.JSONL_BLOCK_BYTES, jsonl._JSONL_SPLIT_LINES
        jsonl.JSONL_BLOCK_BYTES, jsonl._JSONL_SPLIT_LINES = block, 4
        try:
            _compare_file(policy, src, Path(tmp) / "out.parquet")
        finally:
            jsonl.JSONL_BLOCK_BYTES, jsonl._JSONL_SPLIT_LINES = old


def test_clean_json_lines_are_read_by_arrow_not_line_by_line(tmp_path: Path, bundled: Policy,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk road is taken: a clean file's lines never go through the one-line reader."""
    from cmap_policy.engines import jsonl

    calls: list[int] = []
    real = jsonl.jsonl_line  # type: ignore[attr-defined]

    def counted(raw: bytes | None, number: int, program: Any) -> Any:
        calls.append(number)
        return real(raw, number, program)

    monkeypatch.setattr(jsonl, "jsonl_line", counted)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in random_records(bundled, 3000, seed=2)), encoding="utf-8")
    decided, errors = _compare_file(bundled, src, tmp_path / "out.parquet")
    assert decided + errors == 3000
    assert calls == []


def test_era_rules_read_the_line_fields_the_batch_engine_keys_on(tmp_path: Path, bundled: Policy) -> None:
    """Before 2020-03-18 the era rules read the member's age, and up to 2020-04-23 whether the patient is
    established, whatever the code: a slot must hold those fields on those dates, or two lines that differ
    only there would share an answer."""
    records: list[dict[str, Any]] = []
    for i in range(3000):
        day = ("2019-06-03", "2020-02-03", "2020-03-17", "2020-03-20", "2020-04-24", "2021-06-01")[i % 6]
        records.append({"line_id": f"L{i}", "claim_id": None, "code": ("T1016", "99213", "97153")[i % 3],
                        "date": day, "modifiers": [("95",), ("GQ",), (), ("GT",)][i % 4] if i % 5 else [],
                        "pos": "02" if i % 7 == 0 else "11", "claim_type": "professional", "rcc": None,
                        "modality": "audio-only" if i % 5 == 0 else None,
                        "member_age": None if i % 11 == 0 else i % 40, "provider_type": None, "units": None,
                        "established_patient": (None, True, False)[(i // 6) % 3]})
    for rec in records:
        rec["modifiers"] = list(rec["modifiers"])
    src = tmp_path / "lines.csv"
    _write_csv(src, records)
    decided, errors = _compare_file(bundled, src, tmp_path / "out.parquet")
    assert (decided, errors) == (3000, 0)
    reasons = {r["reasons"] for r in pq.read_table(tmp_path / "out.parquet").to_pylist()}
    assert any("AGE_OUTSIDE_LIMIT" in r for r in reasons) and any("ESTABLISHED_PATIENT_REQUIRED" in r for r in reasons)
    assert any("NOT_PAID_IN_ERA" in r for r in reasons) and any("ERA_UNDETERMINED" in r for r in reasons)


def _plain_by_line(line: bytes) -> bool:
    """The rule of ``jsonl._plain_lines`` for one line, said plainly: ``{`` first and ``}`` last (before a final
    carriage return), no other brace, at most one ``[``, a carriage return only at the end, no escaped surrogate."""
    body = line[:-1] if line.endswith(b"\r") else line
    return (len(body) >= 2 and body[:1] == b"{" and body[-1:] == b"}" and body.count(b"{") == 1
            and body.count(b"}") == 1 and body.count(b"[") <= 1 and b"\r" not in body
            and not re.search(rb"\\u[dD][89a-fA-F]", line))


@settings(max_examples=300)
@given(st.lists(st.builds(lambda inner, wrap, cr: (b"{" + inner + b"}" if wrap else inner) + (b"\r" if cr else b""),
                          st.text(alphabet='{}[]\r"a:\\ud8', max_size=10).map(str.encode), st.booleans(),
                          st.booleans()), min_size=1, max_size=40))
def test_the_lines_arrow_may_read_are_found_by_counting_as_by_looking_at_each_line(lines: list[bytes]) -> None:
    """The block-wide counts ``_plain_lines`` starts with pick the same lines as the rule applied line by line."""
    import numpy as np

    from cmap_policy.engines.jsonl import _plain_lines

    block = b"\n".join(line.replace(b"\n", b"") for line in lines) + b"\n"
    arr = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    got = _plain_lines(block, arr, starts, ends).tolist()
    assert got == [_plain_by_line(block[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
