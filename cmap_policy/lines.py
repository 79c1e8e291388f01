"""Claim lines in: from a mapping, JSON, JSON Lines or CSV, each checked field by field.

A malformed line becomes a ``LineError`` naming the line and the field; it never
stops the lines after it. Whatever a line holds (a value of any type, nested any
depth, a number of any length, a lone surrogate, bytes that are not UTF-8), reading
it gives a claim line or a ``LineError``, never another exception.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import json
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from . import formats, guard
from .caches import Cache
from .errors import LineError
from .guard import MAX_LINE_BYTES, ByteSource, byte_source, decode_line, guarded_lines, physical_lines, too_long
from .model import MAX_AGE, MAX_UNITS, ClaimLine, Program

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


_SHOWN = 40  # characters of a bad value an error message shows
_MAX_INT_BITS = 3322  # about 1,000 decimal digits (guard.MAX_NUMBER_DIGITS): no field holds a longer number


def _show(value: Any) -> str:
    """A bad value as an error message shows it: short, and never failing (whatever the value is)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    if isinstance(value, str) and len(value) > _SHOWN:
        return json.dumps(value[:_SHOWN]) + "…"
    if isinstance(value, (str, int, float)) or value is None:
        text = json.dumps(value)  # as the input wrote it: "text", 12.5, true, null
    elif type(value).__name__ == "Decimal":
        text = _decimal_text(value)
    elif isinstance(value, (list, tuple, dict)):
        text = f"a {'list' if not isinstance(value, dict) else 'JSON object'} ({len(value)} items)"
    else:
        text = f"a {type(value).__name__} value"
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def _decimal_text(value: Any) -> str:
    """A decimal as JSON writes the number (a column's 30.50, of scale 2, as 30.5), so that its error reads as the
    same value's in a JSON line does. The decimal module is loaded when a Decimal exists: never imported here."""
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal) and value.is_finite() \
            and abs(value.adjusted()) < _SHOWN:
        return format(value.normalize(), "f")
    return str(value)


def _quoted(text: str) -> str:
    """Text as an error message quotes it: at most _SHOWN characters of it."""
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "…"


def _text(value: Any, field: str) -> str:
    if type(value) is str and value.isascii():  # nearly every value: one test instead of the five below
        return value.strip()
    if isinstance(value, (bytes, bytearray, memoryview)):  # a binary column (Parquet, Arrow): text as UTF-8
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise LineError("the text is not UTF-8", field=field) from None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LineError(f"expected text, got {_show(value)}", field=field)
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise LineError(f"expected text, got {_show(value)}", field=field)
        return str(value)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise LineError("the text holds a lone surrogate (an escape such as \\ud800 alone), which is not a "
                            "character", field=field) from None
    return value.strip()


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    """A whole number lo to hi: an int, float or decimal with no fraction, or text of ASCII digits, blanks aside."""
    if isinstance(value, bool):
        raise LineError(f"expected a whole number, got {_show(value)}", field=field)
    if isinstance(value, str):
        digits = value.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise LineError(f"expected a whole number, got {_show(value)}", field=field)
        significant = digits.lstrip("0")
        if len(significant) > len(str(hi)):  # never convert a number that long (it may be any length)
            raise LineError(f"a number of {len(significant):,} digits is out of range ({lo} to {hi})",
                            field=field)
        # without its leading zeros: CPython refuses to convert more than 4,300 digits, zeros included
        value = int(significant or "0")
    elif isinstance(value, float):
        if value.is_integer() and lo <= value <= hi:
            value = int(value)
    elif not isinstance(value, int) and type(value).__name__ == "Decimal":  # a database's NUMERIC, Parquet's decimal
        import decimal

        if isinstance(value, decimal.Decimal) and value.is_finite() and value == value.to_integral_value():
            if not lo <= value <= hi:
                raise LineError(f"{_show(value)} is out of range ({lo} to {hi})", field=field)
            value = int(value)
    if not isinstance(value, int):
        raise LineError(f"expected a whole number, got {_show(value)}", field=field)
    if not lo <= value <= hi:
        raise LineError(f"{_show(value)} is out of range ({lo} to {hi})", field=field)
    return value


def parse_date(value: Any, field: str = "date") -> dt.date:
    """A date of service: strictly YYYY-MM-DD (a ``datetime.date`` passes as it is).

    A date and time is a date only at midnight with no time zone (what a DataFrame's dates are); any other is
    checked as the text it writes as JSON (``2026-01-05T10:30:00``), and refused as that text is.
    """
    if isinstance(value, dt.datetime):
        # read field by field: pandas' NaT is a datetime whose time() raises (and whose fields are NaN)
        clock = (value.hour, value.minute, value.second, value.microsecond, getattr(value, "nanosecond", 0))
        if value.tzinfo is None and clock == (0, 0, 0, 0, 0):
            return value.date()
        value = value.isoformat()
    if isinstance(value, dt.date):
        return value
    text = _text(value, field)
    if not DATE_RE.match(text):
        raise LineError(f"{_quoted(text)} is not a date in the form YYYY-MM-DD", field=field)
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
        raise LineError(f"{_quoted(code)} is not a procedure code (five characters: a CPT code such as 90834 or a "
                        "HCPCS code such as T1016)", field="code")
    return code


def check_claim_type(value: Any, modalities: Collection[str] = ()) -> str:
    claim_type = _text(value, "claim_type").lower()
    if claim_type not in CLAIM_TYPES:
        raise LineError(f"{_quoted(claim_type)} is not a claim type (professional or institutional)",
                        field="claim_type")
    return claim_type


def check_pos(value: Any, modalities: Collection[str] = ()) -> str:
    pos = _text(value, "pos")
    pos = pos.zfill(2) if pos.isdigit() and len(pos) == 1 else pos
    if not POS_RE.match(pos):
        raise LineError(f"{_quoted(pos)} is not a place of service (two digits, such as 02, 10 or 11)", field="pos")
    return pos


def check_rcc(value: Any, modalities: Collection[str] = ()) -> str:
    rcc = _text(value, "rcc")
    rcc = rcc.zfill(4) if rcc.isdigit() and len(rcc) == 3 else rcc
    if not RCC_RE.match(rcc):
        raise LineError(f"{_quoted(rcc)} is not a revenue center code (four digits, such as 0900)", field="rcc")
    return rcc


def check_modality(value: Any, modalities: Collection[str] = ()) -> str:
    modality = _text(value, "modality").lower()
    if modality not in modalities:
        raise LineError(f"unknown modality {_quoted(modality)} (known: {', '.join(modalities)})", field="modality")
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
        raise LineError(f"expected a list of modifiers, got {_show(value)}", field="modifiers")
    out = []
    for item in items:
        mod = _text(item, "modifiers").upper()
        if not MODIFIER_RE.match(mod):
            raise LineError(f"{_quoted(mod)} is not a modifier (two letters or digits, such as 95, GT, 93)",
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
    text = _text(value, "established_patient").lower() if isinstance(value, (str, int)) else ""
    if text in ("true", "yes", "y", "1"):
        return True
    if text in ("false", "no", "n", "0"):
        return False
    raise LineError(f"expected true or false, got {_show(value)}", field="established_patient")


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


_CANONICAL: Cache[str, str] = Cache("lines.field_names")  # key as given -> its field (bound: caches.BOUNDS)


def canonical_field(name: Any) -> str:
    """The field a key or column heading names (aliases and case aside)."""
    if type(name) is str:
        known = _CANONICAL.get(name)
        if known is not None:
            return known
    key = str(name).strip().lower()
    field = ALIASES.get(key, key)
    if type(name) is str:
        _CANONICAL.put(name, field)
    return field


def parse_line(data: Mapping[str, Any], program: Program) -> ClaimLine:
    """A ``ClaimLine`` from a mapping of field names to values; ``LineError`` names the first bad field."""
    if not isinstance(data, Mapping):
        raise LineError(f"expected an object with the line's fields, got {type(data).__name__}")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        name = canonical_field(key)
        if name not in FIELDS:
            raise LineError(f"unknown field (known: {', '.join(FIELDS)})", field=str(key))
        if type(value) is not str and isinstance(value, (bytes, bytearray)):  # a binary column's text (Arrow)
            with contextlib.suppress(UnicodeDecodeError):  # if not UTF-8, the field's check names it
                value = bytes(value).decode("utf-8")
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

# --- reading lines ---
#
# Every reader takes its lines from ``guard.physical_lines`` (bytes, a line at a time, each decoded on its
# own, so that a bad byte is that line's error). A line number is the physical line, counted from 1 (a CSV
# header is line 1); blank lines are skipped and still counted. The batch engine reads CSV and JSON Lines
# files with these very functions (``jsonl_line``, ``csv_header``, ``csv_line``), or, for the lines it
# hands to Arrow, only after checking that Arrow reads them as ``csv_line`` does, so both engines number
# and read every line alike.

MAX_DOCUMENT_BYTES = 64 << 20  # one JSON document (an array of lines); larger inputs should be JSON Lines
CSV_FIELD_LIMIT = 131_072  # the csv module's limit on one value (csv.field_size_limit()); longer is an error
UNCLOSED_QUOTE = ("a quoted value is not closed on this line: each line is one claim line, and a value cannot "
                  "hold a line break")
# A line whose quotes all close on it, read as the csv module reads (a quote opens a quoted value only at the
# start of a value; inside one, "" is a quote; after its closing quote, or inside a value that did not start
# with one, a quote is just a character). Possessive, so that no line makes the match backtrack.
_FIELD = r'(?:"(?:[^"]++|"")*+"[^,]*+|[^",][^,]*+|)'


@functools.cache
def _closed() -> re.Pattern[str]:  # compiled when a line first has a quote: a one-line decision never needs it
    return re.compile(_FIELD + "(?:," + _FIELD + ")*+")


def line_text(raw: bytes | None, number: int) -> str | LineError | None:
    """The text of one line as ``physical_lines`` gave it: its text, its error (too long, not UTF-8), or None
    when it is blank (nothing but what ``str.isspace`` calls blank)."""
    if raw is None:
        return too_long(number)
    text = decode_line(raw, number)
    if isinstance(text, str) and not text.strip():
        return None
    return text


def jsonl_line(raw: bytes | None, number: int, program: Program) -> ClaimLine | LineError | None:
    """One JSON Lines line read: the claim line, its error, or None for a blank line."""
    text = line_text(raw, number)
    if not isinstance(text, str):
        return text
    try:
        data = guard.loads(text)
    except json.JSONDecodeError as exc:
        return json_error(exc, number)
    return parse_at(data, program, number)


def read_jsonl(stream: IO[bytes] | IO[str] | ByteSource, program: Program) -> Iterator[Parsed]:
    for number, raw in guarded_lines(physical_lines(stream)):
        item = raw if isinstance(raw, LineError) else jsonl_line(raw, number, program)
        if item is not None:
            yield number, item


def json_error(exc: json.JSONDecodeError, number: int) -> LineError:
    """The error of a line that is not JSON (``orjson``'s errors are ``json.JSONDecodeError`` too)."""
    return LineError(f"{guard.describe(exc)} (character {exc.pos + 1})", line=number)


def parse_at(data: Any, program: Program, number: int) -> ClaimLine | LineError:
    """``parse_line``, with the error (if any) returned and numbered rather than raised."""
    try:
        return parse_line(data, program)
    except LineError as err:
        return err.at(number)


def width_error(values: int, header: list[str]) -> str:
    return f"{values} values for {len(header)} columns ({', '.join(header)})"


def quotes_close(text: str) -> bool:
    """True when every quoted value of the CSV line ``text`` (its line ending aside) closes on it."""
    if '"' not in text:
        return True
    body = text[:-1] if text.endswith("\n") else text
    return _closed().fullmatch(body[:-1] if body.endswith("\r") else body) is not None


def csv_values(text: str) -> list[str] | str:
    """The values of one CSV line, or what is wrong with it. A quoted value must close on its line."""
    if not quotes_close(text):
        return UNCLOSED_QUOTE
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        if "new-line" in str(exc):
            return "a carriage return (\\r) inside the line, outside quotes: lines end with \\n or \\r\\n"
        if "field limit" in str(exc):
            return f"a value is longer than {CSV_FIELD_LIMIT:,} characters"
        return f"not a valid CSV row: {exc}"


def csv_header(raw: bytes | None, number: int) -> list[str] | LineError | None:
    """The column names of a header line (trimmed, lower case), what is wrong with it, or None when blank."""
    text = line_text(raw, number)
    if not isinstance(text, str):
        return text
    values = csv_values(text)
    if isinstance(values, str):
        return LineError(values, line=number)
    names = [v.strip().lower() for v in values]
    seen: set[str] = set()
    for name in names:
        if name in seen:  # which value would win is a guess; the engines must not guess differently
            return LineError(f"it names the column {_quoted(name)} twice", line=number)
        seen.add(name)
    return names


_COLUMNS_SHOWN = 20  # column names a header's error lists


@dataclass(frozen=True)
class HeaderProblem:
    """A header (CSV) or schema (Parquet) that no line of the file can be decided with: a column every line
    needs is missing, or a column is not a field of a claim line. ``error`` says so once, for the file, with
    the columns found; ``fields`` are the fields whose line errors it causes."""

    error: LineError
    fields: frozenset[str]

    def explains(self, err: LineError) -> LineError:
        """``err``, marked as caused by the header when it is about one of the header's fields."""
        return err.caused_by(self.error) if err.field in self.fields and err.cause is None else err


def header_problem(names: Sequence[str], number: int | None) -> HeaderProblem | None:
    """What is wrong with the columns ``names`` (of the header at line ``number``, or a schema: None), or None."""
    found = {canonical_field(n) for n in names}
    absent = [f for f in REQUIRED if f not in found]
    unknown = [n for n in names if canonical_field(n) not in FIELDS]
    if not absent and not unknown:
        return None
    parts = []
    if absent:
        parts.append(f"no {' or '.join(map(repr, absent))} column: every line needs a procedure code and a date "
                     "of service")
    if unknown:
        shown = ", ".join(_quoted(n) for n in unknown[:_COLUMNS_SHOWN])
        parts.append(f"{'a column' if len(unknown) == 1 else 'columns'} that no claim line has: {shown}"
                     f"{' …' if len(unknown) > _COLUMNS_SHOWN else ''} (known: {', '.join(FIELDS)})")
    columns = ", ".join(_quoted(n) for n in names[:_COLUMNS_SHOWN]) or "none"
    more = f" … ({len(names):,} in all)" if len(names) > _COLUMNS_SHOWN else ""
    message = f"{'; and '.join(parts)}. The columns found: {columns}{more}"
    return HeaderProblem(LineError(message, line=number), frozenset([*absent, *unknown]))


def csv_line(raw: bytes | None, number: int, header: list[str] | LineError) -> dict[str, str] | LineError | None:
    """One CSV line after the header: its values by column, its error, or None for a blank line."""
    text = line_text(raw, number)
    if not isinstance(text, str):
        return text
    if isinstance(header, LineError):
        return LineError(f"not read: the header (line {header.line}) cannot be read: {header.message}", line=number,
                         cause=header)
    values = csv_values(text)
    if isinstance(values, str):
        return LineError(values, line=number)
    if len(values) != len(header):
        return LineError(width_error(len(values), header), line=number)
    return dict(zip(header, values, strict=True))


def read_csv(stream: IO[bytes] | IO[str] | ByteSource, program: Program) -> Iterator[Parsed]:
    header: list[str] | LineError | None = None
    problem: HeaderProblem | None = None
    for number, raw in guarded_lines(physical_lines(stream)):
        if isinstance(raw, LineError):
            yield number, raw
            return
        if header is None:
            header = csv_header(raw, number)  # blank lines before the header are skipped
            if isinstance(header, list):
                problem = header_problem(header, number)
            continue
        item = csv_line(raw, number, header)
        if item is None:
            continue
        parsed = item if isinstance(item, LineError) else parse_at(item, program, number)
        yield number, problem.explains(parsed) if problem is not None and isinstance(parsed, LineError) else parsed


def read_json_document(stream: IO[bytes] | IO[str] | ByteSource, program: Program) -> Iterator[Parsed]:
    """A JSON document: one line object, or an array of them, numbered from 1 in order."""
    src = byte_source(stream)
    raw = src.read(MAX_DOCUMENT_BYTES + 1)
    if src.failed is not None:
        yield 1, guard.stream_error(1, src.failed)
        return
    if len(raw) > MAX_DOCUMENT_BYTES:
        yield 1, LineError(f"a JSON document larger than {MAX_DOCUMENT_BYTES >> 20} MB: write the lines as JSON Lines "
                           "(one object per line)", line=1)
        return
    yield from _document(raw, program)


def _document(raw: bytes, program: Program) -> Iterator[Parsed]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        yield line, LineError(f"the document is not UTF-8 text (byte {exc.start + 1}, {exc.reason})", line=line)
        return
    if not text.removeprefix("\ufeff").strip():
        return  # an empty document holds no claim lines (the command line says so), as an empty CSV file
    try:
        data = guard.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, LineError(f"{guard.describe(exc)} (line {exc.lineno}, column {exc.colno})", line=exc.lineno)
        return
    items = data if isinstance(data, list) else [data]
    for i, item in enumerate(items, 1):
        yield i, parse_at(item, program, i)


def _first_line(src: ByteSource) -> bytes:
    """The first line that is not blank (at most MAX_LINE_BYTES of it), put back with what came before it."""
    seen = b""
    while True:
        chunk = src.readline(MAX_LINE_BYTES + 1)
        seen += chunk
        if not chunk or chunk.decode("utf-8", "replace").strip() or len(seen) > MAX_LINE_BYTES:
            src.unread(seen)
            return chunk


def read_lines(stream: IO[bytes] | IO[str] | ByteSource, program: Program, fmt: str | None = None) -> Iterator[Parsed]:
    """Parse every line of ``stream`` (binary, or text); ``fmt`` is json, jsonl or csv (default: ``guess_format``)."""
    src = byte_source(stream)
    if fmt is None:
        fmt = guess_format(src)
    if fmt not in formats.STREAMED:
        raise formats.FormatError(f"{fmt} is not read from a stream: give the file's path")
    if fmt == "json":
        yield from read_json_document(src, program)
    elif fmt == "jsonl":
        yield from read_jsonl(src, program)
    else:
        yield from read_csv(src, program)


def guess_format(src: ByteSource) -> str:
    """The format of a stream, from its first bytes (``formats.sniff``) and, for JSON, its first lines (put back).

    A whole JSON value on the first line followed by more lines is JSON Lines, whatever it holds (an array there
    is that line's error, not a document swallowing every line after it). ``{`` on a broken first line is a
    document spread over lines if the input (up to MAX_DOCUMENT_BYTES) parses as one; else JSON Lines when some
    line is a whole JSON value; else the document's error."""
    head = src.read(formats.SNIFF_BYTES)
    src.unread(head)
    if (binary := formats.sniff(head)) in formats.BINARY:  # a magic number counts at the very first byte only
        return binary
    first = _first_line(src)
    fmt = formats.sniff(first) or "jsonl"  # nothing but blank lines: no claim lines, whatever the format
    if fmt in formats.BINARY:
        fmt = "csv"  # a magic number after blank lines is not that format's file: text, read as CSV
    if fmt == "json" and _is_json(first) and _more_after(src):
        return "jsonl"
    if fmt == "jsonl" and not _is_json(first):
        head = src.read(MAX_DOCUMENT_BYTES + 1)
        src.unread(head)
        if len(head) > MAX_DOCUMENT_BYTES:
            return "jsonl"
        if _is_json(head) or not any(_is_json(raw) for raw in head.splitlines()):
            return "json"
        return "jsonl"
    return fmt


def _more_after(src: ByteSource) -> bool:
    """Whether a second line that is not blank follows the first (which ``_first_line`` put back, with any blank
    lines before it); everything read is put back."""
    read = b""
    inked = 0
    while inked < 2:
        chunk = src.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            break
        read += chunk
        inked += bool(chunk.decode("utf-8", "replace").strip())
    src.unread(read)
    return inked >= 2


def _is_json(raw: bytes) -> bool:
    try:
        guard.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


def lines_from_records(records: Iterable[Mapping[str, Any]], program: Program) -> Iterator[Parsed]:
    for i, rec in enumerate(records, 1):
        yield i, parse_at(rec, program, i)
