"""`POST /v1/decide/batch` on the columnar road, on a real uvicorn: every body format, every answer format,
line for line what `eval` says; hostile lines read by the same guard as `eval`; the log and the metrics."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from cmap_policy import api
from cmap_policy.load import load_policy
from cmap_policy.service import ServiceConfig
from cmap_policy.service.log import read_records
from cmap_policy.testing import synthetic_policy, write_tree
from cmap_policy.testing.claims import random_records

from .service_support import Running, serve, wait_until

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(synthetic_policy(60, seed=3), tmp_path_factory.mktemp("synthetic") / "policy")


@pytest.fixture(scope="module")
def server(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    log = tmp_path_factory.mktemp("log") / "decisions.jsonl"
    with serve(ServiceConfig(policy=synthetic, log=log, watch=False, access_log=False)) as running:
        yield running


@pytest.fixture(scope="module")
def records(synthetic: Path) -> list[dict[str, Any]]:
    return list(random_records(load_policy(synthetic), 3000, seed=11, messy=0.1))


def _expected(records: list[dict[str, Any]], synthetic: Path) -> list[dict[str, Any]]:
    """What `eval` prints for each record (the API `eval` is a thin layer over)."""
    return [r.as_dict() for r in api.eval_lines(records, policy=synthetic)]


def _without_id(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "decision_id"}


def _jsonl(records: list[Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def _post(server: Running, body: bytes, content_type: str, accept: str | None = None) -> Any:
    headers = {"content-type": content_type, **({"accept": accept} if accept else {})}
    with server.client() as c:
        got = c.post("/v1/decide/batch", content=body, headers=headers)
    assert got.status_code == 200, got.text
    return got


def _arrow_body(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=700)
    return sink.getvalue()


def test_json_lines_answers_are_what_eval_prints_line_for_line(server: Running, records: list[dict[str, Any]],
                                                                synthetic: Path) -> None:
    got = _post(server, _jsonl(records), "application/x-ndjson")
    assert got.headers["content-type"].startswith("application/x-ndjson")
    results = [json.loads(x) for x in got.text.splitlines()]
    expected = _expected(records, synthetic)
    assert len(results) == len(records)
    assert [_without_id(r) for r in results] == expected
    assert sum("error" in r for r in results) > 100  # the messy records' errors, in place
    decided = [r["decision_id"] for r in results if "error" not in r]
    assert len(set(decided)) == len(decided) == len(records) - sum("error" in r for r in results)


def test_lines_one_limit_refuses_keep_their_own_message(server: Running, synthetic: Path) -> None:
    # the batch engine decides these lines as one slot (a value the row's age limit refuses), but the message
    # names each line's own age: each line's JSON must still be what eval prints for it
    policy = load_policy(synthetic)
    limited = next((code, p) for code, view in policy.views[policy.latest.id].items() for p in view.periods
                   if any(lim.kind == "age" and lim.min_age and not lim.modalities for lim in p.limits)
                   and p.end is None and p.permitted)
    code, period = limited
    day = period.effective.isoformat()
    lines = [{"code": code, "date": day, "modifiers": ["95"], "pos": "02", "member_age": age} for age in (0, 1, 2, 3)]
    results = [json.loads(x) for x in _post(server, _jsonl(lines), "application/x-ndjson").text.splitlines()]
    assert [_without_id(r) for r in results] == _expected(lines, synthetic)
    messages = [" ".join(r["message"] for r in res["reasons"]) for res in results]
    assert len(set(messages)) == 4


def test_hostile_lines_are_read_as_eval_reads_them(server: Running, synthetic: Path) -> None:
    good = {"code": "T1016", "date": "2026-01-05", "modifiers": ["95"]}
    body = b"\n".join([
        orjson.dumps(good),
        b'{"code": "T1016", "date": "2026-01-05", "units": ' + b"9" * 5000 + b"}",  # past orjson, and the guard
        "\u00a0\u00a0\u00a0".encode(),  # only non-breaking spaces: a blank line, skipped as eval skips it
        b"[" * 100 + b"]" * 100,  # deeper than the guard allows (orjson would take it)
        b'{"code": "T1016", "date": "2026-01-05", "units": NaN}',  # only the standard parser takes NaN
        b"\xff\xfe not utf-8",
        orjson.dumps(good),
    ]) + b"\n"
    with server.client() as c:
        got = c.post("/v1/decide/batch", content=body, headers={"content-type": "application/x-ndjson"})
    assert got.status_code == 200
    results = [json.loads(x) for x in got.text.splitlines()]
    expected = [r.as_dict() for r in api.eval_lines(io.BytesIO(body), policy=synthetic, input_format="jsonl")]
    assert [_without_id(r) for r in results] == expected
    assert [r["line"] for r in results] == [1, 2, 4, 5, 6, 7]
    assert "1,000 digits" in results[1]["error"] and "nested deeper" in results[2]["error"]


def test_lines_the_bulk_reader_reads_apart_come_back_in_their_place(server: Running, synthetic: Path) -> None:
    # a field given twice (by its name and an alias) is read by the interpreter's own reader, with the lines
    # around it, apart from the blocks Arrow reads: decided, and answered in its place, though no line of the
    # body is an error
    good = {"code": "T1016", "date": "2026-01-05", "modifiers": ["95"]}
    lines = [good] * 600 + [{**good, "procedure_code": "90791"}] + [good] * 600
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    for accept in ("application/x-ndjson", ARROW):
        got = _post(server, body, "application/x-ndjson", accept=accept)
        numbers = ([json.loads(x)["line"] for x in got.text.splitlines()] if accept != ARROW
                   else ipc.open_stream(got.content).read_all()["line"].to_pylist())
        assert numbers == list(range(1, len(lines) + 1))
    results = [json.loads(x) for x in _post(server, body, "application/x-ndjson").text.splitlines()]
    expected = [r.as_dict() for r in api.eval_lines(io.BytesIO(body), policy=synthetic, input_format="jsonl")]
    assert [_without_id(r) for r in results] == expected and results[600]["code"] == "90791"


def test_a_single_line_with_a_huge_number_is_a_problem_not_a_crash(server: Running) -> None:
    with server.client() as c:
        got = c.post("/v1/decide", content=b'{"code": "T1016", "date": "2026-01-05", "units": ' + b"9" * 5000 + b"}")
    assert got.status_code == 400
    assert "1,000 digits" in got.json()["detail"]


def test_a_json_array_is_answered_with_a_json_array(server: Running, records: list[dict[str, Any]],
                                                    synthetic: Path) -> None:
    items: list[Any] = [*records[:500], 42]
    got = _post(server, json.dumps(items).encode(), "application/json")
    results = got.json()
    assert [_without_id(r) for r in results] == _expected(items, synthetic)
    assert _post(server, b"[]", "application/json").json() == []


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()} for row in table.to_pylist()]


def _as_rows(expected: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """eval's answers as the columns an Arrow answer has."""
    out: list[tuple[Any, ...]] = []
    for e in expected:
        if "error" in e:
            out.append((e["line"], None, None, e["error"], e["field"]))
        else:
            out.append((e["line"], e["outcome"], " ".join(r["code"] for r in e["reasons"]), None, None))
    return out


def test_an_arrow_stream_is_answered_with_an_arrow_stream(server: Running, records: list[dict[str, Any]],
                                                          synthetic: Path) -> None:
    clean = [r for r in records if isinstance(r.get("units", 0), int) and isinstance(r.get("member_age", 0), int)]
    table = pa.Table.from_pylist([{**r, "modifiers": r.get("modifiers") or None} for r in clean])
    got = _post(server, _arrow_body(table), ARROW)
    assert got.headers["content-type"] == ARROW
    answer = ipc.open_stream(got.content).read_all()
    assert answer.num_rows == table.num_rows  # lines in = results out
    expected = _expected(clean, synthetic)
    rows = _rows(answer)
    assert [(r["line"], r["outcome"], r["reasons"], r["error"], r["field"]) for r in rows] == _as_rows(expected)
    assert all(r["decision_id"] for r in rows if r["error"] is None)
    # the same body answered as JSON Lines when Accept asks: eval's JSON, line for line
    as_json = _post(server, _arrow_body(table), ARROW, accept="application/x-ndjson")
    assert [_without_id(json.loads(x))["outcome" if "error" not in json.loads(x) else "error"]
            for x in as_json.text.splitlines()] == [e.get("outcome", e.get("error")) for e in expected]


def test_json_lines_answered_as_arrow_and_parquet_answered_as_parquet(server: Running, records: list[dict[str, Any]],
                                                                      synthetic: Path) -> None:
    expected = _as_rows(_expected(records, synthetic))
    got = _post(server, _jsonl(records), "application/x-ndjson", accept=ARROW)
    rows = _rows(ipc.open_stream(got.content).read_all())
    assert [(r["line"], r["outcome"], r["reasons"], r["error"], r["field"]) for r in rows] == expected
    clean = [r for r in records if all(isinstance(v, str) or k == "modifiers" for k, v in r.items())]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(clean), sink, row_group_size=400)
    got = _post(server, sink.getvalue(), PARQUET)
    assert got.headers["content-type"] == PARQUET
    rows = _rows(pq.read_table(io.BytesIO(got.content)))
    assert [(r["line"], r["outcome"], r["reasons"], r["error"], r["field"]) for r in rows] == _as_rows(
        _expected(clean, synthetic))


def test_a_body_that_is_not_its_format_is_a_problem(server: Running) -> None:
    with server.client() as c:
        broken = c.post("/v1/decide/batch", content=b"\xff\xff\xff\xff garbage", headers={"content-type": ARROW})
        array = c.post("/v1/decide/batch", content=b'[{"code": ', headers={"content-type": "application/json"})
        csv = c.post("/v1/decide/batch", content=b"code,date\nT1016,2026-01-05\n", headers={"content-type": "text/csv"})
    assert csv.status_code == 415 and "text/csv" in csv.json()["detail"]
    assert broken.status_code == 400 and "Arrow" in broken.json()["detail"]
    assert array.status_code == 400 and array.json()["type"].endswith("invalid-json")


def test_the_log_has_one_record_per_decided_line_and_the_metrics_count_them(server: Running,
                                                                            records: list[dict[str, Any]]) -> None:
    log = server.service.decision_log
    before = log.writer.written
    got = _post(server, _jsonl(records[:1000]), "application/x-ndjson")
    results = [json.loads(x) for x in got.text.splitlines()]
    decided = {r["decision_id"]: r for r in results if "error" not in r}
    wait_until(lambda: log.writer.written - before == len(decided) and log.writer.backlog() == 0,
               what="the decision records")
    log.writer._file.flush()
    logged = [rec for _, rec in read_records(log.writer.path) if isinstance(rec, dict)
              and rec["decision_id"] in decided]
    assert len(logged) == len(decided)
    for rec in logged:
        result = decided[rec["decision_id"]]
        assert rec["source"] == "/v1/decide/batch"
        assert rec["outcome"] == result["outcome"] and rec["reasons"] == [r["code"] for r in result["reasons"]]
        assert rec["input"] == records[result["line"] - 1] and rec["release"] == result["release"]


def test_the_log_gets_each_line_as_sent_when_a_body_is_read_in_many_batches(
        synthetic: Path, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The records the decision log keeps of a JSON Lines body, batch after batch: each decided line's own
    record, and nothing held of a batch once it was asked for (the lines were once dropped by finding the
    first key again and again, quadratic in a batch)."""
    from cmap_policy.service import batch
    from cmap_policy.service.decisions import Decider

    monkeypatch.setattr(batch, "READ_BYTES", 4096)  # a body arriving in small pieces, read in small batches
    policy = load_policy(synthetic)
    columnar = batch.Columnar(Decider(policy))
    asked = 0
    for read in batch.read_body("jsonl", io.BytesIO(_jsonl(records)), policy, 200, records=True):
        numbers = batch.decide(columnar, read, None).enc.numbers  # the decided lines, as the log asks for them
        # and, in every other batch, as if every third one were not asked for
        wanted = numbers[numbers % 3 != 0] if asked % 2 else numbers
        assert read.records(wanted) == [records[n - 1] for n in wanted.tolist()]
        asked += 1
    assert asked > 5  # the body was read in several batches
