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


def looks_like_x12(path: str | Path) -> bool:
    """True when the file starts (after blanks) with an ISA segment."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"ISA")


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


def _date(qualifier: str, value: str, segment: str) -> str:
    """A DTP date (D8 CCYYMMDD, or RD8 CCYYMMDD-CCYYMMDD: its first day) as YYYY-MM-DD."""
    day = value.split("-", 1)[0] if qualifier == "RD8" else value
    if qualifier not in ("D8", "RD8") or len(day) != 8 or not day.isdigit():
        raise LineError(f"{segment}: {qualifier}*{value} is not a date (D8 CCYYMMDD or RD8 CCYYMMDD-CCYYMMDD)",
                        field="date")
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


def _strip_empty_segments(text: str) -> tuple[str, list[tuple[int, str]]]:
    """The interchange without empty segments (pyx12 stops reading at one), and where they were."""
    if len(text) < 106:
        return text, []
    term = text[105]
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


    if not text.startswith("ISA"):
        yield 1, LineError("segment 1: the interchange does not begin with an ISA segment", line=1, field="ISA")
        return
    text, empty = _strip_empty_segments(text)
    for position, message in empty:
        yield position, LineError(f"segment {position}: {message}", line=position, field="segment")
    try:
        reader = pyx12.x12file.X12Reader(io.StringIO(text))
    except pyx12.errors.X12Error as err:
        yield 1, LineError(f"segment 1 (ISA): {err}", line=1, field="ISA")
        return

    claim_type: str | None = None
    claim: _Claim | None = None
    line: _Line | None = None
    seen_iea = False

    def finish_claim() -> Iterator[Parsed]:
        nonlocal claim, line
        if claim is None:
            return
        for ln in claim.lines:
            yield _decide_line(ln, claim, claim_type, program, parse_line)
        claim, line = None, None

    def envelope(position: int, seg_id: str) -> Iterator[Parsed]:
        for err in reader.pop_errors():
            where = err[4] if len(err) > 4 and err[4] else position
            yield where, LineError(f"segment {where} ({seg_id}): {err[2]}", line=where, field=seg_id)

    try:
        for seg in reader:
            position = reader.get_cur_line()
            seg_id = seg.get_seg_id()
            yield from envelope(position, seg_id)
            if seg_id == "ST":
                guide = seg.get_value("ST03") or ""
                claim_type = ("professional" if "X222" in guide else "institutional" if "X223" in guide else None)
            elif seg_id == "GS" and claim_type is None:
                guide = seg.get_value("GS08") or ""
                claim_type = ("professional" if "X222" in guide else "institutional" if "X223" in guide else None)
            elif seg_id in ("HL", "SE", "CLM"):
                yield from finish_claim()
                if seg_id == "CLM":
                    pos = seg.get_value("CLM05-1") if claim_type != "institutional" else None
                    claim = _Claim(position, seg.get_value("CLM01") or None, pos or None)
            elif seg_id == "IEA":
                seen_iea = True
            elif claim is None:
                continue
            elif seg_id == "LX":
                line = _Line(position, "LX", seg.get_value("LX01") or None)
                claim.lines.append(line)
            elif seg_id in ("SV1", "SV2"):
                if line is None or line.fields:
                    line = _Line(position, seg_id, None)  # a service segment without its own LX
                    claim.lines.append(line)
                line.position, line.segment = position, seg_id
                line.fields = _service_fields(seg, seg_id)
                if claim_type is None:
                    line.fields["claim_type"] = "professional" if seg_id == "SV1" else "institutional"
            elif seg_id == "DTP":
                qualifier = seg.get_value("DTP01")
                on_line = line is not None and qualifier == "472"
                on_claim = line is None and (qualifier == "472" or (qualifier == "434" and claim.date is None))
                if on_line or on_claim:
                    try:
                        day = _date(seg.get_value("DTP02") or "", seg.get_value("DTP03") or "",
                                    f"DTP*{qualifier} (segment {position})")
                    except LineError as err:
                        if line is not None:
                            line.problem = err.message
                        else:  # the claim's lines without their own date will say they have none
                            claim.date = None
                            claim.problem = err.message
                        continue
                    if line is not None:
                        line.date = day
                    else:
                        claim.date = day
            elif seg_id == "REF" and line is not None and seg.get_value("REF01") == "6R":
                line.ref_6r = seg.get_value("REF02") or None
        yield from finish_claim()
        position = reader.get_cur_line()
        reader.cleanup()
        yield from envelope(position, "IEA" if seen_iea else "end")
    except pyx12.errors.X12Error as err:
        position = reader.get_cur_line()
        yield from finish_claim()
        yield position, LineError(f"segment {position}: {err}", line=position, field="segment")


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


def _decide_line(ln: _Line, claim: _Claim, claim_type: str | None, program: Program, parse_line: Any) -> Parsed:
    line_id = ln.ref_6r or ln.lx
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
