"""The decision log: one record per answered decision, flushed on SIGTERM, rotated, masked, and replayed."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
from click.testing import CliRunner

from cmap_policy.cli import main
from cmap_policy.load import load_policy
from cmap_policy.service import ServiceConfig

from .service_support import copy_policy, serve, serve_process

LINE = {"code": "T1016", "date": "2026-01-05", "modifiers": ["93"], "member_age": 40, "claim_id": "C9-SECRET"}


def _records(*paths: Path) -> list[dict[str, Any]]:
    """The decision records of a log (each file's start record is the chain's, not a decision)."""
    out: list[dict[str, Any]] = []
    for path in paths:
        if path.exists():
            out.extend(r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if "log" not in r)
    return out


def _ids(results: Iterable[dict[str, Any]]) -> list[str]:
    return [r["decision_id"] for r in results if "decision_id" in r]


def test_exactly_one_record_per_answered_decision_with_what_was_asked_and_decided(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    answered: list[dict[str, Any]] = []
    with serve(ServiceConfig(log=log, access_log=False)) as server, server.client() as c:
        def one(i: int) -> dict[str, Any]:
            return cast(dict[str, Any], c.post("/v1/decide", json={**LINE, "line_id": str(i)}).json())

        with ThreadPoolExecutor(8) as pool:
            answered.extend(pool.map(one, range(200)))
        batch = "\n".join(json.dumps({**LINE, "line_id": f"b{i}"}) for i in range(3000)) + "\n{bad\n"
        answered.extend(json.loads(x) for x in c.post("/v1/decide/batch", content=batch).text.splitlines())
        c.post("/v1/decide", json={"code": "T1016"})  # not a decision: not logged
    records = _records(log)  # the server has stopped: the log is flushed
    assert sorted(r["decision_id"] for r in records) == sorted(_ids(answered))
    assert len(records) == 3200
    by_id = {r["decision_id"]: r for r in records}
    for result in answered[:5] + answered[-5:]:
        if "error" in result:
            continue
        rec = by_id[result["decision_id"]]
        assert rec["outcome"] == result["outcome"] and rec["reasons"] == [x["code"] for x in result["reasons"]]
        assert rec["release"] == result["release"] and rec["policy_hash"] == result["policy_hash"]
        assert rec["period"] == result["period"] and rec["input"]["line_id"] == result["line_id"]
        assert rec["latency_ms"] >= 0 and rec["time"].endswith("Z")


def test_sigterm_lets_requests_finish_and_flushes_the_log(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    with serve_process("--log", str(log), "--no-access-log") as server:
        assert server.process is not None
        big = "\n".join(json.dumps({**LINE, "line_id": str(i)}) for i in range(20000))
        with httpx.Client(base_url=server.url, timeout=60) as c, ThreadPoolExecutor(1) as pool:
            pending = pool.submit(c.post, "/v1/decide/batch", content=big)
            singles = [c.post("/v1/decide", json=LINE).json() for _ in range(20)]
            server.process.send_signal(signal.SIGTERM)  # while the batch may still be in flight
            batch = pending.result()
        # uvicorn shuts down gracefully, then exits by the signal it caught (so the exit status is -SIGTERM)
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert server.process.stderr is not None
        assert b"Application shutdown complete" in server.process.stderr.read()
    answered = [*singles, *(json.loads(x) for x in batch.text.splitlines())]
    assert len(answered) == 20020
    assert sorted(r["decision_id"] for r in _records(log)) == sorted(_ids(answered))


def test_the_log_rotates_by_size_and_loses_no_record(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    with serve(ServiceConfig(log=log, log_max_bytes=20_000, log_backups=50, access_log=False)) as server, \
            server.client() as c:
        text = "\n".join(json.dumps({**LINE, "line_id": str(i)}) for i in range(400))
        answered = [json.loads(x) for x in c.post("/v1/decide/batch", content=text).text.splitlines()]
    files = sorted(tmp_path.glob("decisions.jsonl*"))
    assert len(files) > 3
    assert all(p.stat().st_size <= 20_000 for p in files)
    oldest_first = [*sorted((p for p in files if p != log), key=lambda p: -int(p.suffix[1:])), log]
    records = _records(*oldest_first)
    assert [r["decision_id"] for r in records] == _ids(answered)  # in order across the files


def test_masked_fields_are_not_stored_and_the_record_says_which(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    with serve(ServiceConfig(log=log, log_mask=("member_age", "claim_id"), access_log=False)) as server, \
            server.client() as c:
        c.post("/v1/decide", json=LINE)
        c.post("/v1/decide", json={"code": "T1016", "date": "2026-01-05", "age": 7, "line_id": "x"})
    first, second = _records(log)
    assert "member_age" not in first["input"] and "claim_id" not in first["input"]
    assert first["masked"] == ["claim_id", "member_age"] and first["input"]["code"] == "T1016"
    assert "age" not in second["input"] and second["masked"] == ["member_age"]
    assert "C9-SECRET" not in log.read_text() and ":40," not in log.read_text()


def test_serve_refuses_a_mask_that_is_not_a_field() -> None:
    out = CliRunner().invoke(main, ["serve", "--log-mask", "ssn"])
    assert out.exit_code == 2 and "'ssn' is not a claim line field" in out.output


def test_replay_reports_every_changed_decision_against_another_policy(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    lines = [{"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]},
             {"code": "T1016", "date": "2026-02-10", "modifiers": ["95"]},
             {"code": "97153", "date": "2026-01-05", "modifiers": ["95"]},
             {"code": "90791", "date": "2026-01-05"}]
    with serve(ServiceConfig(log=log, access_log=False)) as server, server.client() as c:
        ids = [c.post("/v1/decide", json=x).json()["decision_id"] for x in lines]
    # the other policy: T1016 leaves the table after 2026-01-31
    root = copy_policy(tmp_path)
    code_file = root / "codes" / "T1016.json"
    data = json.loads(code_file.read_text())
    data["periods"][-1]["end"] = "2026-01-31"
    data["periods"][-1]["ended_in"] = load_policy().latest.id
    data["periods"][-1]["removed"] = True
    code_file.write_text(json.dumps(data, indent=2))
    out = CliRunner().invoke(main, ["log", "replay", str(log), "--policy", str(root), "--format", "jsonl"])
    assert out.exit_code == 0, out.output
    changes = [json.loads(x) for x in out.stdout.splitlines()]
    assert [c["decision_id"] for c in changes] == [ids[1]]  # only the line after the new end changes
    assert changes[0]["before"]["outcome"] == "payable"
    assert changes[0]["after"]["outcome"] == "not_payable"
    assert changes[0]["after"]["reasons"] == ["OUTSIDE_EFFECTIVE_DATES"]
    assert "4 decision(s) replayed" in out.stderr and "1 changed, 3 unchanged" in out.stderr
    same = CliRunner().invoke(main, ["log", "replay", str(log)])
    assert same.exit_code == 0 and same.stdout == "" and "0 changed" in same.stderr
    text = CliRunner().invoke(main, ["log", "replay", str(log), "--policy", str(root)])
    # line 3: line 1 is the log's start record, line 2 the first decision
    assert f"{log}:3 {ids[1]}" in text.stdout and "after   not_payable [OUTSIDE_EFFECTIVE_DATES]" in text.stdout


def test_replay_reports_records_it_cannot_read_and_exits_1(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    log.write_text('{not json\n{"input": {"code": "T1016"}}\n[]\n')
    out = CliRunner().invoke(main, ["log", "replay", str(log)])
    assert out.exit_code == 1
    assert f"{log}:1: not valid JSON" in out.stderr
    assert f"{log}:2: the logged line no longer reads" in out.stderr and f"{log}:3: not a decision record" in out.stderr


def test_the_impact_report_of_a_log_reports_a_record_without_a_summary_and_counts_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    good = {"input": LINE, "outcome": "payable", "reasons": ["ON_TELEHEALTH_TABLE"], "period": None,
            "release": "R", "policy_hash": "h"}
    bad = {**good, "outcome": ["payable"]}  # an outcome that is not text: the record's error, not a traceback
    log.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n" + json.dumps({**good, "reasons": "X"}) + "\n")
    out = CliRunner().invoke(main, ["log", "replay", str(log), "--format", "json"])
    assert out.exit_code == 1, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    for number in (2, 3):
        assert f"{log}:{number}: the record has no outcome and list of reason codes" in out.stderr
    report = json.loads(out.stdout)
    assert (report["lines"]["compared"], report["lines"]["errors"]) == (1, 2), report
    assert report["outcomes"]["before"]["payable"] == 1 and report["base"]["release"] == "R", report
