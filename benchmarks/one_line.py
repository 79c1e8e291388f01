"""Benchmark: what one line costs on the per-line road, stage by stage, in process.

    python benchmarks/one_line.py                  # 100,000 records, the SYNTHETIC policy of 400 codes
    python benchmarks/one_line.py --records 20000 --runs 9

The records are ``testing.claims.random_records`` as a client sends them (JSON objects, empty fields left
out), and each stage runs over all of them, best of ``--runs``:

- ``parse``: ``lines.parse_line``, the record read and checked into a ``ClaimLine`` (or its error);
- ``evaluate``: ``interpreter.evaluate`` on the lines read, every slot already decided (the memo's hit);
- ``answer``: ``service.decisions.Decider.answer``, what the service does for a single line: read, decide,
  JSON of the answer.

Microseconds a line, with the load average beside them. Before and after of a change: run it in both
trees, alternated (the figures move by 10-20% with the machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cmap_policy import load_policy
from cmap_policy.errors import LineError
from cmap_policy.interpreter import evaluate
from cmap_policy.lines import parse_line
from cmap_policy.model import ClaimLine
from cmap_policy.service.decisions import Decider
from cmap_policy.testing import synthetic_policy, write_tree
from cmap_policy.testing.claims import random_records


def best(fn: Callable[[], object], runs: int) -> float:
    """The fastest of ``runs`` calls, in seconds."""
    fastest = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each stage; the best is shown (default 5)")
    parser.add_argument("--codes", type=int, default=400, help="codes in the synthetic policy (default 400)")
    args = parser.parse_args()
    policy_dir = write_tree(synthetic_policy(args.codes, seed=0), Path(tempfile.mkdtemp(prefix="cmap-one-")) / "p")
    policy = load_policy(policy_dir)
    program = policy.program
    # as a client sends them: JSON objects without the empty fields
    records: list[dict[str, Any]] = [json.loads(json.dumps({k: v for k, v in r.items() if v != ""}))
                                     for r in random_records(policy, args.records, seed=1)]
    lines: list[ClaimLine] = []
    for record in records:
        with contextlib.suppress(LineError):
            lines.append(parse_line(record, program))

    def parse() -> None:
        for record in records:
            with contextlib.suppress(LineError):
                parse_line(record, program)

    def decide() -> None:
        for line in lines:
            evaluate(policy, line)

    decider = Decider(policy)

    def answer() -> None:
        for record in records:
            decider.answer(record, 1, None)

    decide()
    answer()  # every slot decided and its JSON made: the stages below are the steady state
    print(f"{len(records):,} records ({len(lines):,} read), best of {args.runs}; "
          f"load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    for name, fn, count in (("parse", parse, len(records)), ("evaluate", decide, len(lines)),
                            ("answer", answer, len(records))):
        print(f"{name:10} {best(fn, args.runs) / max(1, count) * 1e6:7.2f} us a line", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
