"""Benchmark: the interpreter, the batch engine and the peer engines, on one machine, in one run.

    python benchmarks/run.py                    # 1 M and 10 M lines (several minutes)
    python benchmarks/run.py --lines 1e5,1e6    # a quick run

Prints a table and writes it as JSON to benchmarks/results/. Every figure is
also given as a ratio to the plain-Python baseline (a dict + bisect loop
deciding the same lines), since absolute times depend on the machine and on
what else runs on it.

The policy is SYNTHETIC (``cmap_policy.testing.synthetic_policy``, 400 codes
by default); the lines are generated with a fixed seed. Every engine's answers
are checked against the interpreter on the latency sample before its figures
are reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import Cedar, Line, PlainPython, Zen  # noqa: E402

from cmap_policy import ClaimLine, load_policy  # noqa: E402
from cmap_policy.interpreter import _MEMOS, decide, evaluate  # noqa: E402
from cmap_policy.model import Policy  # noqa: E402
from cmap_policy.testing import synthetic_policy, write_tree  # noqa: E402

CHUNK = 1_000_000
EPOCH = dt.date(1970, 1, 1)
MODIFIERS = (("95", 35), ("GT", 10), ("93", 15), ("FQ", 3), ("", 20), ("95 25", 7), ("93 GT", 2), ("G0", 1),
             ("25", 5), ("GQ", 2))
PLACES = (("11", 55), ("02", 5), ("10", 5), ("", 35))
UNLISTED = ("99213", "99214", "90834", "G2012", "A0001")


# --- data ---

def _choice(rng: np.random.Generator, items: tuple[tuple[str, int], ...], n: int) -> np.ndarray:
    values = np.array([v for v, _ in items], dtype=object)
    weights = np.array([w for _, w in items], dtype=float)
    return values[rng.choice(len(values), n, p=weights / weights.sum())]


def _chunk(policy: Policy, rng: np.random.Generator, start: int, n: int) -> pa.Table:
    codes = np.array([*policy.codes, *UNLISTED], dtype=object)
    weights = np.concatenate([1.0 / np.arange(1, len(policy.codes) + 1) ** 0.6, np.full(len(UNLISTED), 0.5)])
    code = codes[rng.choice(len(codes), n, p=weights / weights.sum())]
    # two years of dates of service, as a claims feed of a few million lines would have
    day0 = (dt.date(2025, 1, 1) - EPOCH).days
    day = rng.integers(day0, day0 + 2 * 365, n).astype(np.int32)
    institutional = rng.random(n) < 0.2
    rccs = np.array(["0510", "0513", "0900", "0914", "0915", "0916", "0918", None], dtype=object)
    rcc = np.where(institutional, rccs[rng.integers(0, len(rccs), n)], None)

    def some(values: np.ndarray, share: float) -> list[Any]:
        return np.where(rng.random(n) < share, values, None).tolist()

    return pa.table({
        "line_id": pa.array(np.char.add("L", np.arange(start + 1, start + n + 1).astype(str))),
        "code": pa.array(code.tolist(), pa.string()),
        "date": pa.array(day).cast(pa.date32()),
        "modifiers": pa.array(_choice(rng, MODIFIERS, n).tolist(), pa.string()),
        "pos": pa.array([p or None for p in _choice(rng, PLACES, n).tolist()], pa.string()),
        "claim_type": pa.array(np.where(institutional, "institutional", "professional").tolist(), pa.string()),
        "rcc": pa.array(rcc.tolist(), pa.string()),
        "member_age": pa.array(some(rng.integers(0, 91, n), 0.7), pa.int32()),
        "provider_type": pa.array(some(np.array(["clinic", "physician", "fqhc", "behavioral-health-agency"],
                                                dtype=object)[rng.integers(0, 4, n)], 0.4), pa.string()),
        "units": pa.array(some(rng.integers(1, 9, n), 0.6), pa.int32()),
        "established_patient": pa.array(some(rng.random(n) < 0.8, 0.5), pa.bool_()),
    })


def make_data(policy: Policy, n: int, folder: Path) -> tuple[Path, Path]:
    """n lines as Parquet (typed columns) and as CSV, written a chunk at a time."""
    parquet, csv_path = folder / f"lines-{n}.parquet", folder / f"lines-{n}.csv"
    if parquet.exists() and csv_path.exists():
        return parquet, csv_path
    rng = np.random.default_rng(20260101)
    pw = cw = None
    for start in range(0, n, CHUNK):
        t = _chunk(policy, rng, start, min(CHUNK, n - start))
        pw = pw or pq.ParquetWriter(parquet, t.schema)
        pw.write_table(t)
        text = t.set_column(2, "date", t["date"].cast(pa.string()))
        cw = cw or pacsv.CSVWriter(str(csv_path), text.schema,
                                   write_options=pacsv.WriteOptions(quoting_style="none"))
        cw.write_table(text)
    assert pw is not None and cw is not None
    pw.close()
    cw.close()
    return parquet, csv_path


def claim_lines(table: pa.Table) -> list[ClaimLine]:
    out = []
    for r in table.to_pylist():
        out.append(ClaimLine(code=r["code"], date=r["date"], modifiers=tuple(r["modifiers"].split()),
                             pos=r["pos"], claim_type=r["claim_type"], rcc=r["rcc"], member_age=r["member_age"],
                             provider_type=r["provider_type"], units=r["units"],
                             established_patient=r["established_patient"], line_id=r["line_id"]))
    return out


# --- latency ---

def _percentiles(ns: list[int]) -> dict[str, float]:
    ns = sorted(ns)
    return {"p50_us": ns[len(ns) // 2] / 1000, "p99_us": ns[min(len(ns) - 1, int(len(ns) * 0.99))] / 1000,
            "mean_us": sum(ns) / len(ns) / 1000}


def latency(policy: Policy, lines: list[ClaimLine], peer_lines: int) -> dict[str, dict[str, Any]]:
    clock = time.perf_counter_ns
    plain = PlainPython(policy)
    tuples = [Line.of(ln) for ln in lines]
    want = [decide(policy, ln) for ln in lines[:peer_lines]]
    want_answers = [(d.outcome.value, d.reason_codes, d.period.id if d.period else None) for d in want]
    out: dict[str, dict[str, Any]] = {}

    def timed(name: str, fn: Any, items: list[Any], check: list[Any] | None = None) -> None:
        ns = []
        answers = []
        for item in items:
            t = clock()
            a = fn(item)
            ns.append(clock() - t)
            answers.append(a)
        row: dict[str, Any] = {"lines": len(items), **_percentiles(ns)}
        if check is not None:
            row["agree"] = sum(a == b for a, b in zip(answers, check, strict=False)) / len(check)
        out[name] = row

    half = len(lines) // 2
    timed("plain", plain.decide, tuples[half:], None)
    out["plain"]["agree"] = sum(plain.decide(t) == w for t, w in zip(tuples, want_answers, strict=False)) / len(want)
    _MEMOS.clear()
    # the cache starts empty, then the stream goes on: the second half is what a running service sees
    timed("interpreter_first", lambda ln: evaluate(policy, ln), lines[:half], list(want))
    timed("interpreter", lambda ln: evaluate(policy, ln), lines[half:])
    timed("interpreter_uncached", lambda ln: decide(policy, ln), lines[: max(peer_lines, 20_000)])
    zen = Zen(policy)
    timed("zen", zen.decide, tuples[:peer_lines], want_answers)
    cedar = Cedar(policy)
    timed("cedar", cedar.decide, tuples[:peer_lines], [(o, r, None) for o, r, _ in want_answers])
    return out


# --- batch, in child processes (end to end, with their own peak RSS) ---

def _child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    # exit code 1 is a run that decided every good line and reported some bad ones; anything else failed
    if code not in (0, 1) or (code == 1 and "lines read" not in err):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err}")
    return {"seconds": elapsed, "peak_rss_mb": usage.ru_maxrss / 1024}


def cli() -> str:
    found = shutil.which("cmap-policy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("cmap-policy is not installed in this environment: pip install -e '.[bench]'")
    return found


def batch_duckdb(src: Path, out: Path, policy_dir: Path) -> dict[str, Any]:
    return _child([cli(), "eval", str(src), "-o", str(out), "--policy", str(policy_dir)])


PLAIN_BATCH = """
import sys
sys.path.insert(0, {here!r})
import pyarrow as pa, pyarrow.parquet as pq
from baselines import Line, PlainPython
from cmap_policy import load_policy
policy = load_policy({policy!r})
engine = PlainPython(policy)
epoch = 719163  # date(1970, 1, 1).toordinal()
writer = None
for rb in pq.ParquetFile({src!r}).iter_batches(batch_size=1_000_000):
    cols = rb.to_pydict()
    out = {{"line_id": cols["line_id"], "outcome": [], "reasons": [], "period": []}}
    for code, day, mods, pos, ct, rcc, age, pt, units, est in zip(cols["code"], cols["date"], cols["modifiers"],
            cols["pos"], cols["claim_type"], cols["rcc"], cols["member_age"], cols["provider_type"], cols["units"],
            cols["established_patient"]):
        o, r, p = engine.decide(Line(code, day.toordinal() - epoch, tuple(mods.split()), pos, ct, rcc, None, age,
                                     pt, units, est))
        out["outcome"].append(o)
        out["reasons"].append(" ".join(r))
        out["period"].append(p)
    t = pa.table(out)
    writer = writer or pq.ParquetWriter({out!r}, t.schema)
    writer.write_table(t)
writer.close()
"""


def batch_plain(src: Path, out: Path, policy_dir: Path) -> dict[str, Any]:
    code = PLAIN_BATCH.format(here=str(HERE), policy=str(policy_dir), src=str(src), out=str(out))
    return _child([sys.executable, "-c", code])


def cold_start(policy_dir: Path, runs: int = 5) -> dict[str, Any]:
    one = [cli(), "eval", "--code", "90791", "--date", "2026-01-15", "--modifier", "95"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "CMAP_POLICY_CACHE_DIR": cache}
        first = _child(one, env)["seconds"]  # an empty cache: the policy is checked and cached
        warm = [_child(one, env)["seconds"] for _ in range(runs)]
        nocache = [_child(one, {**env, "CMAP_POLICY_CACHE": "0"})["seconds"] for _ in range(runs)]
    python = [_child([sys.executable, "-c", "pass"])["seconds"] for _ in range(runs)]
    return {"first_run_s": first, "warm_cache_s": statistics.median(warm), "no_cache_s": statistics.median(nocache),
            "python_startup_s": statistics.median(python)}


# --- the run ---

def _command(argv: list[str]) -> str:
    """The command line as run, without the folders it named (they are this machine's)."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--work", "--out"):
            skip = True
            continue
        if not arg.startswith(("--work=", "--out=")):
            shown.append(arg)
    return " ".join(["python benchmarks/run.py", *shown])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", default="1e6,1e7", help="batch sizes, comma-separated (default 1e6,1e7)")
    parser.add_argument("--codes", type=int, default=400, help="codes in the synthetic policy (default 400)")
    parser.add_argument("--latency-lines", type=float, default=100_000,
                        help="lines timed one by one, twice over: from an empty cache, then on (default 1e5)")
    parser.add_argument("--peer-lines", type=int, default=2000, help="lines timed on cedarpy and zen (default 2000)")
    parser.add_argument("--plain-batch-max", type=float, default=1e6,
                        help="largest batch the plain-Python loop runs (default 1e6; it is slow)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated data (default: a temp)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.lines.split(",") if s]

    work = args.work or Path(tempfile.mkdtemp(prefix="cmap-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    policy_dir = write_tree(synthetic_policy(args.codes, seed=0), work / "policy")
    policy = load_policy(policy_dir)
    result: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.system(),
                    "load_average_at_start": os.getloadavg()},
        "policy": {"codes": len(policy.codes), "kind": "synthetic", "seed": 0},
        "command": _command(sys.argv[1:]),
    }
    print(f"policy: SYNTHETIC, {len(policy.codes)} codes; load average {os.getloadavg()[0]:.1f}", file=sys.stderr)

    first_parquet, _ = make_data(policy, max(min(sizes), 2 * int(args.latency_lines)), work)
    sample = claim_lines(pq.read_table(first_parquet).slice(0, 2 * int(args.latency_lines)))
    print(f"latency on {len(sample):,} lines ...", file=sys.stderr)
    result["latency"] = latency(policy, sample, args.peer_lines)

    result["batch"] = {}
    # one untimed run first, so that no timed run pays for reading the engine's libraries from disk
    warm = work / "warm-up.csv"
    warm.write_text("code,date,modifiers\n90791,2026-01-15,95\n", encoding="utf-8")
    batch_duckdb(warm, work / "warm-up.parquet", policy_dir)
    for n in sizes:
        parquet, csv_path = make_data(policy, n, work)
        row: dict[str, Any] = {}
        print(f"batch {n:,} lines ...", file=sys.stderr)
        row["duckdb_parquet"] = batch_duckdb(parquet, work / "out.parquet", policy_dir)
        row["duckdb_csv"] = batch_duckdb(csv_path, work / "out.csv", policy_dir)
        if n <= args.plain_batch_max:
            row["plain_parquet"] = batch_plain(parquet, work / "plain.parquet", policy_dir)
        for r in row.values():
            r["lines_per_s"] = n / r["seconds"]
        result["batch"][str(n)] = row
    print("cold start ...", file=sys.stderr)
    result["cold_start"] = cold_start(policy_dir)

    table = render(result)
    result["table"] = table
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.out / f"run-{result['when'].replace(':', '').replace('+0000', 'Z')}.json"
    name.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {name.relative_to(HERE.parent) if name.is_relative_to(HERE.parent) else name}",
          file=sys.stderr)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def render(r: dict[str, Any]) -> str:
    lat = r["latency"]
    base = lat["plain"]["p50_us"]
    lines = ["| measure | engine | figure | ratio to plain Python |", "|---|---|---|---|"]
    names = {"plain": "plain Python dict + bisect",
             "interpreter_first": "interpreter `evaluate`, first lines (empty cache)",
             "interpreter": "interpreter `evaluate`, the stream goes on",
             "interpreter_uncached": "interpreter `decide` (reference, no cache)", "zen": "zen-engine (GoRules)",
             "cedar": "cedarpy (AWS Cedar)"}
    for key, name in names.items():
        row = lat[key]
        agree = f", agree {row['agree']:.0%}" if "agree" in row else ""
        lines.append(f"| latency per line, p50 / p99 | {name} | {row['p50_us']:.2f} / {row['p99_us']:.2f} µs"
                     f"{agree} | {row['p50_us'] / base:.2f}× |")
    for n, row in r["batch"].items():
        plain = row.get("plain_parquet") or next((b.get("plain_parquet") for b in r["batch"].values()
                                                   if b.get("plain_parquet")), None)
        for key, name in (("duckdb_parquet", "batch engine, Parquet → Parquet"),
                          ("duckdb_csv", "batch engine, CSV → CSV"),
                          ("plain_parquet", "plain Python loop, Parquet → Parquet")):
            if key not in row:
                continue
            b = row[key]
            ratio = f"{b['lines_per_s'] / plain['lines_per_s']:.1f}×" if plain else "-"
            lines.append(f"| throughput at {int(n):,} lines, end to end | {name} | {b['lines_per_s'] / 1e6:.2f} M "
                         f"lines/s ({b['seconds']:.1f} s), peak RSS {b['peak_rss_mb']:.0f} MB | {ratio} |")
    for key, name in (("zen", "zen-engine"), ("cedar", "cedarpy")):
        per_s = 1e6 / lat[key]["mean_us"]
        lines.append(f"| throughput, one call per line | {name} | {per_s / 1e6:.4f} M lines/s | "
                     f"{lat['plain']['mean_us'] / lat[key]['mean_us']:.3f}× of the plain loop |")
    c = r["cold_start"]
    lines.append(f"| one-line `cmap-policy eval`, cold process | warm policy cache | {c['warm_cache_s'] * 1000:.0f} ms "
                 f"| python -c pass: {c['python_startup_s'] * 1000:.0f} ms |")
    lines.append(f"| one-line `cmap-policy eval`, cold process | no policy cache | {c['no_cache_s'] * 1000:.0f} ms | |")
    lines.append(f"| one-line `cmap-policy eval`, cold process | first run (checks, then caches) | "
                 f"{c['first_run_s'] * 1000:.0f} ms | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
