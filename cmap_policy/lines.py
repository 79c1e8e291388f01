"""Claim lines in: from a mapping, JSON, JSON Lines or CSV, each checked field by field.

A malformed line becomes a ``LineError`` naming the line and the field; it never
stops the lines after it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, cast

from .errors import LineError
from .model import ClaimLine, Program

MAX_LINE_BYTES = 1_000_000
MAX_MODIFIERS = 4
CODE_RE = re.compile(r"^([0-9]{4}[0-9A-Z]|[A-V][0-9]{4})$")
MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")
POS_RE = re.compile(r"^[0-9]{2}$")
RCC_RE = re.compile(r"^[0-9]{4}$")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
CLAIM_TYPES = ("professional", "institutional")

FIELDS = {
    "code": "procedure code (CPT or HCPCS Level II), required",
    "date": "date of service, YYYY-MM-DD, required",
    "modifiers": "0 to 4 two-character modifiers (a list, or a string split on spaces, commas, semicolons, colons)",
    "pos": "two-digit place of service",
    "claim_type": "professional (default) or institutional",
    "rcc": "four-digit revenue center code (institutional claims)",
    "modality": "the modality, when the line states it instead of (or besides) a modifier",
    "member_age": "member age in whole years",
    "provider_type": "the billing provider's type",
    "units": "units billed for the day",
    "established_patient": "true when the member is an established patient of the provider",
    "line_id": "your id for the line, copied to the decision",
    "claim_id": "your id for the claim, copied to the decision",
}
ALIASES = {"procedure_code": "code", "date_of_service": "date", "dos": "date", "place_of_service": "pos",
           "revenue_code": "rcc", "revenue_center_code": "rcc", "modifier": "modifiers", "age": "member_age"}


def _text(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LineError(f"expected text, got {json.dumps(value)[:40]}", field=field)
    return str(value).strip()


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise LineError(f"expected a whole number, got {value!r}", field=field)
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[0-9]+\s*", value):
            raise LineError(f"expected a whole number, got {value!r}", field=field)
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise LineError(f"expected a whole number, got {json.dumps(value)[:40]}", field=field)
    if not lo <= value <= hi:
        raise LineError(f"{value} is out of range ({lo} to {hi})", field=field)
    return value


def parse_date(value: Any, field: str = "date") -> dt.date:
    text = _text(value, field)
    if not DATE_RE.match(text):
        raise LineError(f"{text!r} is not a date in the form YYYY-MM-DD", field=field)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise LineError(f"{text} is not a real calendar date", field=field) from None


def _modifiers(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items: list[Any]
    if isinstance(value, str):
        items = [v for v in re.split(r"[\s,;:|]+", value) if v]
    elif isinstance(value, list):
        items = value
    else:
        raise LineError(f"expected a list of modifiers, got {json.dumps(value)[:40]}", field="modifiers")
    out = []
    for item in items:
        mod = _text(item, "modifiers").upper()
        if not MODIFIER_RE.match(mod):
            raise LineError(f"{mod!r} is not a modifier (two letters or digits, such as 95, GT, 93)",
                            field="modifiers")
        out.append(mod)
    if len(out) > MAX_MODIFIERS:
        raise LineError(f"{len(out)} modifiers; a claim line carries at most {MAX_MODIFIERS}", field="modifiers")
    return tuple(out)


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "1"):
        return True
    if text in ("false", "no", "n", "0"):
        return False
    raise LineError(f"expected true or false, got {value!r}", field=field)


def parse_line(data: Mapping[str, Any], program: Program) -> ClaimLine:
    """A ``ClaimLine`` from a mapping of field names to values; ``LineError`` names the first bad field."""
    if not isinstance(data, Mapping):
        raise LineError(f"expected an object with the line's fields, got {type(data).__name__}")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        name = ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        if name not in FIELDS:
            raise LineError(f"unknown field (known: {', '.join(FIELDS)})", field=str(key))
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        fields[name] = value
    for required in ("code", "date"):
        if required not in fields:
            raise LineError("missing: every line needs a procedure code and a date of service", field=required)
    code = _text(fields["code"], "code").upper()
    if not CODE_RE.match(code):
        raise LineError(f"{code!r} is not a procedure code (five characters: a CPT code such as 90834 or a "
                        "HCPCS code such as T1016)", field="code")
    claim_type = _text(fields.get("claim_type", "professional"), "claim_type").lower()
    if claim_type not in CLAIM_TYPES:
        raise LineError(f"{claim_type!r} is not a claim type (professional or institutional)", field="claim_type")
    pos = None
    if "pos" in fields:
        pos = _text(fields["pos"], "pos")
        pos = pos.zfill(2) if pos.isdigit() and len(pos) == 1 else pos
        if not POS_RE.match(pos):
            raise LineError(f"{pos!r} is not a place of service (two digits, such as 02, 10 or 11)", field="pos")
    rcc = None
    if "rcc" in fields:
        rcc = _text(fields["rcc"], "rcc")
        rcc = rcc.zfill(4) if rcc.isdigit() and len(rcc) == 3 else rcc
        if not RCC_RE.match(rcc):
            raise LineError(f"{rcc!r} is not a revenue center code (four digits, such as 0900)", field="rcc")
    modality = None
    if "modality" in fields:
        modality = _text(fields["modality"], "modality").lower()
        if modality not in program.modalities:
            raise LineError(f"unknown modality {modality!r} (known: {', '.join(program.modalities)})",
                            field="modality")
    return ClaimLine(
        code=code,
        date=parse_date(fields["date"]),
        modifiers=_modifiers(fields.get("modifiers")),
        pos=pos,
        claim_type=claim_type,
        rcc=rcc,
        modality=modality,
        member_age=_int(fields["member_age"], "member_age", 0, 130) if "member_age" in fields else None,
        provider_type=_text(fields["provider_type"], "provider_type") if "provider_type" in fields else None,
        units=_int(fields["units"], "units", 0, 100_000) if "units" in fields else None,
        established_patient=(_bool(fields["established_patient"], "established_patient")
                             if "established_patient" in fields else None),
        line_id=_text(fields["line_id"], "line_id") if "line_id" in fields else None,
        claim_id=_text(fields["claim_id"], "claim_id") if "claim_id" in fields else None,
    )


Parsed = tuple[int, "ClaimLine | LineError"]


def _bounded_lines(stream: IO[str]) -> Iterator[tuple[int, str | None]]:
    """(line number, text) for each physical line; None for one longer than MAX_LINE_BYTES, read in chunks."""
    number = 0
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith("\n"):
            while chunk and not chunk.endswith("\n"):
                chunk = stream.readline(MAX_LINE_BYTES)
            yield number, None
        else:
            yield number, chunk


def _too_long(number: int) -> LineError:
    return LineError(f"the line is longer than {MAX_LINE_BYTES:,} characters; a claim line is a few hundred",
                     line=number)


def read_jsonl(stream: IO[str], program: Program) -> Iterator[Parsed]:
    for number, text in _bounded_lines(stream):
        if text is None:
            yield number, _too_long(number)
            continue
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, LineError(f"not valid JSON: {exc.msg} (column {exc.colno})", line=number)
            continue
        yield number, _parse_at(data, program, number)


def _parse_at(data: Any, program: Program, number: int) -> ClaimLine | LineError:
    try:
        return parse_line(data, program)
    except LineError as err:
        return err.at(number)


def read_csv(stream: IO[str], program: Program) -> Iterator[Parsed]:
    lines = _bounded_lines(stream)
    header_line = next(lines, None)
    if header_line is None:
        return
    number, header_text = header_line
    if header_text is None:
        yield number, _too_long(number)
        return
    header = next(csv.reader([header_text]))
    header = [h.strip().lower() for h in header]
    for number, text in lines:
        if text is None:
            yield number, _too_long(number)
            continue
        if not text.strip():
            continue
        try:
            rows = list(csv.reader([text], strict=True))
        except csv.Error as exc:
            yield number, LineError(f"not a valid CSV row: {exc}", line=number)
            continue
        row = rows[0] if rows else []
        if len(row) != len(header):
            yield number, LineError(f"{len(row)} values for {len(header)} columns ({', '.join(header)})",
                                    line=number)
            continue
        yield number, _parse_at(dict(zip(header, row, strict=True)), program, number)


def read_json_document(text: str, program: Program) -> Iterator[Parsed]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, LineError(f"not valid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno)
        return
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items, 1):
        yield i, _parse_at(item, program, i)


def sniff(head: str) -> str:
    """Guess the format from the first characters: json, jsonl or csv."""
    stripped = head.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        first = stripped.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "jsonl"
        except json.JSONDecodeError:
            return "json"
    return "csv"


def read_lines(stream: IO[str], program: Program, fmt: str | None = None) -> Iterator[Parsed]:
    """Parse every line of ``stream``; ``fmt`` is json, jsonl or csv (default: guessed from the content)."""
    if fmt is None:
        head = stream.read(4096)
        fmt = sniff(head)
        stream = cast(IO[str], _Chain(head, stream))
    if fmt == "json":
        yield from read_json_document(stream.read(), program)
    elif fmt == "jsonl":
        yield from read_jsonl(stream, program)
    elif fmt == "csv":
        yield from read_csv(stream, program)
    else:
        raise ValueError(f"unknown input format {fmt!r}")


class _Chain(io.TextIOBase):
    """A text stream that first replays ``head`` and then reads ``rest``: sniffing loses nothing."""

    def __init__(self, head: str, rest: IO[str]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        if size is None or size < 0:
            out, self._head = self._head + self._rest.read(), ""
            return out
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._rest.read(size)

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        limit = -1 if size is None else size
        if self._head:
            nl = self._head.find("\n")
            end = len(self._head) if nl < 0 else nl + 1
            if limit >= 0:
                end = min(end, limit)
            out, self._head = self._head[:end], self._head[end:]
            if out.endswith("\n") or (limit >= 0 and len(out) >= limit) or self._head:
                return out
            return out + self._rest.readline(-1 if limit < 0 else limit - len(out))
        return self._rest.readline(limit)


def lines_from_records(records: Iterable[Mapping[str, Any]], program: Program) -> Iterator[Parsed]:
    for i, rec in enumerate(records, 1):
        yield i, _parse_at(rec, program, i)
