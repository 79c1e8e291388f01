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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

from .errors import LineError
from .model import MAX_AGE, MAX_UNITS, ClaimLine, Program

MAX_LINE_BYTES = 1_000_000
MAX_MODIFIERS = 4
CODE_RE = re.compile(r"^([0-9]{4}[0-9A-Z]|[A-V][0-9]{4})$")
MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")
POS_RE = re.compile(r"^[0-9]{2}$")
RCC_RE = re.compile(r"^[0-9]{4}$")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
CLAIM_TYPES = ("professional", "institutional")

# The one map from a file's extension to the format of its claim lines, for every reader and writer.
FORMATS_BY_SUFFIX = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
                     ".pq": "parquet", ".837": "x12", ".x12": "x12", ".edi": "x12"}


def format_of(path: str | Path) -> str | None:
    """The format ``path``'s extension names (json, jsonl, csv, parquet, x12), or None."""
    return FORMATS_BY_SUFFIX.get(Path(str(path)).suffix.lower())

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
    """A date of service: strictly YYYY-MM-DD (a ``datetime.date`` passes as it is)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    text = _text(value, field)
    if not DATE_RE.match(text):
        raise LineError(f"{text!r} is not a date in the form YYYY-MM-DD", field=field)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise LineError(f"{text} is not a real calendar date", field=field) from None


# --- one check per field ---
#
# Each takes the field's value (never blank: a blank value is an absent field) and the
# modalities the program knows, and returns the value as a ClaimLine holds it or raises a
# LineError naming the field. ``parse_line`` and the batch and Spark engines all call
# these, so the engines cannot drift from the interpreter's reading of a line.

def check_code(value: Any, modalities: Collection[str] = ()) -> str:
    code = _text(value, "code").upper()
    if not CODE_RE.match(code):
        raise LineError(f"{code!r} is not a procedure code (five characters: a CPT code such as 90834 or a "
                        "HCPCS code such as T1016)", field="code")
    return code


def check_claim_type(value: Any, modalities: Collection[str] = ()) -> str:
    claim_type = _text(value, "claim_type").lower()
    if claim_type not in CLAIM_TYPES:
        raise LineError(f"{claim_type!r} is not a claim type (professional or institutional)", field="claim_type")
    return claim_type


def check_pos(value: Any, modalities: Collection[str] = ()) -> str:
    pos = _text(value, "pos")
    pos = pos.zfill(2) if pos.isdigit() and len(pos) == 1 else pos
    if not POS_RE.match(pos):
        raise LineError(f"{pos!r} is not a place of service (two digits, such as 02, 10 or 11)", field="pos")
    return pos


def check_rcc(value: Any, modalities: Collection[str] = ()) -> str:
    rcc = _text(value, "rcc")
    rcc = rcc.zfill(4) if rcc.isdigit() and len(rcc) == 3 else rcc
    if not RCC_RE.match(rcc):
        raise LineError(f"{rcc!r} is not a revenue center code (four digits, such as 0900)", field="rcc")
    return rcc


def check_modality(value: Any, modalities: Collection[str] = ()) -> str:
    modality = _text(value, "modality").lower()
    if modality not in modalities:
        raise LineError(f"unknown modality {modality!r} (known: {', '.join(modalities)})", field="modality")
    return modality


def check_date(value: Any, modalities: Collection[str] = ()) -> dt.date:
    return parse_date(value)


def check_modifiers(value: Any, modalities: Collection[str] = ()) -> tuple[str, ...]:
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


def check_member_age(value: Any, modalities: Collection[str] = ()) -> int:
    return _int(value, "member_age", 0, MAX_AGE)


def check_units(value: Any, modalities: Collection[str] = ()) -> int:
    return _int(value, "units", 0, MAX_UNITS)


def check_established_patient(value: Any, modalities: Collection[str] = ()) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "1"):
        return True
    if text in ("false", "no", "n", "0"):
        return False
    raise LineError(f"expected true or false, got {value!r}", field="established_patient")


def _free_text(name: str) -> Callable[[Any, Collection[str]], str]:
    def check(value: Any, modalities: Collection[str] = ()) -> str:
        return _text(value, name)

    return check


# every field's check, in the order parse_line meets them: when several fields are bad, the first names the error
CHECKS: dict[str, Callable[[Any, Collection[str]], Any]] = {
    "code": check_code,
    "claim_type": check_claim_type,
    "pos": check_pos,
    "rcc": check_rcc,
    "modality": check_modality,
    "date": check_date,
    "modifiers": check_modifiers,
    "member_age": check_member_age,
    "provider_type": _free_text("provider_type"),
    "units": check_units,
    "established_patient": check_established_patient,
    "line_id": _free_text("line_id"),
    "claim_id": _free_text("claim_id"),
}
REQUIRED = ("code", "date")
MISSING = "missing: every line needs a procedure code and a date of service"


def canonical_field(name: Any) -> str:
    """The field a key or column heading names (aliases and case aside)."""
    key = str(name).strip().lower()
    return ALIASES.get(key, key)


def parse_line(data: Mapping[str, Any], program: Program) -> ClaimLine:
    """A ``ClaimLine`` from a mapping of field names to values; ``LineError`` names the first bad field."""
    if not isinstance(data, Mapping):
        raise LineError(f"expected an object with the line's fields, got {type(data).__name__}")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        name = canonical_field(key)
        if name not in FIELDS:
            raise LineError(f"unknown field (known: {', '.join(FIELDS)})", field=str(key))
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        fields[name] = value
    for required in REQUIRED:
        if required not in fields:
            raise LineError(MISSING, field=required)
    modalities = tuple(program.modalities)
    checked = {name: check(fields[name], modalities) for name, check in CHECKS.items() if name in fields}
    return ClaimLine(**checked)


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
            yield number, json_error(exc, number)
            continue
        yield number, parse_at(data, program, number)


def json_error(exc: json.JSONDecodeError, number: int) -> LineError:
    """The error of a line that is not JSON (``orjson``'s errors are ``json.JSONDecodeError`` too)."""
    return LineError(f"not valid JSON: {exc.msg} (column {exc.colno})", line=number)


def parse_at(data: Any, program: Program, number: int) -> ClaimLine | LineError:
    """``parse_line``, with the error (if any) returned and numbered rather than raised."""
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
        yield number, parse_at(dict(zip(header, row, strict=True)), program, number)


def read_json_document(text: str, program: Program) -> Iterator[Parsed]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, json_error(exc, exc.lineno)
        return
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items, 1):
        yield i, parse_at(item, program, i)


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
        yield i, parse_at(rec, program, i)
