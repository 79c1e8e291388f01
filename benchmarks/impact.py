"""The impact report's cost against one batch run: `cmap-policy diff BASE HEAD --claims FILE` decides every line
under two policies, so it should take about twice one `eval FILE -o OUT` (the file is read and checked once).

    python benchmarks/impact.py [--lines 10000000] [--base PB-2024-81] [--runs 2]

writes a Parquet feed of SYNTHETIC claim lines for the bundled policy (with an `amount` column), then times, in
turn, one batch run of it (decisions written to Parquet) and its impact report from BASE to the latest release,
and prints the figures with the machine's load beside them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cmap_policy.engines import batch
from cmap_policy.engines.impact import impact
from cmap_policy.load import load_policy
from cmap_policy.testing.feed import claims_table

CHUNK = 1_000_000


def write_feed(plain: Path, billed: Path, n: int) -> None:
    """The same lines twice: as `eval` reads them, and with an `amount` column (which `eval` refuses)."""
    policy = load_policy()
    rng = np.random.default_rng(7)
    writers: list[pq.ParquetWriter] = []
    try:
        for first in range(1, n + 1, CHUNK):
            size = min(CHUNK, n - first + 1)
            table = claims_table(policy, size, rng, first_line=first)
            tables = (table, table.append_column("amount", pa.array(np.round(rng.uniform(5, 900, size), 2))))
            if not writers:
                writers = [pq.ParquetWriter(path, t.schema) for path, t in zip((plain, billed), tables, strict=True)]
            for writer, t in zip(writers, tables, strict=True):
                writer.write_table(t, row_group_size=500_000)
    finally:
        for writer in writers:
            writer.close()


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes): it is shared, so every figure is printed beside them."""
    avg = Path("/proc/loadavg")
    return " ".join(avg.read_text(encoding="utf-8").split()[:3]) if avg.exists() else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--base", default="PB-2024-81", help="the release of the bundled policy on the BASE side")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    policy = load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        feed, billed = Path(tmp) / "claims.parquet", Path(tmp) / "billed.parquet"
        started = time.perf_counter()
        write_feed(feed, billed, args.lines)
        print(f"{args.lines:,} lines written in {time.perf_counter() - started:.1f} s "
              f"({os.path.getsize(feed) / 1e6:.0f} MB); cores: {os.cpu_count()}")
        for run in range(1, args.runs + 1):
            started = time.perf_counter()
            summary = batch.run(feed, Path(tmp) / "decisions.parquet", policy=policy)
            one = time.perf_counter() - started
            before = load()
            started = time.perf_counter()
            report = impact(feed, policy, policy, base_release=args.base)
            both = time.perf_counter() - started
            started = time.perf_counter()
            with_amount = impact(billed, policy, policy, base_release=args.base).as_dict()
            billed_s = time.perf_counter() - started
            d = report.as_dict()
            assert summary.errors == 0 and d["lines"]["errors"] == 0 and with_amount["lines"] == d["lines"]
            print(f"run {run}: one batch run {one:.2f} s ({summary.read / one / 1e6:.2f} M lines/s); impact report "
                  f"{both:.2f} s ({d['lines']['read'] / both / 1e6:.2f} M lines/s), {both / one:.2f}x one run; "
                  f"with the amount column {billed_s:.2f} s ({billed_s / one:.2f}x); "
                  f"{d['lines']['outcome_changed']:,} lines change outcome in {len(d['transitions'])} transitions; "
                  f"load before the report {before}, after {load()}")


if __name__ == "__main__":
    main()
