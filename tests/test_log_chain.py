"""The decision log's hash chain: `log verify` names every kind of edit, and a power cut's torn tail as torn."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmap_policy import load_policy
from cmap_policy.cli import main
from cmap_policy.service.chain import GENESIS, verify
from cmap_policy.service.decisions import Decider
from cmap_policy.service.log import DecisionLog, read_records

LINES = [{"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]},
         {"code": "97153", "date": "2026-01-05", "modifiers": ["95"], "claim_id": "C1"},
         {"code": "90791", "date": "2025-03-01", "pos": "10"},
         {"code": "H0031", "date": "2026-02-01", "modifiers": ["93"], "member_age": 40}]


def write_log(path: Path, n: int, *, max_bytes: int = 100 << 20, fsync: str = "never",
              key_id: str | None = None) -> DecisionLog:
    """A real decision log of ``n`` decisions, written by the service's writer, closed."""
    decider = Decider(load_policy())
    log = DecisionLog(path, max_bytes=max_bytes, backups=50, fsync=fsync)
    answers = [decider.answer(LINES[i % len(LINES)], i + 1, None) for i in range(n)]
    log.record_many(answers[: n // 2], "/v1/decide/batch", key_id)
    for answer in answers[n // 2:]:
        log.record(answer, "/v1/decide", key_id)
    log.close()
    return log


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], str]:
    path = tmp_path_factory.mktemp("log") / "decisions.jsonl"
    log = write_log(path, 30)
    return path.read_bytes().splitlines(keepends=True), log.head()["hash"]


def test_a_fresh_log_is_intact_and_its_head_is_the_writers(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = write_log(path, 12, key_id="kid-1")
    records = [json.loads(x) for x in path.read_text().splitlines()]
    assert records[0]["log"] == "start" and records[0]["previous"] is None and records[0]["prev"] == GENESIS
    assert [r["seq"] for r in records] == list(range(1, 14))
    assert all(r["key_id"] == "kid-1" for r in records[1:])
    report = verify([path], head=log.head()["hash"])
    assert report.findings == [] and report.records == 13 and report.head is not None
    assert report.head.seq == 13 == log.head()["seq"]
    result = CliRunner().invoke(main, ["log", "verify", str(path)])
    assert result.exit_code == 0 and "13 record(s) in 1 file(s): intact" in result.stderr


EDITS = ("remove", "duplicate", "insert", "change", "swap")


def _edit(lines: list[bytes], kind: str, at: int, rnd: random.Random) -> tuple[list[bytes], set[int]]:
    """``lines`` with one edit of ``kind`` near index ``at``, and the 1-based line numbers a report may name."""
    out = list(lines)
    if kind == "remove":
        del out[at]
        return out, {at + 1}
    if kind == "duplicate":  # a copy right before its original: either of the two identical lines is the copy
        out.insert(at, lines[rnd.randrange(len(lines))])
        return out, {at + 1, at + 2}
    if kind == "insert":  # a record made up by someone who copied the shape of a real one
        fake = json.loads(lines[at])
        fake["outcome"] = "payable" if fake.get("outcome") != "payable" else "not_payable"
        out.insert(at, json.dumps(fake).encode() + b"\n")
        return out, {at + 1}
    if kind == "change":
        line = bytearray(lines[at])
        i = rnd.randrange(len(line) - 1)  # never the newline
        line[i] = rnd.choice([b for b in b"0123456789abcdefxyz{}\":, " if b != line[i]])
        out[at] = bytes(line)
        return out, {at + 1, at + 2}
    out[at], out[at + 1] = out[at + 1], out[at]
    return out, {at + 1, at + 2}


EXPECTED = {"remove": {"removed"}, "duplicate": {"inserted"}, "insert": {"inserted"}, "change": {"changed"},
            "swap": {"reordered"}}


@settings(max_examples=200 if os.environ.get("CI") else 80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(EDITS), where=st.floats(0, 1, exclude_max=True), seed=st.integers(0, 2**32))
def test_log_verify_names_every_kind_of_edit_of_a_real_log(real_log: tuple[list[bytes], str],
                                                           tmp_path_factory: pytest.TempPathFactory, kind: str,
                                                           where: float, seed: int) -> None:
    lines, head = real_log
    rnd = random.Random(seed)
    # an edit anywhere, the last record included: the head (known from elsewhere) closes the end of the chain
    last = len(lines) - (2 if kind == "swap" else 1)
    at = 1 + int(where * last) if kind != "remove" else 1 + int(where * (len(lines) - 1))
    at = min(at, last)
    edited, near = _edit(lines, kind, at, rnd)
    path = tmp_path_factory.mktemp("edited") / "decisions.jsonl"
    path.write_bytes(b"".join(edited))
    report = verify([path], head=head)
    assert report.tampered, (kind, at)
    first = report.findings[0]
    if at < len(lines) - 1 or kind in ("duplicate", "insert"):  # not at the very end: the chain itself says which
        assert first.kind in EXPECTED[kind], (kind, at, [str(f) for f in report.findings])
        assert first.line in near, (kind, at, [str(f) for f in report.findings])
    result = CliRunner().invoke(main, ["log", "verify", str(path), "--head", head])
    assert result.exit_code == 1 and "tampered with" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_chain_crosses_rotation_and_each_file_names_the_one_before(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = write_log(path, 60, max_bytes=4096)
    assert log.writer.rotations >= 3
    files = [*sorted(tmp_path.glob("decisions.jsonl.*"), key=lambda p: -int(p.suffix[1:])), path]
    for before, after in itertools.pairwise(files):
        start = json.loads(after.read_text().splitlines()[0])
        assert start["log"] == "start" and start["previous"] == "decisions.jsonl.1"
        last = before.read_bytes().splitlines()[-1]
        assert start["prev"] == hashlib.sha256(last).hexdigest()
    assert verify(files, head=log.head()["hash"]).findings == []
    # a file left out of the middle of the series is records removed; given out of order, reordered
    assert verify(files[:1] + files[2:]).findings[0].kind == "removed"
    swapped = verify([files[1], files[0], *files[2:]]).findings
    assert swapped and swapped[0].kind in ("removed", "reordered")
    # the oldest files dropped by rotation: the series starts from a file not given, which is said, not an error
    later = verify(files[1:])
    assert later.findings == [] and "not given" in later.notes[0]


def test_a_power_cut_at_any_byte_leaves_every_whole_record_readable_and_a_torn_tail_named_as_such(
        tmp_path: Path) -> None:
    path = tmp_path / "full.jsonl"
    write_log(path, 20)
    data = path.read_bytes()
    ends = {i + 1 for i, b in enumerate(data) if b == ord("\n")}
    rnd = random.Random(26)
    for offset in sorted(rnd.sample(range(1, len(data)), 150)):
        cut = tmp_path / "cut.jsonl"
        cut.write_bytes(data[:offset])
        whole = sum(1 for e in ends if e <= offset)
        report = verify([cut])
        assert not report.tampered, (offset, [str(f) for f in report.findings])
        assert report.records == whole
        assert report.torn == (offset not in ends)
        records = list(read_records(cut))
        decisions = [r for _, r in records if isinstance(r, dict)]
        errors = [e for _, e in records if isinstance(e, str)]
        assert len(decisions) == max(0, whole - 1)  # the start record is the chain's, not a decision
        assert errors == ([] if offset in ends else [errors[0]]) and all(e.startswith("torn") for e in errors)
        result = CliRunner().invoke(main, ["log", "replay", str(cut)])
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.exit_code == (0 if offset in ends else 1)
        verified = CliRunner().invoke(main, ["log", "verify", str(cut)])
        assert verified.exit_code == (0 if offset in ends else 1)
        assert ("torn" in verified.stdout) == (offset not in ends) and "tampered" not in verified.stderr


def test_a_restart_after_a_power_cut_drops_the_torn_tail_says_so_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    write_log(path, 6)
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # the last record torn
    log = write_log(path, 4)
    lines = path.read_text().splitlines()
    restart = next(json.loads(x) for x in lines[1:] if '"log":"start"' in x)
    assert restart["previous"] == "decisions.jsonl" and restart["dropped_torn_tail"]["bytes"] > 0
    report = verify([path], head=log.head()["hash"])
    assert report.findings == [] and report.records == 1 + 5 + 1 + 4  # the torn sixth record is gone, and said


def test_a_cut_at_the_end_is_found_only_against_the_head(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = write_log(path, 8)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]))
    assert verify([path]).findings == []  # what a chain alone cannot tell from fewer records written
    found = verify([path], head=log.head()["hash"]).findings
    assert [f.kind for f in found] == ["changed"] and "head" in found[0].message
