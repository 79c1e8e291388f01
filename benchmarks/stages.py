"""Where the batch engine's time goes: each stage of a Parquet → Parquet run timed on its own, one after another.

    python benchmarks/stages.py                        # 1 M generated lines, the SYNTHETIC policy of 400 codes
    python benchmarks/stages.py --lines 1e7            # 10 M
    python benchmarks/stages.py LINES.parquet --policy DIR
    python benchmarks/stages.py --lines 1e7 --batch-rows 1e5 --plain-text   # as Spark's Python workers get them

The stages are those of ``engines.batch._run`` without its pipeline threads: read (pyarrow), check
(``checks.encode``), the slots (``SlotPolicy.parts``, the key, the distinct slots, the interpreter's first
decisions and the rest of ``SlotPolicy.answers``), the output table, the counts and the write. Seconds for the
whole file; the figures of docs/performance.md were taken with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from cmap_policy import load_policy  # noqa: E402
from cmap_policy.engines import slots  # noqa: E402
from cmap_policy.engines.batch import OUTPUT_SCHEMA, Engine, Summary  # noqa: E402
from cmap_policy.engines.files import BATCH_ROWS, ParquetWriter, read_parquet  # noqa: E402
from cmap_policy.testing import synthetic_policy, write_tree  # noqa: E402

SECONDS: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SECONDS[name] += time.perf_counter() - start
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", type=Path, help="a Parquet file of claim lines (default: generated)")
    parser.add_argument("--policy", type=Path, help="the policy tree (default: the SYNTHETIC policy of 400 codes)")
    parser.add_argument("--lines", type=float, default=1e6, help="lines to generate when no input is given")
    parser.add_argument("--batch-rows", type=float, default=BATCH_ROWS,
                        help=f"rows a batch is read and decided in (default {BATCH_ROWS:,}, the batch engine's)")
    parser.add_argument("--plain-text", action="store_true",
                        help="hand the checks plain text columns, as Spark's Python workers get them, instead of "
                             "the dictionaries the Parquet reader gives (the decoding timed on its own)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cmap-stages-"))
    policy_dir = args.policy or write_tree(synthetic_policy(400, seed=0), work / "policy")
    start = time.perf_counter()
    policy = load_policy(policy_dir)
    SECONDS["load the policy"] = time.perf_counter() - start
    src = args.input
    if src is None:
        from run import make_data

        src, _, _ = make_data(policy, int(args.lines), work, csv=False)
    print(f"{src.name}; load average {os.getloadavg()[0]:.2f}", file=sys.stderr)

    engine = Engine(policy)
    sp = engine.slots
    # the parts of SlotPolicy.answers, timed where it calls them
    sp.parts = timed("slots: parts", sp.parts)  # type: ignore[method-assign]
    for name, label in (("_combine", "slots: key"), ("_first_rows", "slots: distinct"),
                        ("decide", "slots: first decisions (interpreter)")):
        setattr(slots, name, timed(label, getattr(slots, name)))
    answer = timed("slots: all of answers", engine.answer)
    _, batches = read_parquet(src, int(args.batch_rows))
    out = ParquetWriter(work / "out.parquet", OUTPUT_SCHEMA)
    summary = Summary()
    started = time.perf_counter()
    while True:
        batch = timed("read", next)(batches, None)
        if batch is None:
            break
        if batch.raw is None:
            continue
        raw = timed("(decoded to plain text)", _plain)(batch.raw) if args.plain_text else batch.raw
        enc, errors = timed("check", engine.check)(raw, batch.line_numbers)
        answered = answer(enc)
        table = timed("output table", answered.table)()
        timed("counts", summary.add)(table, errors.num_rows)
        timed("write", out.write)(table)
    out.close()
    total = time.perf_counter() - started
    for name, seconds in SECONDS.items():
        print(f"{name:40} {seconds:7.3f} s")
    print(f"{'total (from the first read)':40} {total:7.3f} s  ({summary.read:,} lines in batches of "
          f"{int(args.batch_rows):,} rows{', plain text' if args.plain_text else ''}, {len(sp.decided):,} slots "
          f"decided; load average {os.getloadavg()[0]:.2f})")


def _plain(table: pa.Table) -> pa.Table:
    """The table with its dictionary columns decoded to plain text."""
    return pa.table([pc.cast(col, col.type.value_type) if pa.types.is_dictionary(col.type) else col
                     for col in table.columns], names=table.column_names)


if __name__ == "__main__":
    main()
