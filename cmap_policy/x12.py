"""Claim lines from X12 837 files (837P professional, 837I institutional).

pyx12 reads the interchange: it finds the delimiters in the ISA header, splits
segments and elements, and checks the envelope (ISA/IEA, GS/GE, ST/SE counts
and control numbers). This module walks the segments it yields and turns each
service line (loop 2400) into the fields ``lines.parse_line`` reads:

==============  ===========================================================
procedure code  SV101-2 (837P) or SV202-2 (837I), modifiers in -3 to -6
place of service SV105, else CLM05-1 on an 837P (on an 837I CLM05 is the
                facility type, not a place of service)
revenue code    SV201 (837I): the line's revenue center code
date            the line's DTP*472, else the claim's DTP*472 (837P) or the
                start of its DTP*434 statement period (837I)
claim id        CLM01; line id: REF*6R of the line, else LX01
claim type      from the implementation guide in ST03/GS08 (X222 is 837P,
                X223 is 837I), else from the service segment (SV1 or SV2)
==============  ===========================================================

Every result carries the position of its segment (1 = the ISA segment). A
problem with one claim or line becomes a ``LineError`` for that line, and the
claims after it are still read; a problem with the envelope is reported
naming its segment and position.

Nothing is lost: every service line (an SV1 or SV2 segment, or an LX with
neither) gives a decision or an error. A service line outside any claim (no
CLM before it in its loop) is an error naming it. The ISA segment has a fixed
width, which is checked before its delimiters are trusted (a padded ISA would
otherwise make any character the segment terminator). If pyx12 cannot read
the interchange past some segment, whatever it raised, each service line after
that point is reported as not read.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LineError
from .lines import parse_line
from .model import ClaimLine, Program

Parsed = tuple[int, "ClaimLine | LineError"]


@dataclass
class _Line:
    position: int
    segment: str
    lx: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    ref_6r: str | None = None
    date: str | None = None
    problem: str | None = None


@dataclass
class _Claim:
    position: int
    claim_id: str | None
    pos: str | None
    date: str | None = None
    problem: str | None = None
    lines: list[_Line] = field(default_factory=list)
    orphan: bool = False  # no CLM: its lines are reported, not decided


def _date(qualifier: str, value: str, segment: str) -> str:
    """A DTP date (D8 CCYYMMDD, or RD8 CCYYMMDD-CCYYMMDD: its first day) as YYYY-MM-DD."""
    day = value.split("-", 1)[0] if qualifier == "RD8" else value
    if qualifier not in ("D8", "RD8") or len(day) != 8 or not day.isdigit():
        raise LineError(f"{segment}: {qualifier}*{value} is not a date (D8 CCYYMMDD or RD8 CCYYMMDD-CCYYMMDD)",
                        field="date")
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)  # ISA01 to ISA16, fixed by the standard
ISA_LENGTH = 106  # "ISA", 16 elements each after a separator, and the segment terminator


def isa_problem(text: str) -> str | None:
    """What is wrong with the fixed-width ISA segment at the start of ``text``, or None.

    The ISA fixes where its delimiters are: the element separator is character 4, the component
    separator character 105 and the segment terminator character 106. Those positions mean something
    only if every element has its standard width, so each is checked before the delimiters are used.
    """
    sep = text[3:4]
    if not sep or sep.isalnum() or sep.isspace():
        return "the character after ISA is not an element separator"
    elements = text.split(sep, 16)[1:17]
    for i, (value, width) in enumerate(zip(elements, ISA_WIDTHS, strict=False), 1):
        size = len(value) if i < 16 else len(value[:1])
        if i < 16 and size != width:
            return (f"ISA{i:02d} is {size:,} characters long, not {width}: the ISA segment has a fixed width of "
                    f"{ISA_LENGTH} characters")
    if len(elements) < 16 or len(text) < ISA_LENGTH:
        return f"the ISA segment is cut short: it has a fixed width of {ISA_LENGTH} characters"
    term = text[ISA_LENGTH - 1]
    if term.isalnum() or term in (sep, text[ISA_LENGTH - 2]):
        return f"{term!r} (character {ISA_LENGTH}) cannot be the segment terminator"
    if term in text[:ISA_LENGTH - 1]:
        # the ISA would end before its own terminator, and every later position would shift
        at = text.index(term) + 1
        return (f"the segment terminator {term!r} (character {ISA_LENGTH}) also appears inside the ISA segment, "
                f"at character {at}")
    return None


def _strip_empty_segments(text: str) -> tuple[str, list[tuple[int, str]]]:
    """The interchange without empty segments (pyx12 stops reading at one), and where they were."""
    if len(text) < ISA_LENGTH:
        return text, []
    term = text[ISA_LENGTH - 1]
    parts = text.split(term)
    kept: list[str] = []
    problems: list[tuple[int, str]] = []
    for part in parts[:-1]:
        if part.strip():
            kept.append(part)
        else:
            problems.append((len(kept) + 1, "an empty segment (two segment terminators in a row); it was skipped"))
    kept.append(parts[-1])
    return term.join(kept), problems


def service_segments(text: str) -> list[tuple[int, str]]:
    """(position, id) of every service line of an interchange whose ISA is sound: each SV1 or SV2 segment, and
    each LX with neither before the next LX or the end of its claim. Positions count non-empty segments."""
    term, sep = text[ISA_LENGTH - 1], text[3]
    out: list[tuple[int, str]] = []
    open_lx: int | None = None
    for position, segment in enumerate((s for s in text.split(term) if s.strip()), 1):
        seg_id = segment.strip().split(sep, 1)[0]
        if seg_id in ("SV1", "SV2"):
            out.append((position, seg_id))
            open_lx = None
        elif seg_id in ("LX", "CLM", "HL", "SE", "GE", "IEA"):
            if open_lx is not None:
                out.append((open_lx, "LX"))
            open_lx = position if seg_id == "LX" else None
    if open_lx is not None:
        out.append((open_lx, "LX"))
    return out


def _lx_before_service(text: str) -> Iterator[tuple[int, int]]:
    """(LX position, position of the SV1 or SV2 that follows it in its group) for each LX that has one."""
    term, sep = text[ISA_LENGTH - 1], text[3]
    lx: int | None = None
    for position, segment in enumerate((s for s in text.split(term) if s.strip()), 1):
        seg_id = segment.strip().split(sep, 1)[0]
        if seg_id in ("SV1", "SV2") and lx is not None:
            yield lx, position
            lx = None
        elif seg_id in ("LX", "CLM", "HL", "SE", "GE", "IEA"):
            lx = position if seg_id == "LX" else None


def read_x12(path: str | Path, program: Program) -> Iterator[Parsed]:
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("ascii").lstrip("\ufeff \t\r\n")
    except UnicodeDecodeError as exc:
        text = raw.decode("latin-1").lstrip("\ufeff \t\r\n")
        yield 0, LineError(f"byte {exc.start} is not ASCII: X12 uses the basic character set", field="interchange")
    yield from parse_x12(text, program)


def parse_x12(text: str, program: Program) -> Iterator[Parsed]:
    """Every service line of an 837 interchange as (segment position, ClaimLine or LineError)."""
    try:
        import pyx12.errors
        import pyx12.x12file
    except ImportError:
        yield 1, LineError("reading X12 needs pyx12: pip install 'cmap-policy[batch]'", line=1, field="interchange")
        return

    if not text.strip("\ufeff \t\r\n\x00"):
        return  # an empty file holds no claim lines (the command line says so), as an empty CSV file
    if not text.startswith("ISA"):
        yield 1, LineError("segment 1: the interchange does not begin with an ISA segment", line=1, field="ISA")
        return
    problem = isa_problem(text)
    if problem is not None:
        yield 1, LineError(f"segment 1 (ISA): {problem}; no segment of the interchange could be read", line=1,
                           field="ISA")
        return
    term = text[ISA_LENGTH - 1]
    if term not in text[ISA_LENGTH:].rstrip(" \t\r\n"):
        yield from _terminator_never_recurs(text)
        return
    text = _closed(text)
    text, empty = _strip_empty_segments(text)
    for position, message in empty:
        yield position, LineError(f"segment {position}: {message}", line=position, field="segment")
    units = service_segments(text)
    walker = _Walker(program, pyx12, {lx: sv for lx, sv in _lx_before_service(text)})
    yield from walker.run(text)
    for position, seg_id in units:
        if position not in walker.lines_read:
            why = (f"the interchange could not be read past segment {walker.stopped_at}" if walker.stopped_at else
                   "the X12 reader did not hand it over (outside any transaction it could follow, or after the "
                   "last segment terminator)")
            yield position, LineError(f"segment {position} ({seg_id}): a service line that was not read: {why}",
                                      line=position, field="code")


def _closed(text: str) -> str:
    """The interchange with its last segment terminated: many writers leave the last terminator off, and the
    segments before it are whole, so the reader is not told of a fault that loses nothing."""
    term = text[ISA_LENGTH - 1]
    body = text if term.isspace() else text.rstrip(" \t\r\n")
    return body if body.endswith(term) else body + term


_USUAL_TERMINATORS = ("~", "\n", "'", "!")


def _terminator_never_recurs(text: str) -> Iterator[Parsed]:
    """An ISA whose segment terminator (character 106) is never used after it: no later segment can be found
    by it. Each service line a usual terminator would find (the one that finds most service segments) is
    reported as not read, so that no line of the file is lost without a word; with none found, the interchange
    is one error."""
    term, sep = text[ISA_LENGTH - 1], text[3]
    why = (f"the segment terminator {term!r} that the ISA names (character {ISA_LENGTH}) never appears after the "
           "ISA, so no segment after it can be read")

    def services(guess: str) -> int:
        return sum(seg.strip().split(sep, 1)[0] in ("SV1", "SV2") for seg in text[ISA_LENGTH:].split(guess))

    guess = max(_USUAL_TERMINATORS, key=services)
    units = service_segments(text[:ISA_LENGTH - 1] + guess + text[ISA_LENGTH:]) if services(guess) else []
    if not units:
        yield 1, LineError(f"segment 1 (ISA): {why}", line=1, field="ISA")
    for position, seg_id in units:
        yield position, LineError(f"segment {position} ({seg_id}): a service line that was not read: {why}",
                                  line=position, field="code")


class _Walker:
    """Walks the segments pyx12 reads, gathering each claim's service lines and deciding them at its end."""

    def __init__(self, program: Program, pyx12: Any, service_after: dict[int, int]) -> None:
        self.program = program
        self.pyx12 = pyx12
        # an LX whose service segment the text has (at this position) but pyx12 did not hand over: that
        # service line is reported once, at its service segment, as not read
        self.service_after = service_after
        self.reader: Any = None
        self.claim_type: str | None = None
        self.claim: _Claim | None = None
        self.line: _Line | None = None
        self.seen_iea = False
        self.stopped_at: int | None = None  # where pyx12 gave up, if it did
        self.lines_read: set[int] = set()  # positions of the service lines given a decision or an error

    def run(self, text: str) -> Iterator[Parsed]:
        """Every service line and every problem of the envelope. Whatever pyx12 raises (X12Error, and on a
        broken envelope IndexError, KeyError and the like) ends the walk at the segment it had reached,
        after the lines of the claim it was in."""
        try:
            self.reader = self.pyx12.x12file.X12Reader(io.StringIO(text))
            yield from self._segments()
        except Exception as err:
            position = self._position()
            yield from self._finish_claim()
            self.stopped_at = position
            what = str(err) if isinstance(err, self.pyx12.errors.X12Error) else f"{type(err).__name__} in pyx12"
            yield position, LineError(f"segment {position}: the interchange cannot be read past here ({what})",
                                      line=position, field="segment")

    def _position(self) -> int:
        try:
            return int(self.reader.get_cur_line()) if self.reader is not None else 1
        except Exception:
            return 1

    def _finish_claim(self) -> Iterator[Parsed]:
        claim, self.claim, self.line = self.claim, None, None
        if claim is not None:
            for ln in claim.lines:
                if not ln.fields and ln.position in self.service_after:
                    continue
                self.lines_read.add(ln.position)
                yield _decide_line(ln, claim, self.claim_type, self.program)

    def _envelope(self, position: int, seg_id: str) -> Iterator[Parsed]:
        for err in self.reader.pop_errors():
            where = err[4] if len(err) > 4 and err[4] else position
            yield where, LineError(f"segment {where} ({seg_id}): {err[2]}", line=where, field=seg_id)

    def _segments(self) -> Iterator[Parsed]:
        reader = self.reader
        for seg in reader:
            position = reader.get_cur_line()
            seg_id = seg.get_seg_id()
            yield from self._envelope(position, seg_id)
            if seg_id == "ST":
                self.claim_type = _claim_type(seg.get_value("ST03"))
            elif seg_id == "GS" and self.claim_type is None:
                self.claim_type = _claim_type(seg.get_value("GS08"))
            elif seg_id in ("HL", "SE", "CLM"):
                yield from self._finish_claim()
                if seg_id == "CLM":
                    pos = seg.get_value("CLM05-1") if self.claim_type != "institutional" else None
                    self.claim = _Claim(position, seg.get_value("CLM01") or None, pos or None)
            elif seg_id == "IEA":
                self.seen_iea = True
            elif self.claim is None and seg_id not in ("LX", "SV1", "SV2"):
                continue
            else:
                self._claim_segment(seg, seg_id, position)
        yield from self._finish_claim()
        position = reader.get_cur_line()
        reader.cleanup()
        yield from self._envelope(position, "IEA" if self.seen_iea else "end")

    def _claim_segment(self, seg: Any, seg_id: str, position: int) -> None:
        if self.claim is None:  # a service line with no CLM before it in its loop: reported, never dropped
            self.claim = _Claim(position, None, None, orphan=True)
        claim = self.claim
        if seg_id == "LX":
            self.line = _Line(position, "LX", seg.get_value("LX01") or None)
            claim.lines.append(self.line)
        elif seg_id in ("SV1", "SV2"):
            line = self.line
            if line is None or line.fields:
                line = self.line = _Line(position, seg_id, None)  # a service segment without its own LX
                claim.lines.append(line)
            line.position, line.segment = position, seg_id
            line.fields = _service_fields(seg, seg_id)
            if self.claim_type is None:
                line.fields["claim_type"] = "professional" if seg_id == "SV1" else "institutional"
        elif seg_id == "DTP":
            self._date(seg, position, claim)
        elif seg_id == "REF" and self.line is not None and seg.get_value("REF01") == "6R":
            self.line.ref_6r = seg.get_value("REF02") or None

    def _date(self, seg: Any, position: int, claim: _Claim) -> None:
        line = self.line
        qualifier = seg.get_value("DTP01")
        on_line = line is not None and qualifier == "472"
        on_claim = line is None and (qualifier == "472" or (qualifier == "434" and claim.date is None))
        if not (on_line or on_claim):
            return
        try:
            day = _date(seg.get_value("DTP02") or "", seg.get_value("DTP03") or "",
                        f"DTP*{qualifier} (segment {position})")
        except LineError as err:
            if line is not None:
                line.problem = err.message
            else:  # the claim's lines without their own date will say they have none
                claim.date = None
                claim.problem = err.message
            return
        if line is not None:
            line.date = day
        else:
            claim.date = day


def _claim_type(guide: str | None) -> str | None:
    """The claim type an implementation guide names (ST03, GS08): X222 is the 837P, X223 the 837I."""
    guide = guide or ""
    return "professional" if "X222" in guide else "institutional" if "X223" in guide else None


def _service_fields(seg: Any, seg_id: str) -> dict[str, Any]:
    composite = "SV101" if seg_id == "SV1" else "SV202"
    qualifier = seg.get_value(f"{composite}-1")
    fields: dict[str, Any] = {
        "code": seg.get_value(f"{composite}-2"),
        "modifiers": [m for m in (seg.get_value(f"{composite}-{i}") for i in range(3, 7)) if m],
        "_qualifier": qualifier,
    }
    if seg_id == "SV1":
        fields["pos"] = seg.get_value("SV105")
    else:
        fields["rcc"] = seg.get_value("SV201")
    return fields


def _decide_line(ln: _Line, claim: _Claim, claim_type: str | None, program: Program) -> Parsed:
    line_id = ln.ref_6r or ln.lx
    if claim.orphan:
        return ln.position, LineError(f"segment {ln.position} ({ln.segment}): a service line outside any claim (no "
                                      "CLM segment before it in its loop)", line=ln.position, field="claim_id")
    where = f"claim {claim.claim_id}, line {line_id}" if line_id else f"claim {claim.claim_id}"
    if not ln.fields:
        return ln.position, LineError(f"{where}: the service line (LX at segment {ln.position}) has no SV1 or SV2",
                                      line=ln.position, field="code")
    problem = ln.problem or (claim.problem if ln.date is None else None)
    if problem is not None:
        return ln.position, LineError(f"{where}: {problem}", line=ln.position, field="date")
    fields = dict(ln.fields)
    qualifier = fields.pop("_qualifier")
    if qualifier not in (None, "", "HC", "HP"):
        return ln.position, LineError(f"{where}: {ln.segment} procedure qualifier {qualifier!r} is not HC (HCPCS/CPT)",
                                      line=ln.position, field="code")
    record: dict[str, Any] = {
        "code": fields["code"],
        "date": ln.date or claim.date,
        "modifiers": fields["modifiers"],
        "pos": fields.get("pos") or (claim.pos if ln.segment == "SV1" else None),
        "rcc": fields.get("rcc"),
        "claim_type": fields.get("claim_type") or claim_type,
        "line_id": line_id,
        "claim_id": claim.claim_id,
    }
    try:
        return ln.position, parse_line(record, program)
    except LineError as err:
        return ln.position, LineError(f"{where}: {err.message}", line=ln.position, field=err.field)
