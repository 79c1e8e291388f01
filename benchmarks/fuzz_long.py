"""The long fuzz campaign of docs/reliability.md: every fuzz target of tests/fuzz.py for N minutes each.

    python benchmarks/fuzz_long.py --minutes 10 [--work DIR]

prints, per target, the executions, their rate, the crashes found and the size of the corpus grown (a
Markdown table, for the figures in docs/reliability.md). It is ``python -m tests.fuzz all --minutes N``,
with the targets' corpora kept in DIR when given. Run it on a quiet machine: the rate depends on the cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.fuzz is there

from tests.fuzz import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes per target (default 10)")
    parser.add_argument("--work", help="keep the corpora and crashes here (default: a temporary folder)")
    args = parser.parse_args()
    sys.exit(main(["all", "--minutes", str(args.minutes), *(["--work", args.work] if args.work else [])]))
