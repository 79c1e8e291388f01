"""How the data of the site's claim-line checker grows with the table: its size, and the time to decide it.

    python benchmarks/site_check.py                      # the bundled policy and SYNTHETIC 100, 300 and 600 codes
    python benchmarks/site_check.py --codes 20           # a quick run

The checker's data (``cmap_policy.site.check``) holds the interpreter's decision of every class of line the
form can send, decided at build time. A page loads the common file and, when a code is asked about, that
code's file: so what a reader downloads is the common file plus one code's, whatever the size of the table.
For each policy it prints the time to decide the data (every front class on every date cell, by
``interpreter.decide``), the number of decisions, the size of the common file, and the total, median and
largest size of a code's file. Figures go to standard output and, as JSON, to
benchmarks/results/site-check-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cmap_policy.load.loader import load_policy
from cmap_policy.model import Policy
from cmap_policy.site.check import DATA_DIR, CheckData, data_script
from cmap_policy.testing import synthetic_policy
from cmap_policy.testing.trees import write_tree

HERE = Path(__file__).resolve().parent


def measure(name: str, policy: Policy) -> dict[str, Any]:
    start = time.perf_counter()
    data = CheckData(policy)
    files = {path: data_script(payload) for path, payload in data.files().items()}
    seconds = time.perf_counter() - start
    common = len(files[f"{DATA_DIR}/data.js"].encode())
    codes = [len(text.encode()) for path, text in files.items() if path.startswith(f"{DATA_DIR}/codes/")]
    row: dict[str, Any] = {
        "policy": name, "codes": len(codes), "seconds": round(seconds, 2), "decisions": len(data.decisions),
        "front_classes": [len(i.classes) for i in data.intervals], "common_bytes": common,
        "code_bytes_total": sum(codes), "code_bytes_median": int(statistics.median(codes)) if codes else 0,
        "code_bytes_max": max(codes, default=0)}
    print(f"{name:>16}: {row['codes']:4d} codes, {seconds:6.2f} s, {row['decisions']:7d} decisions, "
          f"common {common / 1024:6.1f} KiB, codes {sum(codes) / 1024:8.1f} KiB in all "
          f"(median {row['code_bytes_median'] / 1024:5.1f} KiB, largest {row['code_bytes_max'] / 1024:5.1f} KiB)")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, nargs="*", default=[100, 300, 600],
                        help="sizes of the SYNTHETIC policies to measure")
    args = parser.parse_args()
    rows = [measure("bundled", load_policy())]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.codes:
            root = write_tree(synthetic_policy(n, seed=1), Path(tmp) / str(n))
            rows.append(measure(f"SYNTHETIC {n}", load_policy(root)))
    out = HERE / "results" / f"site-check-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
