"""The telehealth table as a spreadsheet: export the policy to it, import the official one into the policy.

DSS publishes the CMAP Telehealth Table as a spreadsheet whose columns (as its
page describes them) are the procedure code, a description, the revenue center
code, the effective and end dates, whether audio-only is allowed, and policy
guidelines. ``export_table`` writes the policy in those columns, followed by
columns the official table does not have (code system, category, status,
modalities, limits, citation, notes) so that an export imported again loses
nothing a decision depends on. ``import_table`` reads such a table (official or
exported) into a policy folder as one release.

What the official columns cannot carry, and how an import treats it:

* modalities other than audio-video and audio-only, and a row that is listed as
  not permitted: the ``Modalities`` and ``Status`` columns carry them; without
  them a listed row allows audio-video, plus audio-only when that column says
  yes, and a row whose guideline begins "Not permitted via telehealth" is read
  as not permitted;
* limits (age, provider type, established patient, units): the ``Limits``
  column (JSON); without it, a row that matches an existing period keeps that
  period's limits and a new row has none;
* citations: the ``Citation`` columns; without them a new row cites the
  release's source;
* the release history: an import is one release, so the rows' release of
  introduction and of ending are not read back (they are exported for readers);
* descriptions of CPT codes: the AMA owns CPT descriptors, so a new CPT code
  gets a placeholder description unless the table's are declared to be your own
  words (``cpt_descriptions=True``).

openpyxl (imported only when a spreadsheet is read or written) is the xlsx reader
and writer: it is maintained, pure Python, and does both directions, which the
read-only calamine binding does not.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import itertools
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .canonical import normalize
from .errors import PolicyError, Problem
from .fmt import format_document
from .loader import _load_checked, load_policy
from .model import Limit, Period, Policy
from .resources import policy_dir

FORMATS = ("csv", "xlsx", "json")
SHEET_NAME = "Telehealth table"
CODE_RE = re.compile(r"^([0-9]{4}[0-9A-Z]|[A-V][0-9]{4})$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_CATEGORY = ("uncategorized", "Not yet categorised (imported from the telehealth table)")
HEADER_SEARCH_ROWS = 30
PERIOD_KEYS = ("effective", "end", "status", "modalities", "revenue_center_codes", "guideline", "limits", "citation",
               "introduced_in", "ended_in", "dates_note")
LIMIT_KEYS = ("kind", "guideline", "modalities", "min_age", "max_age", "provider_types", "max_units", "citation")
CODE_KEYS = ("$schema", "code", "system", "description", "category", "note", "periods")


class TableError(Exception):
    """The table or the request cannot be used at all (not a row problem); the message says what to do."""


# --------------------------------------------------------------------------------------------------- columns


@dataclass(frozen=True, slots=True)
class Column:
    field: str
    heading: str  # as exported
    json_key: str
    official: bool  # one of the columns the DSS page describes
    imported: bool  # read on import (the others are exported for readers and ignored)
    variants: tuple[str, ...] = ()  # other headings accepted on import, compared after _norm


def _norm(heading: str) -> str:
    return re.sub(r"[^a-z0-9]", "", heading.lower())


COLUMNS: tuple[Column, ...] = (
    Column("code", "Procedure Code", "procedure_code", True, True,
           ("code", "procedure", "proccode", "procedurecodes", "cptcode", "hcpcscode", "cpthcpcscode", "cpthcpcs",
            "hcpcscptcode", "cpthcpcsprocedurecode", "codes", "cptorhcpcscode")),
    Column("description", "Description", "description", True, True,
           ("proceduredescription", "codedescription", "descriptor", "desc", "servicedescription",
            "shortdescription", "procedurecodedescription", "procedurecodedescriptor")),
    Column("rcc", "Revenue Center Code", "revenue_center_codes", True, True,
           ("revenuecentercodes", "rcc", "rccs", "revcode", "revcodes", "revenuecode", "revenuecodes",
            "revenuecentercodesrcc", "revenuecentercoderccs")),
    Column("effective", "Effective Date", "effective_date", True, True,
           ("effective", "effdate", "startdate", "begindate", "effectivedos", "dateeffective", "effectivefrom")),
    Column("end", "End Date", "end_date", True, True,
           ("end", "termdate", "terminationdate", "expirationdate", "enddos", "effectiveto", "endeddate")),
    Column("audio_only", "Audio-Only Allowed", "audio_only_allowed", True, True,
           ("audioonly", "audioonlypermitted", "audioonlyallowedyn", "audioonlyyn", "telephone", "telephonic",
            "audioonlytelephone", "audioonlytelephoneallowed", "telephoneaudioonly", "telephoneallowed",
            "audioonlyallowedyesno", "audioonlyallowedyorn")),
    Column("guideline", "Policy Guidelines", "policy_guidelines", True, True,
           ("policyguideline", "guidelines", "guideline", "policy", "policynotes", "policyguidance")),
    Column("system", "Code System", "code_system", False, True, ("system", "codetype")),
    Column("category", "Category", "category", False, True, ("servicecategory",)),
    Column("status", "Status", "status", False, True, ("telehealthstatus",)),
    Column("modalities", "Modalities", "modalities", False, True, ("modalitiesallowed", "modality")),
    Column("limits", "Limits", "limits", False, True, ()),
    Column("citation_source", "Citation Source", "citation_source", False, True, ("citation", "source", "sourceid")),
    Column("citation_section", "Citation Section", "citation_section", False, True, ("section",)),
    Column("citation_note", "Citation Note", "citation_note", False, True, ()),
    Column("dates_note", "Dates Note", "dates_note", False, True, ("notesonthedates",)),
    Column("source_title", "Source Title", "source_title", False, False, ()),
    Column("secondary", "Secondary Source", "secondary_source", False, False, ("secondary",)),
    Column("introduced_in", "Introduced In", "introduced_in", False, False, ("introducedinrelease",)),
    Column("ended_in", "Ended In", "ended_in", False, False, ("endedinrelease",)),
)
BY_FIELD: dict[str, Column] = {c.field: c for c in COLUMNS}
OFFICIAL_FIELDS = tuple(c.field for c in COLUMNS if c.official)
# Without these two nothing can be read; the other official columns missing is an error per table.
ESSENTIAL = ("code", "effective")
# A heading that contains one of these (after _norm) is taken as that column: real tables add "(Y/N)" and the like.
_CONTAINS = (("audioonly", "audio_only"), ("revenue", "rcc"), ("guideline", "guideline"), ("effective", "effective"),
             ("enddate", "end"), ("descri", "description"))
_HEADINGS: dict[str, str] = {}
for _c in COLUMNS:
    for _v in (_norm(_c.heading), _norm(_c.json_key), _norm(_c.field), *_c.variants):
        _HEADINGS.setdefault(_v, _c.field)
IGNORE = "ignore"


def field_names() -> list[str]:
    return [c.field for c in COLUMNS]


def parse_column_map(specs: Iterable[str]) -> dict[str, str]:
    """``'Heading=field,Other Heading=field'`` (repeatable) as {normalised heading: field}."""
    out: dict[str, str] = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            heading, sep, target = part.rpartition("=")
            if not sep or not heading.strip() or not target.strip():
                raise TableError(f"--columns {part.strip()!r}: write HEADING=FIELD, e.g. 'CPT/HCPCS=code'")
            name = target.strip()
            fld = IGNORE if _norm(name) in ("ignore", "skip", "") or name == "-" else _HEADINGS.get(_norm(name))
            if fld is None or (fld != IGNORE and not BY_FIELD[fld].imported):
                known = ", ".join(c.field for c in COLUMNS if c.imported)
                raise TableError(f"--columns {part.strip()!r}: unknown field {name!r} (fields: {known}, or ignore)")
            out[_norm(heading)] = fld
    return out


# --------------------------------------------------------------------------------------------------- problems


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Something wrong with one row (or the header row) of the table; ``row`` is as the spreadsheet numbers it."""

    row: int | None
    column: str | None
    message: str
    code: str | None = None

    def __str__(self) -> str:
        where = [f"row {self.row}"] if self.row is not None else []
        if self.code:
            where.append(self.code)
        if self.column:
            where.append(f"column {self.column!r}")
        return (", ".join(where) + ": " if where else "") + self.message

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Change:
    code: str
    kind: str  # new-code | new-period | ended | end-changed | removed-period | removed-code | changed
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "kind": self.kind, "text": self.text}


# --------------------------------------------------------------------------------------------------- reading


@dataclass
class RawTable:
    name: str
    header_row: int
    headings: list[str]
    rows: list[tuple[int, list[Any]]]


def _guard(text: str) -> str:
    """Undo the apostrophe the exporter puts before text a spreadsheet would run as a formula."""
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r":
        return text[1:]
    return text


def _is_code_heading(cell: Any, colmap: Mapping[str, str]) -> bool:
    if not isinstance(cell, str) or not cell.strip():
        return False
    n = _norm(cell)
    return colmap.get(n, _HEADINGS.get(n)) == "code"


def _find_header(rows: Sequence[tuple[int, list[Any]]], colmap: Mapping[str, str]) -> int | None:
    for i, (_, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if any(_is_code_heading(c, colmap) for c in cells):
            return i
    return None


def _table_from_rows(name: str, rows: list[tuple[int, list[Any]]], colmap: Mapping[str, str]) -> RawTable:
    at = _find_header(rows, colmap)
    if at is None:
        raise TableError(f"{name}: no header row with a procedure code column in the first {HEADER_SEARCH_ROWS} "
                         "rows; name the code column's heading with --columns 'HEADING=code'")
    number, header = rows[at]
    headings = ["" if h is None else str(h).strip() for h in header]
    return RawTable(name, number, headings, rows[at + 1:])


def _read_xlsx(data: bytes, name: str, colmap: Mapping[str, str], sheet: str | None) -> RawTable:
    try:
        import openpyxl
    except ImportError:
        raise TableError("reading .xlsx needs openpyxl: install the table extra, pip install 'cmap-policy[table]'") \
            from None
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file; all mean the same to the user
        raise TableError(f"{name}: not a readable .xlsx workbook ({exc.__class__.__name__}: {exc}); save it from "
                         "the spreadsheet program as .xlsx") from None
    try:
        if sheet is not None:
            if sheet not in wb.sheetnames:
                raise TableError(f"{name}: no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)})")
            names = [sheet]
        else:
            names = sorted(wb.sheetnames, key=lambda s: s != SHEET_NAME)
        for sname in names:
            ws = wb[sname]
            ws.reset_dimensions()  # some writers record a wrong used range; read every row that is there
            rows = [(i, list(r)) for i, r in enumerate(ws.iter_rows(min_row=1, values_only=True), 1)]
            if _find_header(rows, colmap) is not None:
                return _table_from_rows(f"{name} [{sname}]", rows, colmap)
        shown = sheet or ", ".join(wb.sheetnames)
        raise TableError(f"{name}: no sheet ({shown}) has a header row with a procedure code column in its first "
                         f"{HEADER_SEARCH_ROWS} rows; name the code column with --columns 'HEADING=code'")
    finally:
        wb.close()


def _read_csv(data: bytes, name: str, colmap: Mapping[str, str]) -> RawTable:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(f"{name}: not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8'") from None
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise TableError(f"{name}: not valid CSV ({exc})") from None
    rows: list[tuple[int, list[Any]]] = [(i, list(r)) for i, r in enumerate(records, 1)]
    return _table_from_rows(name, rows, colmap)


def _read_json(data: bytes, name: str) -> RawTable:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TableError(f"{name}: not valid JSON ({exc})") from None
    items = doc.get("rows") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not all(isinstance(r, dict) for r in items):
        raise TableError(f"{name}: expected a list of row objects, or an object with 'rows' (as export writes)")
    keys: list[str] = []
    if isinstance(doc, dict) and isinstance(doc.get("columns"), list):
        keys = [c["key"] for c in doc["columns"] if isinstance(c, dict) and isinstance(c.get("key"), str)]
        if "citation" in keys:
            keys.remove("citation")
            keys += ["citation_source", "citation_section", "citation_note", "source_title", "secondary_source"]
    for item in items:
        for k in item:
            flat = ["citation_source", "citation_section", "citation_note", "source_title", "secondary_source"] \
                if k == "citation" and isinstance(item[k], dict) else [k]
            for f in flat:
                if f not in keys:
                    keys.append(f)
    rows = []
    for i, item in enumerate(items, 1):
        flat_item = dict(item)
        cit = flat_item.pop("citation", None)
        if isinstance(cit, dict):
            flat_item.update({"citation_source": cit.get("source"), "citation_section": cit.get("section"),
                              "citation_note": cit.get("note"), "source_title": cit.get("title"),
                              "secondary_source": cit.get("secondary")})
        elif cit is not None:
            flat_item["citation"] = cit
        rows.append((i, [flat_item.get(k) for k in keys]))
    return RawTable(name, 0, keys, rows)


def read_table(table: str | Path | bytes, *, fmt: str | None = None, name: str | None = None,
               columns: Mapping[str, str] | None = None, sheet: str | None = None) -> RawTable:
    """The header and rows of a table file (or its bytes, with ``fmt``)."""
    colmap = dict(columns or {})
    if isinstance(table, (bytes, bytearray)):
        data = bytes(table)
        shown = name or "table"
    else:
        path = Path(table)
        shown = name or path.name
        if fmt is None:
            fmt = {".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv", ".json": "json"}.get(path.suffix.lower())
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TableError(f"{shown}: cannot read the file ({exc.strerror})") from None
    if fmt is None:
        fmt = "xlsx" if data[:2] == b"PK" else "json" if data.lstrip()[:1] in (b"{", b"[") else "csv"
    if fmt == "xlsx":
        return _read_xlsx(data, shown, colmap, sheet)
    if fmt == "csv":
        return _read_csv(data, shown, colmap)
    if fmt == "json":
        return _read_json(data, shown)
    raise TableError(f"unknown table format {fmt!r} (use one of {', '.join(FORMATS)}); .xls files: save as .xlsx")


# --------------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class TableRow:
    """One readable row of the table, in policy terms."""

    number: int
    code: str
    description: str
    rccs: tuple[str, ...]
    effective: dt.date
    end: dt.date | None
    status: str
    modalities: tuple[str, ...]
    guideline: str
    system: str | None
    category: str | None
    limits: list[dict[str, Any]] | None  # None: the table has no Limits column
    citation: dict[str, str] | None
    dates_note: str | None

    def content(self) -> tuple[Any, ...]:
        return (self.status, self.modalities, self.rccs, self.guideline)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return _guard(str(value).strip()).strip()


_OPEN_END = {"", "-", "–", "—", "n/a", "na", "none", "open", "ongoing", "current", "no end date", "null"}
_DATE_FORMS = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})$"), ("m", "d", "y")),
    (re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$"), ("m", "d", "y")),
)


def _date(value: Any, blank_ok: bool) -> tuple[dt.date | None, str | None]:
    """(date, None) or (None, error message); an empty cell is (None, None) when ``blank_ok``."""
    if isinstance(value, dt.datetime):
        return value.date(), None
    if isinstance(value, dt.date):
        return value, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1 <= value < 2958466:  # an Excel serial day number in a cell not formatted as a date
            return dt.date(1899, 12, 30) + dt.timedelta(days=int(value)), None
        return None, f"{value!r} is not a date"
    text = _text(value)
    if blank_ok and text.lower() in _OPEN_END:
        return None, None
    if not text:
        return None, "empty: every row needs an effective date"
    for pattern, order in _DATE_FORMS:
        m = pattern.match(text)
        if m:
            parts = dict(zip(order, (int(g) for g in m.groups()), strict=True))
            year = parts["y"] + 2000 if parts["y"] < 100 else parts["y"]
            try:
                return dt.date(year, parts["m"], parts["d"]), None
            except ValueError:
                return None, f"{text!r} is not a real calendar date"
    return None, f"{text!r} is not a date (write YYYY-MM-DD or M/D/YYYY)"


_YES = {"yes", "y", "true", "x", "✓", "✔", "allowed", "permitted", "1"}
_NO = {"", "no", "n", "false", "0", "not allowed", "not permitted", "-", "n/a", "na", "none"}
_PERMITTED = {"permitted", "yes", "y", "allowed", "payable", "listed"}
_NOT_PERMITTED = {"not permitted", "not-permitted", "notpermitted", "no", "n", "not allowed", "not covered",
                  "not payable"}
_NOT_PERMITTED_TEXT = re.compile(
    r"^\W*(not\s+(permitted|allowed|covered|payable)\s+(via|by|for|as)\s+telehealth"
    r"|telehealth\s+(is\s+)?not\s+(permitted|allowed|covered))", re.IGNORECASE)


class _RowReader:
    """Turns the cells of one row into a ``TableRow``, collecting every problem of the row."""

    def __init__(self, program: Mapping[str, Any], fields: Mapping[int, str], headings: Sequence[str]) -> None:
        self.modalities = {m["id"]: m["id"] for m in program["modalities"]}
        self.modalities.update({_norm(m["name"]): m["id"] for m in program["modalities"]})
        self.modalities.update({_norm(m["id"]): m["id"] for m in program["modalities"]})
        self.categories = {c["id"]: c["id"] for c in program["categories"]}
        self.categories.update({_norm(c["name"]): c["id"] for c in program["categories"]})
        self.sources = {s["id"] for s in program["sources"]}
        self.fields = fields
        self.headings = headings
        self.present = set(fields.values())

    def heading(self, fld: str) -> str:
        for i, f in self.fields.items():
            if f == fld:
                return self.headings[i]
        return BY_FIELD[fld].heading

    def read(self, number: int, cells: Sequence[Any]) -> TableRow | list[RowProblem] | None:
        """A row, its problems, or None for a row that is not a table row (blank, or a note under the table)."""
        get: dict[str, Any] = {}
        for i, fld in self.fields.items():
            get[fld] = cells[i] if i < len(cells) else None
        filled = {f for f, v in get.items() if _text(v) != "" and not (isinstance(v, list) and not v)}
        code_text = _text(get.get("code")).upper()
        if code_text.isdigit() and len(code_text) < 5 and isinstance(get.get("code"), (int, float)):
            code_text = code_text.zfill(5)  # a spreadsheet stores 00100 as the number 100
        if not filled:
            return None
        if filled <= {"code", "description", "guideline"} and not CODE_RE.match(code_text):
            return None  # text under (or above) the table, such as the modifier guidance at its bottom
        problems: list[RowProblem] = []

        def bad(fld: str, message: str) -> None:
            problems.append(RowProblem(number, self.heading(fld), message, code_text or None))

        if not code_text:
            bad("code", "no procedure code")
        elif not CODE_RE.match(code_text):
            bad("code", f"{code_text!r} is not a procedure code (five characters: a CPT code such as 90834 or a "
                        "HCPCS code such as T1016)")
        effective, err = _date(get.get("effective"), blank_ok=False)
        if err:
            bad("effective", err)
        end, err = _date(get.get("end"), blank_ok=True)
        if err:
            bad("end", err)
        if effective and end and end < effective:
            bad("end", f"ends {end}, before it takes effect on {effective}")
        system = _text(get.get("system")).upper() or None
        if system is not None:
            system = "HCPCS" if system.startswith("HCPCS") else system
            if system not in ("CPT", "HCPCS"):
                bad("system", f"{system!r} is not a code system (CPT or HCPCS)")
                system = None
            elif code_text and CODE_RE.match(code_text) and (system == "CPT") != code_text[0].isdigit():
                bad("system", f"{code_text} has the shape of a {'CPT' if code_text[0].isdigit() else 'HCPCS'} code")
        category = None
        if _text(get.get("category")):
            raw = _text(get.get("category"))
            category = self.categories.get(raw, self.categories.get(_norm(raw)))
            if category is None:
                bad("category", f"unknown category {raw!r}: use an id from program.json categories "
                                f"({', '.join(sorted(c for c in self.categories if '-' in c or c.islower()))})")
        guideline = _text(get.get("guideline"))
        audio_raw = _text(get.get("audio_only")).lower()
        audio: bool | None = None
        if audio_raw in _YES:
            audio = True
        elif audio_raw in _NO:
            audio = False if audio_raw else None
        else:
            bad("audio_only", f"{audio_raw!r} is neither yes nor no")
        status_raw = _text(get.get("status")).lower()
        status: str | None = None
        if status_raw in _PERMITTED:
            status = "permitted"
        elif status_raw in _NOT_PERMITTED:
            status = "not-permitted"
        elif status_raw:
            bad("status", f"{status_raw!r} is not a status (permitted or not permitted)")
        if status is None and not status_raw:
            status = "not-permitted" if _NOT_PERMITTED_TEXT.match(guideline) else "permitted"
        modalities = self._modalities(get.get("modalities"), bad)
        if status == "not-permitted":
            if modalities:
                bad("modalities", "a row listed as not permitted cannot allow modalities")
            if audio:
                bad("audio_only", "a row listed as not permitted cannot allow audio-only")
            modalities = ()
        elif status == "permitted":
            if not modalities:
                if "audio-video" not in self.modalities:
                    bad("modalities", "the program has no audio-video modality: name the modalities in a "
                                      "Modalities column")
                modalities = tuple(sorted({"audio-video", *(["audio-only"] if audio else [])}))
            elif audio is not None and audio != ("audio-only" in modalities):
                bad("audio_only", f"says {'yes' if audio else 'no'}, but the Modalities column lists "
                                  f"{', '.join(modalities)}")
        rccs = self._rccs(get.get("rcc"), bad)
        limits = self._limits(get.get("limits"), bad) if "limits" in self.present else None
        citation = None
        src = _text(get.get("citation_source"))
        if src:
            if src not in self.sources:
                bad("citation_source", f"unknown source {src!r}: add it to sources in program.json, or clear the cell")
            else:
                citation = {"source": src}
                if _text(get.get("citation_section")):
                    citation["section"] = _text(get.get("citation_section"))
                if _text(get.get("citation_note")):
                    citation["note"] = _text(get.get("citation_note"))
        if problems:
            return problems
        assert effective is not None and status is not None
        return TableRow(number, code_text, _text(get.get("description")), rccs, effective, end, status, modalities,
                        guideline, system, category, limits, citation, _text(get.get("dates_note")) or None)

    def _modalities(self, value: Any, bad: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [v for v in re.split(r"[;,|/]", _text(value)) if v.strip()]
        out = set()
        for item in items:
            text = _text(item)
            mod = self.modalities.get(text, self.modalities.get(_norm(text)))
            if mod is None:
                known = ", ".join(sorted(set(self.modalities.values())))
                bad("modalities", f"unknown modality {text!r} (known: {known})")
            else:
                out.add(mod)
        return tuple(sorted(out))

    @staticmethod
    def _rccs(value: Any, bad: Any) -> tuple[str, ...]:
        text = _text(value)
        if text.lower() in ("", "n/a", "na", "none", "-"):
            return ()
        out = set()
        for token in re.split(r"[\s,;/|]+", text):
            if not token:
                continue
            if not re.fullmatch(r"[0-9]{3,4}", token):
                bad("rcc", f"{token!r} is not a revenue center code (four digits, such as 0900)")
                continue
            out.add(token.zfill(4))
        return tuple(sorted(out))

    @staticmethod
    def _limits(value: Any, bad: Any) -> list[dict[str, Any]]:
        if isinstance(value, list):
            data: Any = value
        else:
            text = _text(value)
            if not text:
                return []
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                bad("limits", f"not valid JSON ({exc.msg}); write a list of limit objects, as export does")
                return []
        if not isinstance(data, list) or not all(isinstance(x, dict) and "kind" in x for x in data):
            bad("limits", "expected a JSON list of limit objects, each with a kind")
            return []
        return [_ordered(x, LIMIT_KEYS) for x in data]


@dataclass
class ParsedTable:
    raw: RawTable
    rows: list[TableRow]
    errors: list[RowProblem]
    notes: list[int]  # rows taken as text around the table, not as rows
    bad_codes: set[str]  # codes with a row that could not be read: an import leaves them as they are
    ignored_columns: list[str]
    readable: bool  # False without a code or an effective date column: no row could be read


def parse_table(raw: RawTable, program: Mapping[str, Any], columns: Mapping[str, str] | None = None) -> ParsedTable:
    """Map the headings to fields and read every row; problems are listed, never raised."""
    colmap = dict(columns or {})
    errors: list[RowProblem] = []
    fields: dict[int, str] = {}
    ignored: list[str] = []
    where: dict[str, int] = {}
    for i, heading in enumerate(raw.headings):
        if not heading:
            continue
        n = _norm(heading)
        fld = colmap.get(n) or _HEADINGS.get(n) or next((f for part, f in _CONTAINS if part in n), None)
        if fld is None:
            errors.append(RowProblem(raw.header_row or None, heading,
                                     f"unknown column: map it with --columns '{heading}=FIELD' (fields: "
                                     f"{', '.join(c.field for c in COLUMNS if c.imported)}) or "
                                     f"'{heading}=ignore'"))
            ignored.append(heading)
            continue
        if fld == IGNORE or not BY_FIELD[fld].imported:
            ignored.append(heading)
            continue
        if fld in where:
            errors.append(RowProblem(raw.header_row or None, heading,
                                     f"is a second {BY_FIELD[fld].heading} column (the first is "
                                     f"{raw.headings[where[fld]]!r}): map one of them with --columns "
                                     f"'{heading}=ignore'"))
            continue
        where[fld] = i
        fields[i] = fld
    missing = [f for f in OFFICIAL_FIELDS if f not in where]
    for fld in missing:
        col = BY_FIELD[fld]
        hint = (" Nothing can be read without it." if fld in ESSENTIAL else
                " With --allow-partial the import reads the column as empty.")
        errors.append(RowProblem(raw.header_row or None, col.heading,
                                 f"missing column (the official table has it): if the table names it differently, "
                                 f"map it with --columns 'HEADING={fld}'.{hint}"))
    rows: list[TableRow] = []
    notes: list[int] = []
    bad_codes: set[str] = set()
    if all(f in where for f in ESSENTIAL):
        reader = _RowReader(program, fields, raw.headings)
        for number, cells in raw.rows:
            got = reader.read(number, cells)
            if got is None:
                if any(_text(c) for c in cells):
                    notes.append(number)
                continue
            if isinstance(got, list):
                errors.extend(got)
                bad_codes.update(p.code for p in got if p.code and CODE_RE.match(p.code))
            else:
                rows.append(got)
        rows, dup_errors = _check_overlaps(rows)
        errors.extend(dup_errors)
        bad_codes.update(p.code for p in dup_errors if p.code)
    return ParsedTable(raw, rows, errors, notes, bad_codes, ignored, all(f in where for f in ESSENTIAL))


def _check_overlaps(rows: list[TableRow]) -> tuple[list[TableRow], list[RowProblem]]:
    by_code: dict[str, list[TableRow]] = {}
    for r in rows:
        by_code.setdefault(r.code, []).append(r)
    errors = []
    for code, group in by_code.items():
        group.sort(key=lambda r: (r.effective, r.number))
        for a, b in itertools.pairwise(group):
            if a.effective == b.effective:
                errors.append(RowProblem(b.number, None, f"duplicate: {code} from {b.effective} is also on row "
                                         f"{a.number}; keep one of the two rows", code))
            elif a.end is None or a.end >= b.effective:
                span = f"from {a.effective}" + (f" to {a.end}" if a.end else " with no end date")
                errors.append(RowProblem(b.number, None, f"duplicate: {code} from {b.effective} overlaps row "
                                         f"{a.number} ({span}); end the earlier row the day before", code))
    return rows, errors


# --------------------------------------------------------------------------------------------------- merging


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _ordered(d: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The mapping with its keys in the schema's order (unknown keys after, as they were)."""
    out = {k: d[k] for k in keys if k in d}
    out.update({k: v for k, v in d.items() if k not in out})
    return out


def _same_content(p: Mapping[str, Any], row: TableRow) -> bool:
    if (p["status"], tuple(sorted(p["modalities"])), tuple(sorted(p.get("revenue_center_codes", []))),
            p["guideline"]) != row.content():
        return False
    return row.limits is None or _canon(p.get("limits", [])) == _canon(row.limits)


def _canon(value: Any) -> str:
    """Equal for documents that mean the same (key order and set-like list order aside)."""
    return json.dumps(normalize(value), sort_keys=True)


@dataclass
class _Target:
    release: str
    effective: dt.date
    source: str  # cited by rows without a citation column
    cpt_descriptions: bool
    category: str


def _describe(p: Mapping[str, Any]) -> str:
    span = f"from {p['effective']}" + (f" to {p['end']}" if p.get("end") else "")
    if p["status"] == "not-permitted":
        return f"{span}, not permitted"
    return f"{span}, {' and '.join(p['modalities'])}"


def _new_period(row: TableRow, start: dt.date, end: dt.date | None, t: _Target, own: Sequence[dict[str, Any]],
                note: str = "") -> dict[str, Any]:
    # A period this release added by an earlier import of the table keeps what the table cannot say
    # (limits, citation, notes) when the table still says the same: re-importing changes nothing.
    reuse = next((p for p in own if p["effective"] == start.isoformat() and _same_content(p, row)), None)
    p: dict[str, Any] = {"effective": start.isoformat()}
    if end is not None:
        p["end"] = end.isoformat()
    p["status"] = row.status
    p["modalities"] = list(row.modalities)
    if row.rccs:
        p["revenue_center_codes"] = list(row.rccs)
    p["guideline"] = row.guideline
    limits = row.limits if row.limits is not None else (reuse or {}).get("limits")
    if limits:
        p["limits"] = copy.deepcopy(limits)
    p["citation"] = copy.deepcopy(row.citation or (reuse or {}).get("citation") or
                                  {"source": t.source, "section": f"row {row.code}"})
    p["introduced_in"] = t.release
    if end is not None:
        p["ended_in"] = t.release
    dates_note = row.dates_note or note or (reuse or {}).get("dates_note")
    if dates_note:
        p["dates_note"] = dates_note
    return _ordered(p, PERIOD_KEYS)


def _placeholder(code: str) -> str:
    return f"CPT {code}: write a short description in your own words (CPT descriptors belong to the AMA)"


def merge_code(doc: dict[str, Any] | None, code: str, rows: Sequence[TableRow], t: _Target
               ) -> tuple[dict[str, Any] | None, list[RowProblem], list[RowProblem]]:
    """The code's document after the release's table (None: no periods left), with errors and warnings.

    The periods earlier releases published are history: the release may only give
    an open one an end date, and add new periods. Periods the release itself added
    (by an earlier import into the same release) are redone from the table.
    """
    errors: list[RowProblem] = []
    warnings: list[RowProblem] = []
    original = doc["periods"] if doc else []
    own = [p for p in original if p["introduced_in"] == t.release]
    base: list[dict[str, Any]] = []
    for p in original:
        if p["introduced_in"] == t.release:
            continue
        q = copy.deepcopy(p)
        if q.get("ended_in") == t.release:
            q.pop("end", None)
            q.pop("ended_in", None)
        base.append(q)
    base.sort(key=lambda p: p["effective"])
    at = {p["effective"]: p for p in base}
    new: list[tuple[TableRow | None, dict[str, Any]]] = []
    used: set[str] = set()
    e = t.effective
    one_day = dt.timedelta(days=1)

    def cut(b: dict[str, Any], day: dt.date) -> None:
        b["end"], b["ended_in"] = day.isoformat(), t.release

    for row in sorted(rows, key=lambda r: r.effective):
        b = at.get(row.effective.isoformat())
        if b is None:
            new.append((row, _new_period(row, row.effective, row.end, t, own)))
            continue
        used.add(b["effective"])
        b_end = _d(b["end"]) if "end" in b else None
        since = f"{code}'s row from {b['effective']} (release {b['introduced_in']})"
        if _same_content(b, row):
            if row.end == b_end:
                continue
            if b_end is None:
                assert row.end is not None
                cut(b, row.end)
            elif row.end is None or row.end > b_end:
                note = (f"Continues the row from {b['effective']}, which release {b['ended_in']} ended on {b_end}; "
                        f"the table of release {t.release} extends it.")
                new.append((row, _new_period(row, b_end + one_day, row.end, t, own, note)))
            else:
                errors.append(RowProblem(row.number, None, f"ends {row.end}, but {since} already ends {b_end} "
                                         f"(release {b['ended_in']}); a later release cannot move an end date "
                                         f"earlier: edit codes/{code}.json by hand", code))
            continue
        start = max(row.effective, e)
        if b_end is not None and b_end < start:
            warnings.append(RowProblem(row.number, None, f"differs from {since}, which ended {b_end}, before this "
                                       "release takes effect: the published history is kept", code))
            continue
        if start <= _d(b["effective"]) or b_end is not None:
            errors.append(RowProblem(row.number, None, f"changes {since}, which "
                                     + ("starts on or after the release takes effect" if b_end is None else
                                        f"release {b.get('ended_in')} set to end {b_end}")
                                     + f"; the release cannot end it the day before {start}: edit codes/{code}.json "
                                     "by hand, or import into the release that added the row", code))
            continue
        cut(b, start - one_day)
        note = "" if start == row.effective else (
            f"The table dates the row from {row.effective}; it changed in release {t.release}, so this period starts "
            f"on the release's effective date and the earlier one ends the day before.")
        new.append((row, _new_period(row, start, row.end, t, own, note)))

    starts = sorted(_d(p["effective"]) for _, p in new)
    for b in base:
        if b["effective"] in used:
            continue
        b_end = _d(b["end"]) if "end" in b else None
        if b_end is not None and b_end < e:
            continue  # history the table no longer shows
        b_eff = _d(b["effective"])
        nxt = next((s for s in starts if s > b_eff), None)
        day = e - one_day if nxt is None else min(e - one_day, nxt - one_day)
        if day < b_eff or b_end is not None:
            why = (f"starts on or after the release takes effect ({e})" if day < b_eff else
                   f"release {b.get('ended_in')} set it to end {b_end}, after this release takes effect")
            errors.append(RowProblem(None, None, f"{code}'s row from {b['effective']} (release {b['introduced_in']}) "
                                     f"is not in the table, but {why}, so the release cannot end it the day before: "
                                     f"edit codes/{code}.json by hand", code))
            continue
        cut(b, day)

    periods = sorted([*base, *(p for _, p in new)], key=lambda p: p["effective"])
    for a, b in itertools.pairwise(periods):
        if "end" not in a or _d(a["end"]) >= _d(b["effective"]):
            culprit = next((r for r, p in new if p is b or p is a), None)
            errors.append(RowProblem(culprit.number if culprit else None, None,
                                     f"{code}: the rows from {a['effective']} ({_describe(a)}) and from "
                                     f"{b['effective']} would overlap; edit codes/{code}.json by hand", code))
    if not periods:
        return None, errors, warnings
    if doc is not None:
        out = copy.deepcopy(doc)
        out["periods"] = [_ordered(p, PERIOD_KEYS) for p in periods]
        return _ordered(out, CODE_KEYS), errors, warnings
    first = sorted(rows, key=lambda r: r.effective)[0]
    system = first.system or ("CPT" if code[0].isdigit() else "HCPCS")
    description = first.description.strip()
    if system == "CPT" and not t.cpt_descriptions:
        description = _placeholder(code)
    if len(description) < 3:
        description = f"{code}: no description in the table; write a short one"
    new_doc = {"$schema": "../../schema/code.schema.json", "code": code, "system": system,
               "description": description[:200], "category": first.category or t.category,
               "periods": [_ordered(p, PERIOD_KEYS) for p in periods]}
    return new_doc, errors, warnings


def _period_changes(code: str, before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
                    ) -> list[Change]:
    old = {p["effective"]: p for p in before}
    new = {p["effective"]: p for p in after}
    out = []
    for eff in sorted(set(old) | set(new)):
        a, b = old.get(eff), new.get(eff)
        if a is None and b is not None:
            out.append(Change(code, "new-period", f"new row {_describe(b)}"))
        elif b is None and a is not None:
            out.append(Change(code, "removed-period", f"removed the row {_describe(a)}, which release "
                                                      f"{a['introduced_in']} had added and the table no longer has"))
        elif a is not None and b is not None and _canon(a) != _canon(b):
            if {k: v for k, v in a.items() if k not in ("end", "ended_in")} == \
                    {k: v for k, v in b.items() if k not in ("end", "ended_in")}:
                if b.get("end"):
                    out.append(Change(code, "ended", f"the row from {eff} now ends {b['end']}"))
                else:
                    out.append(Change(code, "end-changed", f"the row from {eff} no longer has an end date"))
            else:
                out.append(Change(code, "changed", f"the row from {eff} changed: {_describe(b)}"))
    return out


# --------------------------------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    """What an import did (or, with ``dry_run`` or errors, would have done)."""

    table: str
    policy: str
    release: str
    rows_read: int = 0
    rows: int = 0
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    notes: list[int] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    skipped_codes: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    unchanged_codes: int = 0
    created: list[str] = field(default_factory=list)  # what the import added to program.json and releases.json
    files: list[str] = field(default_factory=list)  # written, or to be written
    deleted: list[str] = field(default_factory=list)
    policy_problems: list[Problem] = field(default_factory=list)
    dry_run: bool = False
    allow_partial: bool = False
    written: bool = False

    @property
    def blocked(self) -> bool:
        """True when errors kept the import from writing (or would have, in a dry run)."""
        return bool(self.policy_problems) or (bool(self.errors) and not self.allow_partial)

    def counts(self) -> dict[str, int]:
        kinds = [c.kind for c in self.changes]
        return {
            "rows": self.rows, "errors": len(self.errors), "new_codes": kinds.count("new-code"),
            "changed_codes": len({c.code for c in self.changes if c.kind != "new-code"}),
            "unchanged_codes": self.unchanged_codes, "new_periods": kinds.count("new-period"),
            "ended_periods": kinds.count("ended"), "removed_periods": kinds.count("removed-period"),
            "removed_codes": kinds.count("removed-code"), "files": len(self.files) + len(self.deleted),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table, "policy": self.policy, "release": self.release, "dry_run": self.dry_run,
            "written": self.written, "counts": self.counts(), "created": self.created,
            "changes": [c.as_dict() for c in self.changes],
            "errors": [e.as_dict() for e in self.errors], "warnings": [w.as_dict() for w in self.warnings],
            "policy_problems": [p.as_dict() for p in self.policy_problems], "note_rows": self.notes,
            "ignored_columns": self.ignored_columns, "skipped_codes": self.skipped_codes,
            "files": self.files, "deleted": self.deleted,
        }

    def render(self) -> str:
        c = self.counts()
        out = [f"{self.table} -> release {self.release} of {self.policy}: {self.rows_read} rows read, "
               f"{self.rows} usable, {c['errors']} with errors"]
        for e in sorted(self.errors, key=lambda e: (e.row or 0, e.code or "")):
            out.append(f"  error: {e}")
        for w in self.warnings:
            out.append(f"  warning: {w}")
        for p in self.policy_problems:
            out.append(f"  the result would not be a valid policy: {p}")
        if self.notes:
            out.append(f"  rows read as notes around the table, not as rows: {_ranges(self.notes)}")
        if self.ignored_columns:
            out.append(f"  columns not imported: {', '.join(self.ignored_columns)}")
        if self.skipped_codes:
            out.append(f"  left as they are (a row could not be read): {', '.join(self.skipped_codes)}")
        out.extend(f"  {line}" for line in self.created)
        if self.errors and not self.allow_partial and self.changes:
            out.append("with --allow-partial, the import would make these changes:")
        out.append(f"new codes {c['new_codes']}, changed codes {c['changed_codes']}, unchanged codes "
                   f"{c['unchanged_codes']}; new rows {c['new_periods']}, ended rows {c['ended_periods']}, "
                   f"removed rows {c['removed_periods']}, removed codes {c['removed_codes']}")
        for ch in self.changes:
            out.append(f"  {_MARK.get(ch.kind, '~')} {ch.code}: {ch.text}")
        if self.written:
            out.append(f"wrote {len(self.files)} file(s), deleted {len(self.deleted)}")
        elif self.blocked:
            out.append("nothing was written: fix the problems above"
                       + ("" if self.policy_problems else ", or pass --allow-partial to import the readable rows "
                          "(codes with unreadable rows are left as they are)"))
        elif self.dry_run:
            out.append(f"dry run: nothing was written ({len(self.files)} file(s) to write, "
                       f"{len(self.deleted)} to delete)")
        else:
            out.append("nothing to write: the policy already says what the table says")
        return "\n".join(out)


_MARK = {"new-code": "+", "new-period": "+", "ended": "-", "removed-period": "-", "removed-code": "-"}


def _ranges(numbers: Sequence[int]) -> str:
    out: list[str] = []
    for n in sorted(numbers):
        if out and "-" not in out[-1].split(",")[-1] and int(out[-1]) == n - 1:
            out[-1] = f"{out[-1]}-{n}"
        elif out and "-" in out[-1] and int(out[-1].rsplit("-", 1)[1]) == n - 1:
            out[-1] = f"{out[-1].rsplit('-', 1)[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def _dump(doc: Any, kind: str) -> str:
    """The document in the canonical layout of ``cmap-policy fmt``: an import leaves nothing to reformat."""
    return format_document(doc, kind)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TableError(f"{path.name}: cannot read it ({exc}); run `cmap-policy validate` on the policy") from None


def import_table(
    table: str | Path | bytes,
    *,
    release: str,
    policy: str | Path | None = None,
    columns: Mapping[str, str] | Iterable[str] | None = None,
    fmt: str | None = None,
    sheet: str | None = None,
    dry_run: bool = False,
    allow_partial: bool = False,
    date: dt.date | None = None,
    source: str | None = None,
    secondary: bool = False,
    category: str | None = None,
    cpt_descriptions: bool = False,
    name: str | None = None,
) -> ImportResult:
    """Read a telehealth table (xlsx, csv or json) into the policy folder ``policy`` as release ``release``.

    The release must be in releases.json, or ``date`` must be given to add it (last,
    published and effective on that date, implementing ``source``, which is added
    to program.json as an official table when it is not there). New codes become
    files; a changed row becomes a new period and ends the one before it the day
    before; a period missing from the table ends the day before the release takes
    effect. Nothing is written when a row cannot be read (unless ``allow_partial``),
    when the result would not load, or with ``dry_run``. Raises ``TableError`` when
    the table or the request cannot be used at all.
    """
    root = Path(policy) if policy is not None else policy_dir()
    if "_bundled" in root.resolve().parts:
        raise TableError("the bundled policy of an installed package is read-only: pass --policy DIR, a policy "
                         "folder of your own")
    if not (root / "program.json").is_file() or not (root / "releases.json").is_file():
        raise TableError(f"{root}: not a policy folder (it needs program.json and releases.json; codes/ may be empty)")
    colmap = parse_column_map(columns) if columns is not None and not isinstance(columns, Mapping) else \
        {_norm(k): v for k, v in (columns or {}).items()}
    raw = read_table(table, fmt=fmt, name=name, columns=colmap, sheet=sheet)
    before = _Files(_load_json(root / "program.json"), _load_json(root / "releases.json"))
    result = ImportResult(raw.name, str(root), release, dry_run=dry_run, allow_partial=allow_partial)
    after, target = _prepare(before, release, date, source, secondary, category, cpt_descriptions, raw.name, result)

    parsed = parse_table(raw, after.program, colmap)
    result.rows_read = sum(1 for _, cells in raw.rows if any(_text(c) for c in cells))
    result.rows = len(parsed.rows)
    result.errors = list(parsed.errors)
    result.notes = parsed.notes
    result.ignored_columns = parsed.ignored_columns
    if not parsed.readable:
        return result  # without a code or an effective date column no row can be read

    codes_dir = root / "codes"
    paths = {p.stem: p for p in sorted(codes_dir.glob("*.json"))} if codes_dir.is_dir() else {}
    docs = {code: _load_json(path) for code, path in paths.items()}
    _check_later_releases(docs, after.releases, release)
    by_code: dict[str, list[TableRow]] = {}
    for r in parsed.rows:
        by_code.setdefault(r.code, []).append(r)
    skipped = set(parsed.bad_codes)
    planned: dict[str, dict[str, Any] | None] = {}
    for code in sorted(set(docs) | set(by_code)):
        if code in skipped:
            continue
        doc = docs.get(code)
        new_doc, errs, warns = merge_code(doc, code, by_code.get(code, []), target)
        result.warnings.extend(warns)
        if errs:
            result.errors.extend(errs)
            skipped.add(code)
        elif doc is None or new_doc is None or _canon(new_doc) != _canon(doc):
            planned[code] = new_doc
    result.skipped_codes = sorted(c for c in skipped if c in docs or c in by_code)
    result.unchanged_codes = sum(1 for c in set(docs) | set(by_code) if c not in planned and c not in skipped)
    if any(d is not None and d["category"] == DEFAULT_CATEGORY[0] for d in planned.values()) and \
            DEFAULT_CATEGORY[0] not in {c["id"] for c in after.program["categories"]}:
        after.program["categories"].append({"id": DEFAULT_CATEGORY[0], "name": DEFAULT_CATEGORY[1]})
        result.created.append(f"program.json: added category {DEFAULT_CATEGORY[0]} for new codes without one "
                              "(give --category or a Category column to choose)")
    if source is None and not secondary and any(
            s["id"] == target.source and s["secondary"] for s in after.program["sources"]) and any(
            p["introduced_in"] == release and p["citation"]["source"] == target.source
            for d in planned.values() if d is not None for p in d["periods"]):
        result.warnings.append(RowProblem(None, None, f"new rows cite {target.source}, the release's source, which "
                                          "is secondary; if this table is the official one, give --source ID (a new "
                                          "id is added to program.json as the official table)"))
    for code, new_doc in planned.items():
        if code not in docs:
            assert new_doc is not None
            result.changes.append(Change(code, "new-code", "new code: " + "; ".join(
                _describe(p) for p in new_doc["periods"])))
        elif new_doc is None:
            result.changes.append(Change(code, "removed-code", f"removed: release {release} had added it and the "
                                         "table no longer has it"))
        else:
            result.changes.extend(_period_changes(code, docs[code]["periods"], new_doc["periods"]))
    program_changed = _canon(after.program) != _canon(before.program)
    releases_changed = _canon(after.releases) != _canon(before.releases)
    result.files = ((["program.json"] if program_changed else []) + (["releases.json"] if releases_changed else [])
                    + [f"codes/{c}.json" for c, d in planned.items() if d is not None])
    result.deleted = [f"codes/{c}.json" for c, d in planned.items() if d is None]
    if result.errors and not allow_partial:
        return result
    if not result.files and not result.deleted:
        return result
    # Each file's text is made once: the scratch copy that is checked is byte for byte what is written.
    texts = {"program.json": _dump(after.program, "program"), "releases.json": _dump(after.releases, "releases"),
             **{f"codes/{c}.json": _dump(d, "code") for c, d in planned.items() if d is not None}}
    result.policy_problems = _validate(root, texts, paths, planned, by_code)
    if result.policy_problems or dry_run:
        return result
    # program.json and releases.json first: a new release or source is harmless on its own, a code
    # that names a release not yet written is not.
    if program_changed:
        _write_atomic(root / "program.json", texts["program.json"])
    if releases_changed:
        _write_atomic(root / "releases.json", texts["releases.json"])
    codes_dir.mkdir(exist_ok=True)
    for code, doc in planned.items():
        if doc is None:
            (codes_dir / f"{code}.json").unlink()
        else:
            _write_atomic(codes_dir / f"{code}.json", texts[f"codes/{code}.json"])
    result.written = True
    return result


@dataclass
class _Files:
    program: dict[str, Any]
    releases: dict[str, Any]


def _prepare(before: _Files, release: str, date: dt.date | None, source: str | None, secondary: bool,
             category: str | None, cpt_descriptions: bool, table_name: str, result: ImportResult
             ) -> tuple[_Files, _Target]:
    """program and releases with what the import needs added (a release, a source), and where rows go."""
    program = copy.deepcopy(before.program)
    releases = copy.deepcopy(before.releases)
    rels = releases["releases"]
    rel = next((r for r in rels if r["id"] == release), None)
    if source is not None and not ID_RE.match(source):
        raise TableError(f"--source {source!r}: an id is letters, digits, dots, dashes and underscores")
    if rel is None:
        if date is None:
            known = ", ".join(r["id"] for r in rels)
            raise TableError(f"release {release!r} is not in releases.json (known: {known}); give --date to add it "
                             "as the latest release, or add it to releases.json first")
        if not ID_RE.match(release) or len(release) > 64:
            raise TableError(f"release id {release!r}: use letters, digits, dots, dashes and underscores")
        if rels and date < _d(rels[-1]["published"]):
            raise TableError(f"--date {date} is before the latest release {rels[-1]['id']!r} "
                             f"(published {rels[-1]['published']}); releases are listed oldest first")
        rel = {"id": release, "published": date.isoformat(), "effective": date.isoformat(),
               "implements": [source or release], "summary": f"Telehealth table imported from {table_name}."}
        rels.append(rel)
        result.created.append(f"releases.json: added release {release} (published and effective {date})")
    elif date is not None and date.isoformat() != rel["effective"]:
        raise TableError(f"release {release!r} already exists, effective {rel['effective']}; --date {date} "
                         "differs: leave --date out, or name a new release")
    src = source or rel["implements"][0]
    listed = {s["id"]: s for s in program["sources"]}
    if src not in listed:
        published = rel["published"]
        program["sources"].append({
            "id": src,
            "title": f"{program['program']['name']}: telehealth table of {published}, imported from {table_name}",
            "url": f"{table_name} (the spreadsheet the program publishes; see the program's authority)",
            "kind": "secondary-reading" if secondary else "official-table",
            "secondary": secondary,
            "published": published,
            "note": "Imported with cmap-policy import.",
        })
        result.created.append(f"program.json: added source {src} ({'secondary' if secondary else 'official table'})")
    if src not in rel["implements"]:
        rel["implements"].append(src)
        result.created.append(f"releases.json: release {release} now also implements {src}")
    if category is not None and category not in {c["id"] for c in program["categories"]}:
        known = ", ".join(c["id"] for c in program["categories"])
        raise TableError(f"--category {category!r} is not in program.json categories ({known})")
    return _Files(program, releases), _Target(release, _d(rel["effective"]), src, cpt_descriptions,
                                              category or DEFAULT_CATEGORY[0])


def _check_later_releases(docs: Mapping[str, dict[str, Any]], releases: Mapping[str, Any], release: str) -> None:
    ids = [r["id"] for r in releases["releases"]]
    later = set(ids[ids.index(release) + 1:])
    if not later:
        return
    for code, doc in docs.items():
        for p in doc.get("periods", []):
            if p.get("introduced_in") in later or p.get("ended_in") in later:
                raise TableError(f"release {release!r} is followed by {ids[-1]!r}, and codes/{code}.json already has "
                                 f"rows of a later release: import into the latest release, or add a new one "
                                 "with --date")


def _validate(root: Path, texts: Mapping[str, str], paths: Mapping[str, Path],
              planned: Mapping[str, dict[str, Any] | None], by_code: Mapping[str, list[TableRow]]) -> list[Problem]:
    """Load the policy as it would be after the import (in a scratch copy); its problems, mapped to rows."""
    with tempfile.TemporaryDirectory(prefix="cmap-import-") as tmp:
        scratch = Path(tmp) / root.name
        (scratch / "codes").mkdir(parents=True)
        (scratch / "program.json").write_text(texts["program.json"], encoding="utf-8")
        (scratch / "releases.json").write_text(texts["releases.json"], encoding="utf-8")
        for code, path in paths.items():
            if code not in planned:
                shutil.copyfile(path, scratch / "codes" / path.name)
        for code, doc in planned.items():
            if doc is not None:
                (scratch / "codes" / f"{code}.json").write_text(texts[f"codes/{code}.json"], encoding="utf-8")
        try:
            # Every check of load_policy, without its cache: the scratch copy is gone in a moment.
            _load_checked(scratch)
        except PolicyError as err:
            return [_row_of(p, planned, by_code) for p in err.problems]
    return []


def _row_of(problem: Problem, planned: Mapping[str, dict[str, Any] | None],
            by_code: Mapping[str, list[TableRow]]) -> Problem:
    """The problem with the table row that produced the period it names, when there is one."""
    m = re.search(r"codes/([^/]+)\.json$", problem.file)
    pm = re.match(r"^/periods/(\d+)", problem.pointer)
    if not m or not pm:
        return problem
    doc = planned.get(m.group(1))
    if doc is None or int(pm.group(1)) >= len(doc["periods"]):
        return problem
    eff = doc["periods"][int(pm.group(1))]["effective"]
    row = next((r for r in by_code.get(m.group(1), []) if r.effective.isoformat() == eff), None)
    if row is None:
        return problem
    return Problem(problem.file, problem.pointer, f"table row {row.number}: {problem.message}", problem.rule,
                   problem.hint, problem.line, problem.col)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.import-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------- export


def _limit_dict(lim: Limit) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": lim.kind, "guideline": lim.guideline}
    if lim.modalities:
        out["modalities"] = list(lim.modalities)
    if lim.min_age is not None:
        out["min_age"] = lim.min_age
    if lim.max_age is not None:
        out["max_age"] = lim.max_age
    if lim.provider_types:
        out["provider_types"] = list(lim.provider_types)
    if lim.max_units is not None:
        out["max_units"] = lim.max_units
    if lim.citation is not None:
        out["citation"] = {k: v for k, v in (("source", lim.citation.source.id), ("section", lim.citation.section),
                                             ("note", lim.citation.note)) if v}
    return out


def _row(policy: Policy, code: str, p: Period) -> dict[str, Any]:
    c = policy.codes[code]
    return {
        "code": code,
        "description": c.description,
        "rcc": list(p.revenue_center_codes),
        "effective": p.effective,
        "end": p.end,
        "audio_only": "audio-only" in p.modalities,
        "guideline": p.guideline,
        "system": c.system,
        "category": c.category,
        "status": "permitted" if p.permitted else "not permitted",
        "modalities": list(p.modalities),
        "limits": [_limit_dict(lim) for lim in p.limits],
        "citation_source": p.citation.source.id,
        "citation_section": p.citation.section,
        "citation_note": p.citation.note,
        "source_title": p.citation.source.title,
        "secondary": p.citation.source.secondary,
        "dates_note": p.dates_note,
        "introduced_in": p.introduced_in,
        "ended_in": p.ended_in,
    }


def table_rows(policy: Policy, *, date: dt.date | None = None, release: str | None = None,
               history: bool = False) -> list[dict[str, Any]]:
    """The table's rows as published in ``release``: those in force on ``date``, or with ``history`` every row
    (only those starting on or before ``date`` when it is given). Keys are the column fields."""
    if date is None and not history:
        raise TableError("give a date (the table in force on that date) or history=True (every row)")
    rel = policy.release(release)
    out = []
    for code, view in sorted(policy.views[rel.id].items()):
        for p in view.periods:
            if history:
                if date is None or p.effective <= date:
                    out.append(_row(policy, code, p))
            elif date is not None and p.covers(date):
                out.append(_row(policy, code, p))
    return out


def _cell(fld: str, value: Any) -> Any:
    """A value as a spreadsheet cell holds it (dates stay dates for the xlsx writer)."""
    if value is None:
        return ""
    if fld in ("rcc",):
        return ", ".join(value)
    if fld == "modalities":
        return "; ".join(value)
    if fld == "limits":
        return json.dumps(value, ensure_ascii=False) if value else ""
    if fld in ("audio_only", "secondary"):
        return "Yes" if value else "No"
    return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _formula_safe(text: str) -> str:
    # A spreadsheet runs a cell that begins with = + - @ as a formula: an apostrophe keeps it text
    # (import takes the apostrophe off again).
    return "'" + text if text[:1] in _FORMULA_START else text


def _csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow([c.heading for c in COLUMNS])
    for r in rows:
        cells = []
        for c in COLUMNS:
            v = _cell(c.field, r[c.field])
            if isinstance(v, dt.date):
                v = v.isoformat()
            cells.append(_formula_safe(v) if isinstance(v, str) else v)
        w.writerow(cells)
    return buf.getvalue().encode("utf-8-sig")  # the BOM makes spreadsheet programs read UTF-8


_CITATION_FIELDS = ("citation_source", "citation_section", "citation_note", "source_title", "secondary")


def _json_bytes(policy: Policy, rows: list[dict[str, Any]], rel_id: str, date: dt.date | None,
                history: bool) -> bytes:
    rel = policy.release(rel_id)
    out_rows = []
    for r in rows:
        item: dict[str, Any] = {}
        for c in COLUMNS:
            v = r[c.field]
            if c.field in _CITATION_FIELDS:
                continue
            item[c.json_key] = v.isoformat() if isinstance(v, dt.date) else v
        cit: dict[str, Any] = {"source": r["citation_source"]}
        if r["citation_section"]:
            cit["section"] = r["citation_section"]
        if r["citation_note"]:
            cit["note"] = r["citation_note"]
        cit.update(title=r["source_title"], secondary=r["secondary"])
        item["citation"] = cit
        out_rows.append(item)
    doc = {
        "program": {"id": policy.program.id, "name": policy.program.name, "authority": policy.program.authority},
        "release": {"id": rel.id, "published": rel.published.isoformat(), "effective": rel.effective.isoformat()},
        "date": date.isoformat() if date else None,
        "history": history,
        "policy_hash": policy.hash,
        "columns": [{"key": c.json_key, "heading": c.heading, "official": c.official} for c in COLUMNS
                    if c.field not in _CITATION_FIELDS] + [{"key": "citation", "heading": "Citation",
                                                            "official": False}],
        "rows": out_rows,
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


_WIDTHS = {"code": 10, "description": 48, "rcc": 14, "effective": 12, "end": 12, "audio_only": 10, "guideline": 60,
           "system": 8, "category": 18, "status": 14, "modalities": 24, "limits": 30, "citation_source": 20,
           "citation_section": 20, "citation_note": 30, "source_title": 40, "secondary": 10, "dates_note": 40,
           "introduced_in": 16, "ended_in": 16}


def _xlsx_bytes(policy: Policy, rows: list[dict[str, Any]], rel_id: str, date: dt.date | None,
                history: bool) -> bytes:
    try:
        import openpyxl
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font, PatternFill
        from openpyxl.utils import get_column_letter
    except ImportError:
        raise TableError("writing .xlsx needs openpyxl: install the table extra, pip install 'cmap-policy[table]'") \
            from None
    rel = policy.release(rel_id)
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(SHEET_NAME)
    for i, c in enumerate(COLUMNS, 1):
        ws.column_dimensions[get_column_letter(i)].width = _WIDTHS.get(c.field, 14)
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(rows) + 1}"
    bold = Font(bold=True)
    extra = PatternFill("solid", fgColor="EEEEEE")
    header = []
    for c in COLUMNS:
        cell = WriteOnlyCell(ws, value=c.heading)
        cell.font = bold
        if not c.official:
            cell.fill = extra
        header.append(cell)
    ws.append(header)
    for r in rows:
        cells: list[Any] = []
        for c in COLUMNS:
            v = _cell(c.field, r[c.field])
            if v == "":
                cells.append(None)  # no cell at all: smaller file, faster to read
            elif isinstance(v, dt.date):
                cell = WriteOnlyCell(ws, value=v)
                cell.number_format = "yyyy-mm-dd"
                cells.append(cell)
            elif isinstance(v, str) and v[:1] in _FORMULA_START:
                cells.append(_text_cell(ws, v))  # text, never a formula
            else:
                cells.append(v)
        ws.append(cells)
    about = wb.create_sheet("About")
    for k, v in (("Program", policy.program.name), ("Authority", policy.program.authority),
                 ("Release", f"{rel.id} (published {rel.published}, effective {rel.effective})"),
                 ("Rows", f"every row of the release{f' starting on or before {date}' if date else ''}" if history
                  else f"the rows in force on {date}"),
                 ("Columns", "The first seven columns are the official table's; the shaded ones after them are "
                             "added by cmap-policy (import reads them back, except Source Title, Secondary Source, "
                             "Introduced In and Ended In)."),
                 ("Policy hash", policy.hash)):
        about.append([WriteOnlyCell(about, value=k), _text_cell(about, v)])
    buf = io.BytesIO()
    wb.save(buf)
    return _stable_zip(buf.getvalue(), dt.datetime.combine(rel.published, dt.time()))


def _text_cell(ws: Any, value: str) -> Any:
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def _stable_zip(data: bytes, stamp: dt.datetime) -> bytes:
    """The workbook with its save time and zip entry times fixed: the same policy gives the same bytes."""
    text_stamp = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)", rb"\g<1>" + text_stamp + rb"\g<2>",
                              body)
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            zout.writestr(zi, body)
    return out.getvalue()


def export_table(policy: Policy | str | Path | None = None, *, date: dt.date | None = None,
                 release: str | None = None, fmt: str = "csv", history: bool = False) -> bytes:
    """The telehealth table as published in ``release`` (default: the latest), as csv, xlsx or json bytes.

    Without ``history``: the rows in force on ``date``. With it: every row of the
    release, ended ones included (only those starting on or before ``date`` when
    given). Columns: the official table's seven, then code system, category,
    status, modalities, limits, citation, notes and the releases of each row.
    """
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    if fmt not in FORMATS:
        raise TableError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
    rel = pol.release(release)
    rows = table_rows(pol, date=date, release=rel.id, history=history)
    if fmt == "csv":
        return _csv_bytes(rows)
    if fmt == "json":
        return _json_bytes(pol, rows, rel.id, date, history)
    return _xlsx_bytes(pol, rows, rel.id, date, history)
