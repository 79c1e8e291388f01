"""Write examples/claims.parquet from examples/claims.csv: the same lines, with Parquet's own types.

    python examples/make_claims_parquet.py       # needs pyarrow: pip install 'cmap-policy[batch]'

The Parquet file is committed so that the README's commands run as written on a fresh clone; this script is how
it was made, and tests/test_first_run.py checks that the committed file holds what it writes. The date is a
Parquet date and the modifiers a list of text, as a claims system would write them (the CSV file holds both as
text); row groups, compression and the writer's version are pyarrow's defaults.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SCHEMA = pa.schema([("line_id", pa.string()), ("code", pa.string()), ("date", pa.date32()),
                    ("modifiers", pa.list_(pa.string())), ("pos", pa.string())])


def table(source: Path = HERE / "claims.csv") -> pa.Table:
    """The lines of the CSV file, typed as SCHEMA says."""
    with source.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return pa.table({
        "line_id": [r["line_id"] for r in rows],
        "code": [r["code"] for r in rows],
        "date": [dt.date.fromisoformat(r["date"]) for r in rows],
        "modifiers": [r["modifiers"].split() for r in rows],
        "pos": [r["pos"] or None for r in rows],
    }, schema=SCHEMA)


def main() -> None:
    pq.write_table(table(), HERE / "claims.parquet")


if __name__ == "__main__":
    main()
