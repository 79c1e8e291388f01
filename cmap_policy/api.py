"""The Python API: one public function for each CLI command, with the same arguments."""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from . import formats
from .arguments import expect, expect_choice, expect_path, expect_text
from .columnar import read_columnar
from .errors import LineError, PolicyError, Problem
from .guard import byte_source
from .interpreter import Span, find_period, spans
from .lines import guess_format, lines_from_records, read_lines
from .load.loader import load_policy
from .model import ClaimLine, Period, Policy, Program
from .results import LineResult as LineResult  # api.LineResult: where programs have always found it
from .results import decide_record
from .x12 import read_x12


def policy_for(function: str, policy: object, release: object = None) -> Policy:
    """What the public functions do with their ``policy`` and ``release`` arguments: the policy given, or the one
    loaded from its folder (the bundled one for None); an unknown release is an ``UnknownReleaseError`` here,
    before any line is read. ``TypeError`` or ``ValueError`` names a wrong argument, and ``function``."""
    if not isinstance(policy, Policy):
        expect_path(function, "policy", policy, optional=True)
        policy = load_policy(cast("str | Path | None", policy))
    expect_text(function, "release", release, optional=True)
    policy.release(cast("str | None", release))
    return policy


INPUT_FORMATS = formats.INPUTS  # what ``eval_lines`` may be told to read


def _check_source(source: object) -> None:
    """``eval_lines``'s source: a path, a stream, records (a mapping each), or None for standard input."""
    if source is None or isinstance(source, (str, Path)) or hasattr(source, "read"):
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise TypeError("eval_lines: source is bytes; pass a path, a binary stream (io.BytesIO(data)) or records")
    if isinstance(source, Mapping):
        raise TypeError("eval_lines: source is one record (a mapping); pass records as a list of mappings")
    if not isinstance(source, Iterable):
        raise TypeError("eval_lines: source must be a path, a binary or text stream, records (an iterable of "
                        f"mappings) or None for standard input, not {type(source).__name__}")


def eval_lines(
    source: str | Path | IO[str] | IO[bytes] | Iterable[Mapping[str, Any]] | None = None,
    *,
    policy: Policy | str | Path | None = None,
    release: str | None = None,
    input_format: str | None = None,
) -> Iterator[LineResult]:
    """Decide every line of ``source``: a file path, a binary or text stream, records, or stdin when None.

    A path's format is ``input_format``, else its suffix, else what its first bytes show (``formats.of_file``);
    a stream's is ``input_format`` or guessed from its first lines (JSON, JSON Lines or CSV: the formats read
    a line at a time). Malformed lines come back as results with ``error`` set; every other line is decided.
    Files and standard input are read as bytes, so a line that is not UTF-8 is that line's error only.
    """
    _check_source(source)
    expect_choice("eval_lines", "input_format", input_format, INPUT_FORMATS, optional=True)
    pol = policy_for("eval_lines", policy, release)  # an unknown release is a usage error before any line is read
    if source is None:
        stdin: IO[bytes] | IO[str] = getattr(sys.stdin, "buffer", sys.stdin)
        yield from _decide(read_stream(stdin, pol.program, input_format), pol, release)
    elif isinstance(source, (str, Path)):
        yield from _decide(read_file(Path(source), pol.program, input_format), pol, release)
    elif hasattr(source, "read"):
        stream = cast(IO[bytes], source)
        yield from _decide(read_stream(stream, pol.program, input_format), pol, release)
    else:
        yield from _decide(lines_from_records(source, pol.program), pol, release)


def read_stream(stream: IO[bytes] | IO[str], program: Program,
                fmt: str | None = None) -> Iterator[tuple[int, ClaimLine | LineError]]:
    """Every line of a stream in any format of ``formats.INPUTS``, as the interpreter reads it: JSON, JSON Lines
    and CSV a line at a time (``lines.read_lines``; the format guessed from the first lines when not given);
    Parquet, Arrow and X12, which are read whole, copied to a temporary file first and read as that file."""
    src = byte_source(stream)
    fmt = guess_format(src) if fmt is None else fmt
    if fmt in formats.STREAMED:
        yield from read_lines(src, program, fmt)
        return
    with tempfile.TemporaryDirectory(prefix="cmap-policy-stream-") as tmp:
        path = Path(tmp) / f"stream{formats.SUFFIX_OF.get(fmt, '')}"
        with path.open("wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        yield from read_file(path, program, fmt)


def read_file(path: Path, program: Program, fmt: str | None = None) -> Iterator[tuple[int, ClaimLine | LineError]]:
    """Every line of the claims file at ``path`` in any format of ``formats.INPUTS``, as the interpreter reads it."""
    fmt = formats.of_file(path, fmt) or "jsonl"  # an empty file of no known suffix: no lines
    if fmt == "x12":
        yield from read_x12(path, program)
    elif fmt in ("parquet", "arrow"):
        yield from read_columnar(path, fmt, program)
    else:
        with path.open("rb") as stream:
            yield from read_lines(stream, program, fmt)


def file_format(path: str | Path) -> str | None:
    """The format of a claims file: by its suffix, else by its first bytes (``formats.of_file``)."""
    return formats.of_file(path)


def _decide(parsed: Iterable[tuple[int, ClaimLine | LineError]], policy: Policy,
            release: str | None) -> Iterator[LineResult]:
    for number, item in parsed:
        yield decide_record(item, number, policy, release)


def validate(path: str | Path | None = None) -> list[Problem]:
    """Every problem in the policy tree at ``path`` (default: the bundled policy) and its FAQs; empty when valid."""
    try:
        policy = load_policy(path)
    except PolicyError as err:
        return err.problems
    from .load.faq import check_faqs  # FAQs refer to the loaded policy's codes, sources and releases

    return check_faqs(policy)[1]


@dataclass(frozen=True, slots=True)
class CodeReport:
    code: str
    release: str
    on_date: dt.date | None
    periods: tuple[Period, ...]
    in_force: Period | None
    policy: Policy
    spans: tuple[Span, ...] = ()  # the whole timeline: rows, and gaps known or not

    @property
    def whole_table_from(self) -> dt.date | None:
        """The first date of service from which the release holds the whole table (None: only named rows)."""
        return self.policy.complete_from.get(self.release)

    def span_on(self, day: dt.date) -> Span | None:
        return next((s for s in self.spans if (s.start is None or s.start <= day) and (s.end is None or day <= s.end)),
                    None)

    def as_dict(self) -> dict[str, Any]:
        c = self.policy.codes.get(self.code)
        whole = self.whole_table_from
        on = self.span_on(self.on_date) if self.on_date is not None else None
        return {
            "code": self.code,
            "listed": c is not None and bool(self.periods),
            "system": c.system if c else None,
            "description": c.description if c else None,
            "category": c.category if c else None,
            "release": self.release,
            "coverage": "complete" if whole is not None else "partial",
            "whole_table_from": whole.isoformat() if whole else None,
            "date": self.on_date.isoformat() if self.on_date else None,
            "in_force": self.in_force.id if self.in_force else None,
            # on the date: a row in force, a known gap (not on the table), or no public source
            "on_date": None if on is None else ("row" if on.period else "not-listed" if on.known else "no-source"),
            "periods": [_period_dict(p) for p in self.periods],
            "timeline": [{"from": s.start.isoformat() if s.start else None, "to": s.end.isoformat() if s.end else None,
                          "period": s.period.id if s.period else None,
                          "kind": "row" if s.period else "not-listed" if s.known else "no-source"}
                         for s in self.spans],
            "policy_hash": self.policy.hash,
            "authority": self.policy.program.authority,
            "official_table": self.policy.program.official_table.source.url
            if self.policy.program.official_table else None,
        }


def _period_dict(p: Period) -> dict[str, Any]:
    return {**p.as_dict(), "from_official_table": p.citation.source.kind == "official-table",
            "secondary_source": p.secondary}


def show(code: str, *, date: dt.date | None = None, release: str | None = None,
         policy: Policy | str | Path | None = None) -> CodeReport:
    """The table rows of ``code`` as published in ``release``, and the one in force on ``date`` if given."""
    expect_text("show", "code", code)
    if isinstance(date, dt.datetime):
        raise TypeError("show: date must be a datetime.date, not a datetime (pass its .date())")
    if date is not None:
        expect("show", "date", date, dt.date, "a datetime.date or None")
    pol = policy_for("show", policy, release)
    rel = pol.release(release)
    code = code.strip().upper()
    view = pol.views[rel.id].get(code)
    periods = view.periods if view else ()
    in_force = find_period(view, date)[0] if view is not None and date is not None else None
    return CodeReport(code, rel.id, date, periods, in_force, pol, spans(pol, code, rel.id))
