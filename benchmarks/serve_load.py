"""A bounded load test of `cmap-policy serve` on loopback, with the decision log on.

    python benchmarks/serve_load.py                      # the figures for docs/performance.md (a few minutes)
    python benchmarks/serve_load.py --seconds 2 --batch-lines 2000 --batches 2    # a quick run
    python benchmarks/serve_load.py --log-fsync always     # the cost of a decision log synced before each answer

It starts `cmap-policy serve` in its own process on a SYNTHETIC policy of 400 codes (the size of a real
state's table; `cmap_policy.testing.synthetic_policy`), with `--log` on and the access log off, and drives
it with an asyncio client of raw keep-alive HTTP/1.1 connections (each waits for its answer before the next
request, so latency is measured per request). It prints:

1. single-line `POST /v1/decide`: decisions/s and p50/p99 latency, at the client's concurrency;
2. `POST /v1/decide/batch` of `--batch-lines` lines (JSON Lines of `random_records`): lines/s;
3. the same decisions by an in-process loop (`Decider.answer`, what the service does per line, no HTTP);
4. `POST /v1/decide/batch` of `--big-lines` lines of the batch engine's benchmark feed (`testing.feed`), as a
   JSON Lines body answered in JSON Lines and as an Arrow IPC stream answered in Arrow, each beside the
   in-process engine on the same lines (`Engine.check` and `Engine.answer`, the output table made, no HTTP,
   no log) and beside the service's own batch road in process (the same code as the endpoint, no HTTP);
5. a hot reload during load (single lines and batches together): a code's row is ended in the policy tree
   while requests run; every request must be answered (none lost), no response may mix policy hashes, and
   after a SIGTERM the decision log must hold exactly one record per answered decision (counted);
6. the decision log's hash chain checked after the run (`cmap-policy log verify`);
7. the load average before and after.

The client runs on the same machine and takes CPU from the server: on 2 cores the figures are the service
and its client together. Figures go to standard output and, as JSON, to benchmarks/results/serve-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.ipc as ipc  # noqa: E402

from cmap_policy.engines.batch import Engine  # noqa: E402
from cmap_policy.formats import MEDIA_TYPE_OF  # noqa: E402
from cmap_policy.load import load_policy  # noqa: E402
from cmap_policy.service import batch  # noqa: E402
from cmap_policy.service.chain import verify  # noqa: E402
from cmap_policy.service.decisions import Decider  # noqa: E402
from cmap_policy.testing import synthetic_policy, write_tree  # noqa: E402
from cmap_policy.testing.claims import random_records  # noqa: E402
from cmap_policy.testing.feed import claims_table  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def request(method: str, path: str, body: bytes = b"", content_type: str = "application/json",
            accept: str | None = None) -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: {content_type}\r\n"
            + (f"accept: {accept}\r\n" if accept else "") + f"content-length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response: Content-Length or chunked (the batch streams)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.ids: list[str] = []
        self.failed = 0
        self.mixed = 0  # responses holding more than one policy hash
        self.hashes: set[str] = set()


def check_body(body: bytes, tally: Tally, *, parse: bool = True) -> int:
    """Count a response's results; parsed, also its decision ids and policy hashes (the reload run checks them).

    The throughput run only counts lines: parsing 100,000 results in Python would measure the client.
    """
    if not parse:
        return body.count(b"\n")
    results = [json.loads(x) for x in body.splitlines() if x.strip()]
    hashes = {r["policy_hash"] for r in results if "policy_hash" in r}
    if len(hashes) > 1:
        tally.mixed += 1
    tally.hashes |= hashes
    tally.ids.extend(r["decision_id"] for r in results if "decision_id" in r)
    return len(results)


async def single_worker(port: int, bodies: list[bytes], until: float, tally: Tally, offset: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < until:
            payload = request("POST", "/v1/decide", bodies[i % len(bodies)])
            i += 1
            t0 = time.perf_counter()
            writer.write(payload)
            status, body = await read_response(reader)
            tally.latencies.append(time.perf_counter() - t0)
            if status != 200:
                tally.failed += 1
            else:
                check_body(body, tally)
    finally:
        writer.close()


async def batch_worker(port: int, body: bytes, count: int, tally: Tally, stop_at: float | None = None, *,
                       parse: bool = True) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = 0
    try:
        for _ in range(count):
            if stop_at is not None and time.perf_counter() > stop_at:
                break
            t0 = time.perf_counter()
            writer.write(request("POST", "/v1/decide/batch", body, "application/x-ndjson"))
            status, answer = await read_response(reader)
            tally.latencies.append(time.perf_counter() - t0)
            if status != 200:
                tally.failed += 1
            else:
                lines += check_body(answer, tally, parse=parse)
    finally:
        writer.close()
    return lines


async def get_json(port: int, path: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n".encode())
    _, body = await read_response(reader)
    writer.close()
    return json.loads(body)


async def singles(port: int, bodies: list[bytes], seconds: float, concurrency: int) -> dict[str, Any]:
    tally = Tally()
    until = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(single_worker(port, bodies, until, tally, k * 7919) for k in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"decisions": len(tally.ids), "seconds": elapsed, "decisions_per_s": len(tally.ids) / elapsed,
            "p50_ms": percentile(tally.latencies, 0.50) * 1000, "p99_ms": percentile(tally.latencies, 0.99) * 1000,
            "failed": tally.failed, "concurrency": concurrency}


async def batches(port: int, body: bytes, n_lines: int, count: int) -> dict[str, Any]:
    tally = Tally()
    t0 = time.perf_counter()
    lines = await batch_worker(port, body, count, tally, parse=False)
    elapsed = time.perf_counter() - t0
    return {"lines": lines, "requests": count, "lines_per_request": n_lines, "seconds": elapsed,
            "lines_per_s": lines / elapsed, "failed": tally.failed,
            "p50_request_ms": percentile(tally.latencies, 0.5) * 1000}


def in_process(policy_dir: Path, records: list[dict[str, Any]], batch_body: bytes) -> dict[str, Any]:
    decider = Decider(load_policy(policy_dir))
    for rec in records[:2000]:  # warm the interpreter's and the JSON caches, as the service's are
        decider.answer(rec, 1, None)
    t0 = time.perf_counter()
    for rec in records:
        decider.answer(rec, 1, None)
    single = len(records) / (time.perf_counter() - t0)
    road = road_in_process(decider, batch_body, "jsonl")
    return {"single_decisions_per_s": single, "batch_lines_per_s": road["lines_per_s"]}


def road_in_process(decider: Decider, body: bytes, fmt: str) -> dict[str, Any]:
    """The service's batch road without HTTP: the body read, decided and answered as the endpoint does (a warm
    run first, as a running service's caches are), the log aside."""
    columnar = batch.Columnar(decider)

    def run() -> tuple[int, int]:
        encoder, lines, size = batch.Encoder(fmt), 0, 0
        for read in batch.read_body(fmt, io.BytesIO(body), decider.policy, batch.rows_for(fmt), records=False):
            decided = batch.decide(columnar, read, None)
            lines += decided.enc.rows + len(decided.errors)
            size += len(encoder.piece(decider, decided, batch.decision_ids(decided.enc.rows)))
        return lines, size + len(encoder.end())

    run()
    t0 = time.perf_counter()
    lines, size = run()
    elapsed = time.perf_counter() - t0
    return {"lines": lines, "seconds": elapsed, "lines_per_s": lines / elapsed, "answer_bytes": size}


def engine_in_process(policy_dir: Path, table: pa.Table) -> dict[str, Any]:
    """The batch engine on the same lines: checked, decided and its output table made, in the road's batches."""
    policy = load_policy(policy_dir)
    engine = Engine(policy)

    def run() -> int:
        rows = 0
        for start in range(0, table.num_rows, batch.COLUMN_ROWS):
            part = table.slice(start, batch.COLUMN_ROWS)
            enc, errors = engine.check(part, pa.array(np.arange(start + 1, start + part.num_rows + 1)))
            rows += engine.answer(enc).table().num_rows + errors.num_rows
        return rows

    run()
    t0 = time.perf_counter()
    rows = run()
    elapsed = time.perf_counter() - t0
    return {"lines": rows, "seconds": elapsed, "lines_per_s": rows / elapsed}


def feed_bodies(policy_dir: Path, n: int) -> tuple[pa.Table, bytes, bytes]:
    """``n`` lines of the batch engine's benchmark feed: the table, as JSON Lines, and as an Arrow IPC stream."""
    table = claims_table(load_policy(policy_dir), n, np.random.default_rng(7))
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=65_536)
    out = io.BytesIO()
    pajson_lines(table, out)
    return table, out.getvalue(), sink.getvalue()


def pajson_lines(table: pa.Table, out: io.BytesIO) -> None:
    """The table as JSON Lines, nulls left out, dates as text (what a client would send)."""
    for rb in table.to_batches(100_000):
        for row in rb.to_pylist():
            out.write(json.dumps({k: (v.isoformat() if isinstance(v, dt.date) else v)
                                  for k, v in row.items() if v is not None}).encode() + b"\n")


async def big_request(port: int, body: bytes, content_type: str, accept: str) -> dict[str, Any]:
    """One batch request of a large body; the answer counted (JSON Lines by its lines, Arrow by its rows)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    t0 = time.perf_counter()
    writer.write(request("POST", "/v1/decide/batch", body, content_type, accept))
    status, answer = await read_response(reader)
    elapsed = time.perf_counter() - t0
    writer.close()
    if status != 200:
        raise SystemExit(f"the batch request failed ({status}): {answer[:500]!r}")
    lines = answer.count(b"\n") if accept == MEDIA_TYPE_OF["jsonl"] else ipc.open_stream(answer).read_all().num_rows
    return {"lines": lines, "seconds": elapsed, "lines_per_s": lines / elapsed, "body_bytes": len(body),
            "answer_bytes": len(answer)}


async def reload_under_load(port: int, root: Path, bodies: list[bytes], batch_body: bytes, seconds: float,
                            concurrency: int) -> dict[str, Any]:
    """Load from singles and batches; a code's row ends halfway; nothing is lost or mixed."""
    before = (await get_json(port, "/health"))["policy_hash"]
    single_tally, batch_tally = Tally(), Tally()
    until = time.perf_counter() + seconds
    workers: list[Coroutine[Any, Any, object]] = [single_worker(port, bodies, until, single_tally, k * 104729)
                                                  for k in range(concurrency)]
    workers.append(batch_worker(port, batch_body, 10**6, batch_tally, stop_at=until))

    async def change() -> float:
        await asyncio.sleep(seconds / 3)
        path = sorted((root / "codes").glob("*.json"))[0]
        data = json.loads(path.read_text())
        last = data["periods"][-1]
        last["end"] = max(last["effective"], "2021-01-01")
        last["ended_in"] = json.loads((root / "releases.json").read_text())["releases"][-1]["id"]
        path.write_text(json.dumps(data, indent=2))
        t0 = time.perf_counter()
        while (await get_json(port, "/health"))["policy_hash"] == before:
            await asyncio.sleep(0.05)
        return time.perf_counter() - t0

    *_, swap_seconds = await asyncio.gather(*workers, change())
    after = (await get_json(port, "/health"))["policy_hash"]
    return {"hash_before": before, "hash_after": after, "swap_seconds": swap_seconds,
            "answered_decisions": len(single_tally.ids) + len(batch_tally.ids),
            "ids": single_tally.ids + batch_tally.ids,
            "failed_requests": single_tally.failed + batch_tally.failed,
            "mixed_responses": single_tally.mixed + batch_tally.mixed,
            "hashes_seen": sorted(single_tally.hashes | batch_tally.hashes)}


def start_server(policy_dir: Path, log: Path | None, port: int, fsync: str = "never", *,
                 watch: bool = True) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "cmap_policy", "serve", "--policy", str(policy_dir), "--port", str(port),
           "--no-access-log", "--max-batch-body", str(4 << 30), "--watch" if watch else "--no-watch",
           *(["--log", str(log), "--log-max-bytes", str(1 << 40), "--log-fsync", fsync] if log is not None else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                if b" 200 " in s.recv(100):
                    return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codes", type=int, default=400, help="codes of the synthetic policy (default 400)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the single-line and reload runs")
    ap.add_argument("--concurrency", type=int, default=16, help="client connections for single lines")
    ap.add_argument("--batch-lines", type=int, default=100_000, help="lines per batch request")
    ap.add_argument("--batches", type=int, default=10, help="batch requests")
    ap.add_argument("--big-lines", type=int, default=1_000_000,
                    help="lines of the large JSON Lines and Arrow requests (default 1,000,000)")
    ap.add_argument("--log-fsync", choices=["never", "interval", "always"], default="never",
                    help="the server's --log-fsync (default never)")
    args = ap.parse_args()

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_tree(synthetic_policy(args.codes, seed=0), Path(tmp) / "policy")
        policy = load_policy(root)
        records = list(random_records(policy, max(20_000, args.batch_lines), seed=1))
        bodies = [json.dumps({k: v for k, v in r.items() if v != ""}).encode() for r in records[:20_000]]
        batch_lines = [json.dumps(r).encode() for r in records[:args.batch_lines]]
        batch_body = b"\n".join(batch_lines) + b"\n"
        log = Path(tmp) / "decisions.jsonl"
        port = free_port()
        proc = start_server(root, log, port, args.log_fsync)
        try:
            result: dict[str, Any] = {}
            asyncio.run(singles(port, bodies, min(2.0, args.seconds), args.concurrency))  # warm up
            result["single"] = asyncio.run(singles(port, bodies, args.seconds, args.concurrency))
            result["batch"] = asyncio.run(batches(port, batch_body, args.batch_lines, args.batches))
            reload = asyncio.run(reload_under_load(port, root, bodies, b"\n".join(batch_lines[:5000]) + b"\n",
                                                   args.seconds, args.concurrency))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        records = [json.loads(x) for x in log.read_text().splitlines()]
        logged = [r["decision_id"] for r in records if "decision_id" in r]  # not the chain's start records
        chain = verify([log])
        result["log_chain"] = {"records": chain.records, "findings": [str(f) for f in chain.findings]}
        ids = reload.pop("ids")
        warm = len(logged) - result["single"]["decisions"] - result["batch"]["lines"] - len(ids)  # + bad lines
        reload_ids = set(ids)
        reload["log_records_for_answered"] = sum(1 for x in logged if x in reload_ids)
        reload["log_records_total"] = len(logged)
        reload["log_duplicates"] = len(logged) - len(set(logged))
        result["reload"] = reload
        result["warm_up_decisions"] = warm
        result["in_process"] = in_process(root, [json.loads(b) for b in bodies], batch_body)
        result["big"] = big_requests(root, args.big_lines)
    result["load_average"] = {"start": load_start, "end": os.getloadavg()}
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    result["command"] = " ".join(["python", "benchmarks/serve_load.py", *sys.argv[1:]])
    result["log_fsync"] = args.log_fsync
    report(result)
    out = HERE / "results" / f"serve-{dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H%M%SZ')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nraw figures: {out.relative_to(HERE.parent)}")


def big_requests(root: Path, n: int) -> dict[str, Any]:
    """The large JSON Lines and Arrow requests on a server of their own (decision log off), each beside the
    in-process engine and the in-process road on the same lines."""
    table, jsonl, arrow = feed_bodies(root, n)
    out: dict[str, Any] = {"lines_per_request": n, "engine": engine_in_process(root, table)}
    decider = Decider(load_policy(root))
    out["road_jsonl"] = road_in_process(decider, jsonl, "jsonl")
    out["road_arrow"] = road_in_process(decider, arrow, "arrow")
    port = free_port()
    proc = start_server(root, None, port, watch=False)
    try:
        for name, body in (("jsonl", jsonl), ("arrow", arrow)):
            media = MEDIA_TYPE_OF[name]
            asyncio.run(big_request(port, body, media, media))  # warm the service's engine, as a busy one is
            out[f"http_{name}"] = asyncio.run(big_request(port, body, media, media))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    return out


def report(r: dict[str, Any]) -> None:
    s, b, p, rl = r["single"], r["batch"], r["in_process"], r["reload"]
    rows = [
        (f"single-line POST /v1/decide, decision log on (--log-fsync {r['log_fsync']})",
         f"{s['decisions_per_s']:,.0f} decisions/s, p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms "
         f"({s['concurrency']} connections, {s['failed']} failed)"),
        ("the same lines, in-process loop (Decider.answer)", f"{p['single_decisions_per_s']:,.0f} decisions/s"),
        (f"POST /v1/decide/batch, {b['lines_per_request']:,} lines a request",
         f"{b['lines_per_s']:,.0f} lines/s ({b['requests']} requests, p50 {b['p50_request_ms']:.0f} ms a request)"),
        ("the same lines, the batch road in process (no HTTP)", f"{p['batch_lines_per_s']:,.0f} lines/s"),
        *big_rows(r["big"]),
        ("hot reload under load",
         f"{rl['answered_decisions']:,} decisions answered, {rl['failed_requests']} requests failed, "
         f"{rl['mixed_responses']} responses mixing policies, hashes seen {len(rl['hashes_seen'])}, "
         f"swapped in {rl['swap_seconds']:.2f} s"),
        ("decision log after SIGTERM",
         f"{rl['log_records_for_answered']:,} records for {rl['answered_decisions']:,} answered decisions, "
         f"{rl['log_duplicates']} duplicates, {r['warm_up_decisions']:,} records for warm-up decisions"),
        ("decision log's hash chain (log verify)",
         f"{r['log_chain']['records']:,} records, {len(r['log_chain']['findings'])} findings"),
        ("load average (1, 5, 15 min)", f"start {r['load_average']['start']}, end {r['load_average']['end']}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def big_rows(g: dict[str, Any]) -> list[tuple[str, str]]:
    n = f"{g['lines_per_request']:,}"
    return [
        (f"POST /v1/decide/batch, {n} lines, JSON Lines in and out",
         f"{g['http_jsonl']['lines_per_s']:,.0f} lines/s ({g['http_jsonl']['body_bytes'] / 1e6:,.0f} MB in, "
         f"{g['http_jsonl']['answer_bytes'] / 1e6:,.0f} MB out)"),
        ("  the same, the batch road in process (no HTTP)", f"{g['road_jsonl']['lines_per_s']:,.0f} lines/s"),
        (f"POST /v1/decide/batch, {n} lines, Arrow IPC in and out",
         f"{g['http_arrow']['lines_per_s']:,.0f} lines/s ({g['http_arrow']['body_bytes'] / 1e6:,.0f} MB in, "
         f"{g['http_arrow']['answer_bytes'] / 1e6:,.0f} MB out)"),
        ("  the same, the batch road in process (no HTTP)", f"{g['road_arrow']['lines_per_s']:,.0f} lines/s"),
        ("  the same lines, the batch engine in process", f"{g['engine']['lines_per_s']:,.0f} lines/s"),
    ]


if __name__ == "__main__":
    main()
