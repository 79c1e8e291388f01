"""Tables in memory: ``decide_table`` on a pyarrow Table, a pandas and a Polars DataFrame, and ``decide_batches``
on a stream, beside the batch engine on the same lines as a Parquet file.

    python benchmarks/tables.py                  # 1 M generated lines, the SYNTHETIC policy of 400 codes
    python benchmarks/tables.py --lines 1e7

Each figure is taken in a process of its own (so its peak memory is its own), after the lines are in memory in
that process: the seconds are those of the decision alone, lines/s beside them, the peak resident memory
after. The batch engine's figure is its whole run, Parquet in and Parquet out; the stream's is a Parquet file
read a batch at a time and its decisions written as they come, so its memory is the flat one. The load average
is printed beside each figure: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cmap_policy import decide_table, load_policy
from cmap_policy.engines.batch import OUTPUT_SCHEMA, run
from cmap_policy.engines.tables import decide_batches
from cmap_policy.testing import synthetic_policy, write_tree
from cmap_policy.testing.feed import claims_table

MODES = ("batch-engine", "pyarrow", "pandas", "polars", "stream")
CHUNK = 1_000_000


def _data(policy_dir: Path, n: int, folder: Path) -> Path:
    path = folder / f"lines-{n}.parquet"
    if path.exists():
        return path
    policy = load_policy(policy_dir)
    rng = np.random.default_rng(20260101)
    writer = None
    for start in range(0, n, CHUNK):
        table = claims_table(policy, min(CHUNK, n - start), rng, first_line=start + 1)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return path


def _measure(mode: str, policy_dir: Path, src: Path, work: Path) -> dict[str, object]:
    """One mode, in this process: (seconds, lines, decided, peak memory)."""
    policy = load_policy(policy_dir)
    if mode == "batch-engine":
        start = time.perf_counter()
        summary = run(src, work / "out.parquet", policy=policy)
        seconds, lines, decided = time.perf_counter() - start, summary.read, summary.decided
    elif mode == "stream":
        start = time.perf_counter()
        claims = pq.ParquetFile(src)
        source = pa.RecordBatchReader.from_batches(claims.schema_arrow, claims.iter_batches(batch_size=65_536))
        lines = decided = 0
        with pq.ParquetWriter(work / "stream.parquet", OUTPUT_SCHEMA) as out:
            for decisions, errors in decide_batches(source, policy=policy):
                out.write_table(decisions)
                lines += decisions.num_rows + errors.num_rows
                decided += decisions.num_rows
        seconds = time.perf_counter() - start
    else:
        table = pq.read_table(src)
        data: object = table
        if mode == "pandas":
            data = table.to_pandas()
        elif mode == "polars":
            import polars as pl

            data = pl.from_arrow(table)
        start = time.perf_counter()
        out = decide_table(data, policy=policy)
        seconds, lines = time.perf_counter() - start, out.num_rows
        decided = out["error"].null_count  # a decided row has no error
    return {"mode": mode, "lines": lines, "decided": decided, "seconds": round(seconds, 3),
            "lines_per_s": round(lines / seconds), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            // 1024, "load_average": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=float, default=1e6, help="lines to generate")
    parser.add_argument("--modes", default=",".join(MODES), help=f"which of {', '.join(MODES)}")
    parser.add_argument("--one", nargs=3, metavar=("MODE", "POLICY", "SRC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one mode, its figures as JSON
        mode, policy_dir, src = args.one
        with tempfile.TemporaryDirectory(prefix="cmap-tables-") as scratch:
            print(json.dumps(_measure(mode, Path(policy_dir), Path(src), Path(scratch))))
        return
    with tempfile.TemporaryDirectory(prefix="cmap-tables-") as folder:
        work = Path(folder)
        policy_dir = write_tree(synthetic_policy(400, seed=0), work / "policy")
        src = _data(policy_dir, int(args.lines), work)
        print(f"{int(args.lines):,} lines, SYNTHETIC policy of 400 codes; load average {os.getloadavg()[0]:.2f}")
        for mode in args.modes.split(","):
            child = subprocess.run([sys.executable, __file__, "--one", mode, str(policy_dir), str(src)],
                                   capture_output=True, text=True, check=True)
            r = json.loads(child.stdout)
            print(f"  {r['mode']:<13} {r['seconds']:>8.2f} s  {r['lines_per_s']:>11,} lines/s  "
                  f"peak {r['peak_rss_mb']:>5,} MB  ({r['decided']:,} of {r['lines']:,} decided; "
                  f"load {r['load_average']:.2f})")


if __name__ == "__main__":
    main()
