"""The batch engine on each input format, beside its floor, in one run: Parquet, CSV and JSON Lines.

    python benchmarks/formats.py --lines 1e6,1e7          # the figures for docs/performance.md
    python benchmarks/formats.py --lines 1e5 --runs 1     # a quick run

For each size, the same SYNTHETIC lines (``run.make_data``: Parquet, CSV and JSON Lines of the same rows) are
decided end to end by ``cmap-policy eval FILE -o OUT.parquet`` (CSV into CSV, as ``run.py`` does), each in a
process of its own, beside the floor of that format: pyarrow reading the same file and writing the engine's
output columns with no decision (``run.FLOOR``). Each figure is the best of ``--runs`` runs; the ratio is the
engine's time over the floor's. The load average is printed beside every figure: on a busy machine the figures
mean little, so run it with nothing else running.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import batch, floor, make_data  # noqa: E402

from cmap_policy import load_policy  # noqa: E402
from cmap_policy.testing import synthetic_policy, write_tree  # noqa: E402


def best(runs: int, measure: Any) -> dict[str, Any]:
    results = [measure() for _ in range(runs)]
    return min(results, key=lambda r: r["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", default="1e6,1e7", help="sizes, comma-separated (default 1e6,1e7)")
    ap.add_argument("--runs", type=int, default=2, help="runs of each measure; the best is kept (default 2)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the generated data (default: a temp)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cmap-formats-"))
    work.mkdir(parents=True, exist_ok=True)
    policy_dir = write_tree(synthetic_policy(400, seed=0), work / "policy")
    policy = load_policy(policy_dir)
    print("| lines | format | engine | floor | engine ÷ floor | lines/s | peak RSS | load average (1 min) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(float(s)) for s in args.lines.split(",") if s):
        parquet, csv_path, jsonl = make_data(policy, n, work, csv=True)
        assert csv_path is not None and jsonl is not None
        for fmt, src, out in (("parquet", parquet, work / "out.parquet"), ("csv", csv_path, work / "out.csv"),
                              ("jsonl", jsonl, work / "out-jsonl.parquet")):
            floor_fmt = "parquet" if fmt == "parquet" else fmt
            fl = best(args.runs, lambda src=src, floor_fmt=floor_fmt: floor(src, work / "floor.out", floor_fmt))
            load_floor = os.getloadavg()[0]
            en = best(args.runs, lambda src=src, out=out: batch(src, out, policy_dir))
            load_engine = os.getloadavg()[0]
            print(f"| {n:,} | {fmt} | {en['seconds']:.2f} s | {fl['seconds']:.2f} s | "
                  f"{en['seconds'] / fl['seconds']:.2f}× | {n / en['seconds'] / 1e6:.2f} M | "
                  f"{en['peak_rss_mb']:.0f} MB | {load_floor:.2f} / {load_engine:.2f} |", flush=True)
            for f in (out, work / "floor.out", out.with_name(out.stem + ".errors.jsonl")):
                f.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
