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
import compileall
import datetime as dt
import gc
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
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import Cedar, Line, PlainPython, Zen  # noqa: E402

from cmap_policy import ClaimLine, caches, load_policy  # noqa: E402
from cmap_policy.formats import errors_path_for  # noqa: E402
from cmap_policy.interpreter import decide, evaluate  # noqa: E402
from cmap_policy.model import Policy  # noqa: E402
from cmap_policy.testing import synthetic_policy, write_tree  # noqa: E402
from cmap_policy.testing.feed import claims_table  # noqa: E402

CHUNK = 1_000_000


# --- data ---

def make_data(policy: Policy, n: int, folder: Path, csv: bool = True) -> tuple[Path, Path | None, Path | None]:
    """n lines as Parquet (typed columns) and, if ``csv``, as CSV and as JSON Lines (the same lines, text as
    text and numbers as numbers, as an exporter writes them), written a chunk at a time."""
    parquet, csv_path, jsonl = folder / f"lines-{n}.parquet", folder / f"lines-{n}.csv", folder / f"lines-{n}.jsonl"
    if parquet.exists() and ((csv_path.exists() and jsonl.exists()) or not csv):
        return parquet, csv_path if csv else None, jsonl if csv else None
    rng = np.random.default_rng(20260101)
    pw = cw = None
    jw = jsonl.open("w", encoding="utf-8") if csv else None
    for start in range(0, n, CHUNK):
        t = claims_table(policy, min(CHUNK, n - start), rng, first_line=start + 1)
        pw = pw or pq.ParquetWriter(parquet, t.schema)
        pw.write_table(t)
        if csv:
            text = t.set_column(2, "date", t["date"].cast(pa.string()))
            cw = cw or pacsv.CSVWriter(str(csv_path), text.schema,
                                       write_options=pacsv.WriteOptions(quoting_style="none"))
            cw.write_table(text)
            assert jw is not None
            for row in text.to_pylist():
                jw.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")
    assert pw is not None
    pw.close()
    if cw is not None:
        cw.close()
    if jw is not None:
        jw.close()
    return parquet, csv_path if csv else None, jsonl if csv else None


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

    def slots() -> int:
        return caches.sizes()["interpreter.decisions"]

    def timed(name: str, fn: Any, items: list[Any], check: list[Any] | None = None) -> None:
        ns = []
        answers = []
        before = slots()
        for item in items:
            t = clock()
            a = fn(item)
            ns.append(clock() - t)
            answers.append(a)
        row: dict[str, Any] = {"lines": len(items), **_percentiles(ns)}
        if name.startswith("interpreter") and name != "interpreter_uncached":
            row["new_slots"] = slots() - before  # lines decided afresh: the cache's misses
        if check is not None:
            row["agree"] = sum(a == b for a, b in zip(answers, check, strict=False)) / len(check)
        out[name] = row

    half = len(lines) // 2
    timed("plain", plain.decide, tuples[half:], None)
    out["plain"]["agree"] = sum(plain.decide(t) == w for t, w in zip(tuples, want_answers, strict=False)) / len(want)
    caches.clear_all()
    # the cache starts empty, then the stream goes on: the second half is what a running service sees
    timed("interpreter_first", lambda ln: evaluate(policy, ln), lines[:half], list(want))
    timed("interpreter", lambda ln: evaluate(policy, ln), lines[half:])
    # the same lines again, every slot now decided: the tail without new slots, and without the collector
    timed("interpreter_warm", lambda ln: evaluate(policy, ln), lines[half:])
    gc.collect()
    gc.disable()
    try:
        timed("interpreter_warm_no_gc", lambda ln: evaluate(policy, ln), lines[half:])
    finally:
        gc.enable()
    timed("interpreter_uncached", lambda ln: decide(policy, ln), lines[: max(peer_lines, 20_000)])
    zen = Zen(policy)
    timed("zen", zen.decide, tuples[:peer_lines], want_answers)
    cedar = Cedar(policy)
    timed("cedar", cedar.decide, tuples[:peer_lines], [(o, r, None) for o, r, _ in want_answers])
    return out


# --- batch, in child processes (end to end, with their own peak RSS) ---

def _fresh(out: Path) -> Path:
    """``out`` removed, with the errors file beside it: every run writes a new file. An output that exists is
    replaced only when the new one is whole (``formats.temporary_beside``), so the old one is freed at the end, in
    the kernel's time (some 3 s for a 10 M-line CSV), where a floor that truncates it frees it at the start."""
    out.unlink(missing_ok=True)
    errors_path_for(out).unlink(missing_ok=True)
    return out


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


def batch(src: Path, out: Path, policy_dir: Path) -> dict[str, Any]:
    return _child([cli(), "eval", str(src), "-o", str(_fresh(out)), "--policy", str(policy_dir)])


SEQUENTIAL = """
import sys
from cmap_policy import load_policy
from cmap_policy.engines.batch import run
s = run({src!r}, {out!r}, policy=load_policy({policy!r}), threads=1)
print(f"{{s.read}} lines read", file=sys.stderr)
"""


def batch_sequential(src: Path, out: Path, policy_dir: Path) -> dict[str, Any]:
    """The batch engine with reading, deciding and writing one after the other (no pipeline threads)."""
    return _child([sys.executable, "-c", SEQUENTIAL.format(src=str(src), out=str(out), policy=str(policy_dir))])


# The floor: what just reading the input and writing an output of the engine's columns and row count costs,
# with the engine's own readers' and writers' settings, in a process of its own (start and imports count).
FLOOR = """
import sys
import numpy as np, pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
from pathlib import Path
from cmap_policy.engines.batch import OUTPUT_SCHEMA
from cmap_policy.engines.files import ParquetWriter, CsvWriter
src, out, fmt = Path({src!r}), Path({out!r}), {fmt!r}
def const(text, n):
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([text]))
if fmt == "parquet":
    reader = pq.ParquetFile(src, read_dictionary=["code", "modifiers", "pos", "claim_type", "rcc", "provider_type"],
                            pre_buffer=False)
    batches = reader.iter_batches(batch_size=500_000)
    writer = ParquetWriter(out, OUTPUT_SCHEMA)
elif fmt == "jsonl":
    import pyarrow.json as pajson
    # streamed in blocks, as the engine reads it (16 MB), the date read as text as the engine reads it
    batches = pajson.open_json(src, read_options=pajson.ReadOptions(block_size=16 << 20),
                               parse_options=pajson.ParseOptions(explicit_schema=pa.schema([("date", pa.string())]),
                                                                 unexpected_field_behavior="infer"))
    writer = ParquetWriter(out, OUTPUT_SCHEMA)
else:
    batches = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=32 << 20),
                             convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(
                                 ["code", "date", "line_id", "claim_id"], pa.string())))
    writer = CsvWriter(out, OUTPUT_SCHEMA)
start = 1
for rb in batches:
    n = rb.num_rows
    code = rb.column("code")
    code = code if pa.types.is_dictionary(code.type) else code.dictionary_encode()
    day = rb.column("date")
    day = day if pa.types.is_date32(day.type) else day.cast(pa.date32())
    writer.write(pa.table({{
        "line": pa.array(np.arange(start, start + n, dtype=np.int64)), "line_id": rb.column("line_id"),
        "claim_id": pa.nulls(n, pa.string()), "code": code.cast(pa.dictionary(pa.int32(), pa.string())),
        "date": day, **{{name: const(name, n) for name in ("outcome", "reasons", "period", "modality", "release",
                                                         "policy_hash")}}}}, schema=OUTPUT_SCHEMA))
    start += n
writer.close()
print(f"{{start - 1}} lines read", file=sys.stderr)
"""


def floor(src: Path, out: Path, fmt: str) -> dict[str, Any]:
    return _child([sys.executable, "-c", FLOOR.format(src=str(src), out=str(_fresh(out)), fmt=fmt)])


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
n = 0
for rb in pq.ParquetFile({src!r}, pre_buffer=False).iter_batches(batch_size=500_000):
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
    n += t.num_rows
    writer = writer or pq.ParquetWriter({out!r}, t.schema)
    writer.write_table(t)
writer.close()
print(f"{{n}} lines read", file=sys.stderr)
"""


def batch_plain(src: Path, out: Path, policy_dir: Path) -> dict[str, Any]:
    code = PLAIN_BATCH.format(here=str(HERE), policy=str(policy_dir), src=str(src), out=str(out))
    return _child([sys.executable, "-c", code])


def spark(src: Path, out: Path, policy_dir: Path) -> dict[str, Any]:
    return _child([cli(), "eval", str(src), "-o", str(out), "--engine", "spark", "--master", "local[2]",
                   "--policy", str(policy_dir)])


# Spark's own floor: a cold process starts a session as the engine's command does, reads the input, sends it
# through a Python worker unchanged (mapInArrow, as the engine does) and writes it. What is left of the engine's
# time above this is the engine's.
SPARK_FLOOR = """
import sys
from cmap_policy.engines.spark import session
spark = session("local[2]")
df = spark.read.parquet({src!r})

def same(batches):
    yield from batches

df.mapInArrow(same, df.schema).write.mode("overwrite").parquet({out!r})
"""


def spark_floor(src: Path, out: Path) -> dict[str, Any]:
    return _child([sys.executable, "-c", SPARK_FLOOR.format(src=str(src), out=str(out))])


def same_answers(engine_out: Path, plain_out: Path) -> dict[str, Any]:
    """Field for field: the batch engine's outcome, reasons and period against the plain-Python loop's."""
    a = pq.read_table(engine_out, columns=["line_id", "outcome", "reasons", "period"])
    b = pq.read_table(plain_out, columns=["line_id", "outcome", "reasons", "period"])
    same = a.num_rows == b.num_rows
    differ = 0
    for name in ("line_id", "outcome", "reasons", "period"):
        x, y = a[name], b[name]
        x = x.cast(pa.string()) if pa.types.is_dictionary(x.type) else x
        eq = pc.equal(x, y.cast(pa.string()))
        both_null = pc.and_(pc.is_null(x), pc.is_null(y))
        differ = max(differ, a.num_rows - pc.sum(pc.or_(pc.fill_null(eq, False), both_null)).as_py())
    return {"lines": a.num_rows, "same_rows": same, "lines_that_differ": differ}


def fixed_cost(work: Path, policy_dir: Path, runs: int = 5) -> dict[str, Any]:
    """The engine on a file of one line: the process start, imports, policy load and engine set-up."""
    one = work / "one.parquet"
    pq.write_table(pa.table({"code": ["90791"], "date": ["2026-01-15"], "modifiers": ["95"]}), one)
    times = [batch(one, work / "one-out.parquet", policy_dir)["seconds"] for _ in range(runs)]
    return {"seconds": statistics.median(times)}


def cold_start(policy_dir: Path, runs: int = 7) -> dict[str, Any]:
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


def _has_spark() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", default="1e6,1e7", help="batch sizes, comma-separated (default 1e6,1e7)")
    parser.add_argument("--codes", type=int, default=400, help="codes in the synthetic policy (default 400)")
    parser.add_argument("--latency-lines", type=float, default=100_000,
                        help="lines timed one by one, twice over: from an empty cache, then on (default 1e5)")
    parser.add_argument("--peer-lines", type=int, default=2000, help="lines timed on cedarpy and zen (default 2000)")
    parser.add_argument("--plain-batch-max", type=float, default=1e6,
                        help="largest batch the plain-Python loop runs (default 1e6; it is slow)")
    parser.add_argument("--csv-max", type=float, default=1e7, help="largest batch also run as CSV (default 1e7)")
    parser.add_argument("--sequential-max", type=float, default=1e7,
                        help="largest batch also run without the pipeline threads (default 1e7)")
    parser.add_argument("--spark-max", type=float, default=1e7,
                        help="largest batch also run on Spark, local[2], if pyspark and java are there (default 1e7;"
                             " 0 for none)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the generated data (default: a temp)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.lines.split(",") if s]

    # An installed package has its bytecode compiled (pip does it); a checkout may not, if the environment says
    # not to write it. Compile it, so that no timed process pays for compiling the package.
    import cmap_policy

    compileall.compile_dir(Path(cmap_policy.__file__).parent, quiet=1)
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
    print(f"policy: SYNTHETIC, {len(policy.codes)} codes; load average {os.getloadavg()[0]:.2f}", file=sys.stderr)

    n_latency = 2 * int(args.latency_lines)
    first_parquet, _, _ = make_data(policy, max(min(sizes), n_latency), work, csv=min(sizes) <= args.csv_max)
    # the first lines only: the file may hold a hundred million
    first = next(pq.ParquetFile(first_parquet).iter_batches(batch_size=n_latency))
    sample = claim_lines(pa.Table.from_batches([first]))
    print(f"latency on {len(sample):,} lines ...", file=sys.stderr)
    result["latency"] = latency(policy, sample, args.peer_lines)

    result["batch"] = {}
    # one untimed run first, so that no timed run pays for reading the engine's libraries from disk
    warm = work / "warm-up.csv"
    warm.write_text("code,date,modifiers\n90791,2026-01-15,95\n", encoding="utf-8")
    batch(warm, work / "warm-up.parquet", policy_dir)
    spark_ok = args.spark_max > 0 and _has_spark()
    for n in sizes:
        parquet, csv_path, jsonl_path = make_data(policy, n, work, csv=n <= args.csv_max)
        row: dict[str, Any] = {}
        print(f"batch {n:,} lines ...", file=sys.stderr)
        row["floor_parquet"] = floor(parquet, work / "floor.parquet", "parquet")
        row["batch_parquet"] = batch(parquet, work / "out.parquet", policy_dir)
        if n <= args.sequential_max:
            row["batch_parquet_sequential"] = batch_sequential(parquet, work / "seq.parquet", policy_dir)
        if csv_path is not None:
            row["floor_csv"] = floor(csv_path, work / "floor.csv", "csv")
            row["batch_csv"] = batch(csv_path, work / "out.csv", policy_dir)
        if jsonl_path is not None:  # JSON Lines in, Parquet out, beside pyarrow reading it and writing the columns
            row["floor_jsonl"] = floor(jsonl_path, work / "floor.parquet", "jsonl")
            row["batch_jsonl"] = batch(jsonl_path, work / "out-jsonl.parquet", policy_dir)
        if n <= args.plain_batch_max:
            row["plain_parquet"] = batch_plain(parquet, work / "plain.parquet", policy_dir)
            result.setdefault("same_answers", {})[str(n)] = same_answers(work / "out.parquet",
                                                                        work / "plain.parquet")
        if spark_ok and n <= args.spark_max:
            print(f"spark {n:,} lines ...", file=sys.stderr)
            row["floor_spark"] = spark_floor(parquet, work / "spark-floor")
            row["spark_parquet"] = spark(parquet, work / "spark-out", policy_dir)
        for r in row.values():
            r["lines_per_s"] = n / r["seconds"]
        result["batch"][str(n)] = row
        for f in (work / "out.parquet", work / "out-jsonl.parquet", work / "seq.parquet", work / "floor.parquet",
                  work / "out.csv", work / "floor.csv", work / "plain.parquet"):
            f.unlink(missing_ok=True)
        shutil.rmtree(work / "spark-out", ignore_errors=True)
        shutil.rmtree(work / "spark-floor", ignore_errors=True)
    print("fixed cost and cold start ...", file=sys.stderr)
    result["fixed_cost"] = fixed_cost(work, policy_dir)
    result["cold_start"] = cold_start(policy_dir)
    result["machine"]["load_average_at_end"] = os.getloadavg()

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


BATCH_NAMES = (
    ("batch_parquet", "batch engine, Parquet → Parquet"),
    ("batch_parquet_sequential", "batch engine without its pipeline threads, Parquet → Parquet"),
    ("floor_parquet", "floor: pyarrow reads the input and writes the same columns, Parquet"),
    ("batch_csv", "batch engine, CSV → CSV"),
    ("floor_csv", "floor: pyarrow reads the input and writes the same columns, CSV"),
    ("batch_jsonl", "batch engine, JSON Lines → Parquet"),
    ("floor_jsonl", "floor: pyarrow reads the JSON Lines and writes the same columns, Parquet"),
    ("plain_parquet", "plain Python loop, Parquet → Parquet"),
    ("spark_parquet", "Spark engine, local[2], Parquet → Parquet"),
    ("floor_spark", "Spark's floor, local[2]: read, through a Python worker unchanged, write"),
)


def render(r: dict[str, Any]) -> str:
    lat = r["latency"]
    base = lat["plain"]["p50_us"]
    lines = [f"load average {r['machine']['load_average_at_start'][0]:.2f} at the start, "
             f"{r['machine']['load_average_at_end'][0]:.2f} at the end (1-minute)", "",
             "| measure | engine | figure | ratio |", "|---|---|---|---|"]
    names = {"plain": "plain Python dict + bisect",
             "interpreter_first": "interpreter `evaluate`, first lines (empty cache)",
             "interpreter": "interpreter `evaluate`, the stream goes on",
             "interpreter_warm": "interpreter `evaluate`, the same lines again (every slot decided)",
             "interpreter_warm_no_gc": "interpreter `evaluate`, the same lines again, garbage collector off",
             "interpreter_uncached": "interpreter `decide` (reference, no cache)", "zen": "zen-engine (GoRules)",
             "cedar": "cedarpy (AWS Cedar)"}
    for key, name in names.items():
        if key not in lat:
            continue
        row = lat[key]
        agree = f", agree {row['agree']:.0%}" if "agree" in row else ""
        misses = f", {row['new_slots'] / row['lines']:.1%} of lines decided afresh" if "new_slots" in row else ""
        lines.append(f"| latency per line, p50 / p99 | {name} | {row['p50_us']:.2f} / {row['p99_us']:.2f} µs"
                     f"{agree}{misses} | {row['p50_us'] / base:.2f}× plain |")
    plain_any = next((b["plain_parquet"] for b in r["batch"].values() if "plain_parquet" in b), None)
    for n, row in r["batch"].items():
        plain = row.get("plain_parquet") or plain_any
        for key, name in BATCH_NAMES:
            if key not in row:
                continue
            b = row[key]
            ratios = [f"{b['lines_per_s'] / plain['lines_per_s']:.1f}× plain"] if plain else []
            fmt = ("csv" if key.endswith("csv") else "jsonl" if key.endswith("jsonl") else
                   "spark" if key.startswith("spark") else "parquet")
            fl = row.get(f"floor_{fmt}")
            if fl is not None and not key.startswith("floor"):
                ratios.append(f"{b['seconds'] / fl['seconds']:.2f}× the floor's time")
            lines.append(f"| throughput at {int(n):,} lines, end to end | {name} | {b['lines_per_s'] / 1e6:.2f} M "
                         f"lines/s ({b['seconds']:.2f} s), peak RSS {b['peak_rss_mb']:.0f} MB | "
                         f"{'; '.join(ratios) or '-'} |")
    for n, same in r.get("same_answers", {}).items():
        lines.append(f"| same answers at {int(n):,} lines | batch engine vs plain loop, field for field | "
                     f"{same['lines_that_differ']} lines differ of {same['lines']:,} | |")
    for key, name in (("zen", "zen-engine"), ("cedar", "cedarpy")):
        per_s = 1e6 / lat[key]["mean_us"]
        lines.append(f"| throughput, one call per line | {name} | {per_s / 1e6:.4f} M lines/s | "
                     f"{lat['plain']['mean_us'] / lat[key]['mean_us']:.3f}× plain |")
    fixed = r["fixed_cost"]["seconds"] * 1000
    lines.append(f"| fixed cost: a one-line file, end to end | batch engine | {fixed:.0f} ms | |")
    c = r["cold_start"]
    lines.append(f"| one-line `cmap-policy eval`, cold process | warm policy cache | {c['warm_cache_s'] * 1000:.0f} ms "
                 f"| python -c pass: {c['python_startup_s'] * 1000:.0f} ms |")
    lines.append(f"| one-line `cmap-policy eval`, cold process | no policy cache | {c['no_cache_s'] * 1000:.0f} ms | |")
    lines.append(f"| one-line `cmap-policy eval`, cold process | first run (checks, then caches) | "
                 f"{c['first_run_s'] * 1000:.0f} ms | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
