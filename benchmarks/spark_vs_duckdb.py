"""Benchmark: the Spark engine against the DuckDB engine, on the same Parquet input, in one run.

    python benchmarks/spark_vs_duckdb.py                  # 1 M lines
    python benchmarks/spark_vs_duckdb.py --lines 1e5,1e6  # several sizes

For each size, both engines decide the same Parquet file into Parquet:

- end to end, as `cmap-policy eval` in a child process (DuckDB: `--engine duckdb`;
  Spark: `--engine spark --master local[*]`, so the JVM start is included);
- warm, in this process: the DuckDB engine's `batch.run`, and `cmap_policy.engines.spark.run`
  on a Spark session that has already decided a small file (the case of a
  cluster, where the session outlives one file).

It checks that both engines wrote the same decisions, prints lines per second
and the Spark/DuckDB ratio, and writes the figures to
benchmarks/results/spark-vs-duckdb-<time>.json. The input is the one of
benchmarks/run.py (a SYNTHETIC 400-code policy, lines from a fixed seed).
The machine may be shared: compare the ratios of one run, not absolute times
across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import make_data  # noqa: E402  (the input generator of benchmarks/run.py)

from cmap_policy import load_policy  # noqa: E402
from cmap_policy.engines import spark as spark_engine  # noqa: E402
from cmap_policy.engines.batch import run as duckdb_run  # noqa: E402
from cmap_policy.testing import synthetic_policy, write_tree  # noqa: E402


def _cli() -> str:
    found = shutil.which("cmap-policy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("cmap-policy is not installed in this environment: pip install -e '.[spark]'")
    return found


def _child(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1) or "lines read" not in proc.stderr:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def _same_decisions(duck: Path, spark_dir: Path) -> bool:
    """Whether both outputs hold the same lines with the same decisions."""
    d = pq.read_table(duck)
    s = pq.read_table(spark_dir)
    s = s.take(pc.sort_indices(s, sort_keys=[("line", "ascending")]))
    cols = ["line", "line_id", "code", "date", "outcome", "reasons", "period", "modality", "release", "policy_hash"]
    # compared as values: the engines choose their own encodings (DuckDB's text columns are dictionaries)
    return d.num_rows == s.num_rows and all(d[c].to_pylist() == s[c].to_pylist() for c in cols)


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", default="1e6", help="comma-separated sizes, e.g. 1e5,1e6 (default 1e6)")
    ap.add_argument("--codes", type=int, default=400, help="codes in the SYNTHETIC policy (default 400)")
    ap.add_argument("--master", default="local[*]", help="Spark master (default local[*])")
    args = ap.parse_args()
    sizes = [int(float(x)) for x in args.lines.split(",")]

    results: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg()},
        "master": args.master,
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="cmap-spark-bench-") as tmp_name:
        tmp = Path(tmp_name)
        policy_dir = write_tree(synthetic_policy(args.codes, seed=0), tmp / "policy")
        policy = load_policy(policy_dir)
        spark = spark_engine.session(args.master)
        warm_src, _ = make_data(policy, 10_000, tmp)
        spark_engine.run(spark, str(warm_src), str(tmp / "warm-spark"), policy=policy)  # JIT and caches warm
        duckdb_run(warm_src, tmp / "warm-duck.parquet", policy=policy)
        for n in sizes:
            src, _ = make_data(policy, n, tmp)
            duck_out, spark_out = tmp / f"duck-{n}.parquet", tmp / f"spark-{n}"
            row: dict[str, Any] = {"lines": n}

            t = time.perf_counter()
            duckdb_run(src, duck_out, policy=policy)
            row["duckdb_warm_s"] = time.perf_counter() - t
            t = time.perf_counter()
            spark_engine.run(spark, str(src), str(spark_out), policy=policy)
            row["spark_warm_s"] = time.perf_counter() - t
            row["same_decisions"] = _same_decisions(duck_out, spark_out)

            row["duckdb_cli_s"] = _child([_cli(), "eval", "--engine", "duckdb", str(src), "-o",
                                          str(tmp / f"duck-cli-{n}.parquet"), "--policy", str(policy_dir)])
            row["spark_cli_s"] = _child([_cli(), "eval", "--engine", "spark", "--master", args.master, str(src),
                                         "-o", str(tmp / f"spark-cli-{n}"), "--policy", str(policy_dir)])
            for key in ("duckdb_warm", "spark_warm", "duckdb_cli", "spark_cli"):
                row[f"{key}_lines_per_s"] = _rate(n, row[f"{key}_s"])
            row["ratio_warm"] = row["spark_warm_lines_per_s"] / row["duckdb_warm_lines_per_s"]
            row["ratio_cli"] = row["spark_cli_lines_per_s"] / row["duckdb_cli_lines_per_s"]
            results["sizes"].append(row)
        spark.stop()
    results["load_average_at_end"] = os.getloadavg()

    print(f"SYNTHETIC {args.codes}-code policy, Parquet to Parquet, Spark master {args.master}, "
          f"{os.cpu_count()} cores, load average {results['machine']['load_average_at_start'][0]:.1f} at start")
    print(f"{'lines':>10}  {'engine':<22} {'seconds':>8} {'lines/s':>12}  {'Spark/DuckDB':>12}")
    for row in results["sizes"]:
        n = row["lines"]
        for label, key, ratio in (("DuckDB, warm", "duckdb_warm", ""), ("Spark, warm", "spark_warm",
                                                                         f"{row['ratio_warm']:.3f}"),
                                  ("DuckDB, CLI cold", "duckdb_cli", ""), ("Spark, CLI cold", "spark_cli",
                                                                           f"{row['ratio_cli']:.3f}")):
            print(f"{n:>10,}  {label:<22} {row[key + '_s']:>8.2f} {row[key + '_lines_per_s']:>12,.0f}  {ratio:>12}")
        print(f"{'':>10}  same decisions: {row['same_decisions']}")
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    path = out_dir / f"spark-vs-duckdb-{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written: {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
