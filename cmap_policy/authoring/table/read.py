"""Reading a table (xlsx, csv, or an export's json) into rows, and each row into a checked ``TableRow``.

A table is read within limits (``TABLE_LIMITS``): its size (for an .xlsx, the size of everything in the
zip once uncompressed, checked before openpyxl opens it), its rows, its columns and the length of one
cell. The official table has a few thousand rows of a dozen columns; a file far past that is a mistake or
a bomb (a few kilobytes of .xlsx can unpack to millions of cells), and is refused with ``TableError``
saying which limit it passed, before the time and memory it would take are spent.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import guard
from ...errors import TableError
from ...lines import CODE_RE
from .cells import (
    Bad,
    audio_and_status,
    cell_text,
    known_and_removed,
    row_dates,
    row_system,
)
from .columns import (
    BY_FIELD,
    COLUMNS,
    CONTAINS,
    ESSENTIAL,
    FORMATS,
    HEADER_SEARCH_ROWS,
    HEADINGS,
    IGNORE,
    LIMIT_KEYS,
    OFFICIAL_FIELDS,
    SHEET_NAME,
    RowProblem,
    norm_heading,
    ordered,
)

# --------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class TableLimits:
    bytes: int = 64 << 20  # the file (csv, json), or an .xlsx's parts once uncompressed
    rows: int = 50_000
    columns: int = 256
    cell_chars: int = 32_767  # a spreadsheet program's own limit on one cell


TABLE_LIMITS = TableLimits()


def _bounded(name: str, rows: Iterable[Sequence[Any]], limits: TableLimits) -> list[tuple[int, list[Any]]]:
    """The rows, numbered from 1, or ``TableError`` at the first row past a limit (read no further)."""
    out: list[tuple[int, list[Any]]] = []
    for number, row in enumerate(rows, 1):
        if number > limits.rows:
            raise TableError(f"{name}: more than {limits.rows:,} rows; the telehealth table has a few thousand "
                             "(is this the right file or sheet?)")
        cells = list(row)
        if len(cells) > limits.columns:
            extra = next((i for i in range(limits.columns, len(cells)) if _filled(cells[i])), None)
            if extra is not None:
                raise TableError(f"{name}: row {number} has a value in column {extra + 1:,}; a table is read up to "
                                 f"column {limits.columns}")
            cells = cells[:limits.columns]
        for i, cell in enumerate(cells):
            if isinstance(cell, str) and len(cell) > limits.cell_chars:
                raise TableError(f"{name}: row {number}, column {i + 1}: a cell of {len(cell):,} characters; a "
                                 f"cell may hold {limits.cell_chars:,}")
        out.append((number, cells))
    return out


def _filled(value: Any) -> bool:
    """True when a cell holds anything (not None, not blank text)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def _unpacked_size(data: bytes, name: str, limits: TableLimits) -> None:
    """Refuse an .xlsx whose parts unpack to more than the limit (read from the zip's directory, nothing unpacked)."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            size = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip at all: openpyxl says so, in its own words
    if size > limits.bytes:
        raise TableError(f"{name}: the workbook unpacks to {size:,} bytes, more than the {limits.bytes:,} a table "
                         "may have (the telehealth table is a few hundred kilobytes)")


@dataclass
class RawTable:
    name: str
    header_row: int
    headings: list[str]
    rows: list[tuple[int, list[Any]]]


def _is_code_heading(cell: Any, colmap: Mapping[str, str]) -> bool:
    if not isinstance(cell, str) or not cell.strip():
        return False
    n = norm_heading(cell)
    return colmap.get(n, HEADINGS.get(n)) == "code"


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


def _read_xlsx(data: bytes, name: str, colmap: Mapping[str, str], sheet: str | None,
               limits: TableLimits) -> RawTable:
    _unpacked_size(data, name, limits)
    import openpyxl  # a dependency of the base install, imported only when a workbook is read

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
            rows = _bounded(f"{name} [{sname}]", ws.iter_rows(min_row=1, values_only=True), limits)
            if _find_header(rows, colmap) is not None:
                return _table_from_rows(f"{name} [{sname}]", rows, colmap)
        shown = sheet or ", ".join(wb.sheetnames)
        raise TableError(f"{name}: no sheet ({shown}) has a header row with a procedure code column in its first "
                         f"{HEADER_SEARCH_ROWS} rows; name the code column with --columns 'HEADING=code'")
    finally:
        wb.close()


def _read_csv(data: bytes, name: str, colmap: Mapping[str, str], limits: TableLimits) -> RawTable:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(f"{name}: not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8'") from None
    try:
        rows = _bounded(name, csv.reader(io.StringIO(text, newline=""), strict=True), limits)
    except csv.Error as exc:
        raise TableError(f"{name}: not valid CSV ({exc})") from None
    return _table_from_rows(name, rows, colmap)


def _read_json(data: bytes, name: str, limits: TableLimits) -> RawTable:
    try:
        doc = guard.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise TableError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise TableError(f"{name}: {guard.describe(exc)} (line {exc.lineno}, column {exc.colno})") from None
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
    if len(items) > limits.rows or len(keys) > limits.columns:
        raise TableError(f"{name}: {len(items):,} rows of {len(keys):,} columns; a table is read up to "
                         f"{limits.rows:,} rows and {limits.columns} columns")
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
    return RawTable(name, 0, keys, [(n, cells) for n, cells in _bounded(name, (r for _, r in rows), limits)])


def read_table(table: str | Path | bytes, *, fmt: str | None = None, name: str | None = None,
               columns: Mapping[str, str] | None = None, sheet: str | None = None,
               limits: TableLimits = TABLE_LIMITS) -> RawTable:
    """The header and rows of a table file (or its bytes, with ``fmt``), within ``limits``."""
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
            with path.open("rb") as f:
                data = f.read(limits.bytes + 1)
        except OSError as exc:
            raise TableError(f"{shown}: cannot read the file ({exc.strerror})") from None
    if len(data) > limits.bytes:
        raise TableError(f"{shown}: larger than {limits.bytes:,} bytes; the telehealth table is a few hundred "
                         "kilobytes")
    if fmt is None:
        fmt = "xlsx" if data[:2] == b"PK" else "json" if data.lstrip()[:1] in (b"{", b"[") else "csv"
    if fmt == "xlsx":
        return _read_xlsx(data, shown, colmap, sheet, limits)
    if fmt == "csv":
        return _read_csv(data, shown, colmap, limits)
    if fmt == "json":
        return _read_json(data, shown, limits)
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
    start_known: bool = True
    undetermined_modalities: tuple[str, ...] = ()
    removed: bool = False


class _RowReader:
    """Turns the cells of one row into a ``TableRow``, collecting every problem of the row."""

    def __init__(self, program: Mapping[str, Any], fields: Mapping[int, str], headings: Sequence[str]) -> None:
        self.modalities = {m["id"]: m["id"] for m in program["modalities"]}
        self.modalities.update({norm_heading(m["name"]): m["id"] for m in program["modalities"]})
        self.modalities.update({norm_heading(m["id"]): m["id"] for m in program["modalities"]})
        self.categories = {c["id"]: c["id"] for c in program["categories"]}
        self.categories.update({norm_heading(c["name"]): c["id"] for c in program["categories"]})
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
        filled = {f for f, v in get.items() if cell_text(v) != "" and not (isinstance(v, list) and not v)}
        code_text = cell_text(get.get("code")).upper()
        if code_text.isdigit() and len(code_text) < 5 and isinstance(get.get("code"), (int, float)):
            code_text = code_text.zfill(5)  # a spreadsheet stores 00100 as the number 100
        if not filled:
            return None
        if filled <= {"code", "description", "guideline"} and not CODE_RE.match(code_text):
            return None  # text under (or above) the table, such as the modifier guidance at its bottom
        problems: list[RowProblem] = []

        def bad(fld: str, message: str) -> None:
            problems.append(RowProblem(number, self.heading(fld), message, code_text or None))

        # each check in the order its problems are reported
        if not code_text:
            bad("code", "no procedure code")
        elif not CODE_RE.match(code_text):
            bad("code", f"{code_text!r} is not a procedure code (five characters: a CPT code such as 90834 or a "
                        "HCPCS code such as T1016)")
        effective, end = row_dates(get, bad)
        system = row_system(get, code_text, bad)
        category = self._category(get, bad)
        guideline = cell_text(get.get("guideline"))
        audio, status = audio_and_status(get, guideline, bad)
        modalities = self._modalities(get.get("modalities"), bad)
        silent = self._modalities(get.get("undetermined_modalities"), bad)
        start_known, removed = known_and_removed(get, end, bad)
        if set(silent) & set(modalities):
            bad("undetermined_modalities", "a modality cannot be both allowed and undetermined")
        modalities = self._row_modalities(status, modalities, audio, bad)
        rccs = self._rccs(get.get("rcc"), bad)
        limits = self._limits(get.get("limits"), bad) if "limits" in self.present else None
        citation = self._citation(get, bad)
        if problems:
            return problems
        assert effective is not None and status is not None
        return TableRow(number, code_text, cell_text(get.get("description")), rccs, effective, end, status, modalities,
                        guideline, system, category, limits, citation, cell_text(get.get("dates_note")) or None,
                        start_known, silent, removed)

    def _category(self, get: dict[str, Any], bad: Bad) -> str | None:
        raw = cell_text(get.get("category"))
        if not raw:
            return None
        category = self.categories.get(raw, self.categories.get(norm_heading(raw)))
        if category is None:
            bad("category", f"unknown category {raw!r}: use an id from program.json categories "
                            f"({', '.join(sorted(c for c in self.categories if '-' in c or c.islower()))})")
        return category

    def _row_modalities(self, status: str | None, modalities: tuple[str, ...], audio: bool | None,
                        bad: Bad) -> tuple[str, ...]:
        """The modalities the row allows: none when not permitted; from the audio-only column when not listed."""
        if status == "not-permitted":
            if modalities:
                bad("modalities", "a row listed as not permitted cannot allow modalities")
            if audio:
                bad("audio_only", "a row listed as not permitted cannot allow audio-only")
            return ()
        if status == "permitted":
            if not modalities:
                if "audio-video" not in self.modalities:
                    bad("modalities", "the program has no audio-video modality: name the modalities in a "
                                      "Modalities column")
                return tuple(sorted({"audio-video", *(["audio-only"] if audio else [])}))
            if audio is not None and audio != ("audio-only" in modalities):
                bad("audio_only", f"says {'yes' if audio else 'no'}, but the Modalities column lists "
                                  f"{', '.join(modalities)}")
        return modalities

    def _citation(self, get: dict[str, Any], bad: Bad) -> dict[str, str] | None:
        src = cell_text(get.get("citation_source"))
        if not src:
            return None
        if src not in self.sources:
            bad("citation_source", f"unknown source {src!r}: add it to sources in program.json, or clear the cell")
            return None
        citation = {"source": src}
        if cell_text(get.get("citation_section")):
            citation["section"] = cell_text(get.get("citation_section"))
        if cell_text(get.get("citation_note")):
            citation["note"] = cell_text(get.get("citation_note"))
        return citation

    def _modalities(self, value: Any, bad: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [v for v in re.split(r"[;,|/]", cell_text(value)) if v.strip()]
        out = set()
        for item in items:
            text = cell_text(item)
            mod = self.modalities.get(text, self.modalities.get(norm_heading(text)))
            if mod is None:
                known = ", ".join(sorted(set(self.modalities.values())))
                bad("modalities", f"unknown modality {text!r} (known: {known})")
            else:
                out.add(mod)
        return tuple(sorted(out))

    @staticmethod
    def _rccs(value: Any, bad: Any) -> tuple[str, ...]:
        text = cell_text(value)
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
            text = cell_text(value)
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
        return [ordered(x, LIMIT_KEYS) for x in data]


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
        n = norm_heading(heading)
        fld = colmap.get(n) or HEADINGS.get(n) or next((f for part, f in CONTAINS if part in n), None)
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
                if any(cell_text(c) for c in cells):
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
