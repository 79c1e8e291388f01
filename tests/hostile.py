"""Reading the same bytes with both engines, and the invariants every reader keeps on hostile input.

Shared by the hostile-input tests (tests/test_hostile.py), the properties (tests/test_properties.py)
and the coverage-guided fuzz targets (tests/fuzz.py), so that all three check the same promises:

- nothing escapes but the documented errors (a ``LineError`` for a line, an ``InputError`` for input that
  cannot be read at all);
- lines in = decisions + errors: every line that is not blank gives exactly one result, numbered by its
  physical line (a CSV header is line 1);
- both engines read a file alike: the same lines decided, with the same values, and the same errors (line,
  field, message).
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cmap_policy.errors import LineError
from cmap_policy.lines import read_lines
from cmap_policy.model import ClaimLine, Program

# what each engine made of one line: ("ok", the line's values) or ("error", field, message)
Outcome = tuple[Any, ...]


def _values(line: ClaimLine) -> tuple[Any, ...]:
    return (line.code, line.date.isoformat(), tuple(line.modifiers), line.pos, line.claim_type, line.rcc,
            line.modality, line.member_age, line.provider_type, line.units, line.established_patient, line.line_id,
            line.claim_id)


def interpreter_reads(data: bytes, program: Program, fmt: str | None) -> dict[int, Outcome]:
    """Line number -> outcome, by ``lines.read_lines`` (the interpreter's reader, as stdin and the API use it);
    fails if a line number comes twice."""
    out: dict[int, Outcome] = {}
    for number, item in read_lines(io.BytesIO(data), program, fmt):
        assert number not in out, f"line {number} read twice"
        out[number] = (("error", item.field, item.message) if isinstance(item, LineError)
                       else ("ok", _values(item)))
    return out


def batch_reads(data: bytes, program: Program, fmt: str, block_bytes: int | None = None) -> dict[int, Outcome]:
    """Line number -> outcome, by the batch engine's reader and column checks (``files`` and ``checks``)."""
    import pyarrow as pa

    from cmap_policy.engines import checks, files, jsonl

    out: dict[int, Outcome] = {}

    def put(number: int, outcome: Outcome) -> None:
        assert number not in out, f"line {number} read twice"
        out[number] = outcome

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"lines.{fmt}"
        path.write_bytes(data)
        if fmt == "csv":
            _, batches = files.read_csv(path, block_bytes)
        elif fmt == "jsonl":  # small blocks: lines cut across blocks, Arrow's ranges and the one-by-one reader mixed
            _, batches = jsonl.read_jsonl_batches(path, _Policy(program), block_bytes or 512)  # type: ignore[arg-type]
        else:
            raise ValueError(fmt)
        for batch in batches:
            for err in batch.errors:
                assert err.line is not None
                put(err.line, ("error", err.field, err.message))
            tables: list[pa.Table] = [batch.lines] if batch.lines is not None else []
            raws = [(batch.raw, batch.line_numbers)] if batch.raw is not None and batch.raw.num_rows else []
            for raw, numbers in [*raws, *((t, pa.array(n)) for t, n in batch.parts)]:
                assert numbers is not None
                encoded, errors = checks.encode(raw, numbers, tuple(program.modalities))
                tables.append(encoded.lines())
                for row in errors.to_pylist():
                    put(row["line"], ("error", row["field"], row["error"]))
            for row in (r for table in tables for r in table.to_pylist()):
                mods = tuple(m for m in (row["mod1"], row["mod2"], row["mod3"], row["mod4"]) if m is not None)
                day = (checks.EPOCH + dt.timedelta(days=row["day"])).isoformat()  # the engine's day numbers
                put(row["line_no"], ("ok", (row["code"], day, mods, row["pos"], row["claim_type"], row["rcc"],
                                            row["modality"], row["member_age"], row["provider_type"],
                                            row["units"], row["established_patient"], row["line_id"],
                                            row["claim_id"])))
    return out


class _Policy:
    """Just enough of a Policy for the batch readers, which only need its program."""

    def __init__(self, program: Program) -> None:
        self.program = program


def nonblank_lines(data: bytes, header: bool) -> list[int]:
    """The numbers of the lines that must each give one result: the lines that are not blank (after a CSV's
    header, which is the first of them). An independent count: bytes split at line feeds, decoded leniently."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    numbers = [i for i, raw in enumerate(parts, 1) if raw.decode("utf-8", "replace").strip()]
    return numbers[1:] if header else numbers


def assert_all_lines_accounted(results: Iterable[int], data: bytes, header: bool) -> None:
    """Lines in = decisions + errors: exactly one result for each line that is not blank."""
    got = sorted(results)
    want = nonblank_lines(data, header)
    assert got == want, f"results for lines {got[:20]}, lines in {want[:20]}"


def x12_service_positions(text: str) -> list[int]:
    """An independent count of an interchange's service lines: the position of every SV1 or SV2 segment, and of
    every LX with neither before the next LX or the end of its claim (counting the segments that are not empty
    from 1, the ISA first)."""
    term, sep = text[105], text[3]
    if term not in text[106:].rstrip(" \t\r\n"):
        # the ISA names a terminator it never uses: the service lines a usual one finds (the one finding most)
        def found(g: str) -> int:
            return sum(s.strip().split(sep)[0] in ("SV1", "SV2") for s in text[106:].split(g))

        term = max(("~", "\n", "'", "!"), key=found)
        if not found(term):
            return []
        text = text[:105] + term + text[106:]
    ids = [s.strip().split(sep)[0] for s in text.split(term) if s.strip()]
    out = []
    for i, seg_id in enumerate(ids):
        if seg_id in ("SV1", "SV2"):
            out.append(i + 1)
        elif seg_id == "LX":
            rest = ids[i + 1:]
            end = next((j for j, x in enumerate(rest) if x in ("LX", "CLM", "HL", "SE", "GE", "IEA")), len(rest))
            if not any(x in ("SV1", "SV2") for x in rest[:end]):
                out.append(i + 1)
    return out


def assert_x12_lines_accounted(results: list[tuple[int, ClaimLine | LineError]], text: str) -> None:
    """Every service line gives exactly one result: a claim line, or an error naming a field of one (an error of
    the envelope names its segment instead, and is not a line's)."""
    from cmap_policy.lines import FIELDS

    lines = sorted(p for p, x in results if isinstance(x, ClaimLine) or x.field in FIELDS)
    assert lines == x12_service_positions(text), (lines, x12_service_positions(text))
