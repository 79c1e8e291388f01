"""``export_table``: the policy as a spreadsheet (csv, xlsx) or json, in the official columns first."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from ...errors import TableError
from ...load.loader import load_policy
from ...model import Limit, Period, Policy
from .columns import COLUMNS, FORMATS, SHEET_NAME


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
        "start_known": p.start_known,
        "removed": p.removed,
        "undetermined_modalities": list(p.undetermined_modalities),
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
    if fld in ("modalities", "undetermined_modalities"):
        return "; ".join(value)
    if fld == "limits":
        return json.dumps(value, ensure_ascii=False) if value else ""
    if fld in ("audio_only", "secondary", "start_known", "removed"):
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
        "release": {"id": rel.id, "published": rel.published.isoformat(), "effective": rel.effective.isoformat(),
                    # what the data holds: the whole table from a date, or only the rows sources name
                    "whole_table_from": (policy.complete_from.get(rel.id) or None) and
                    str(policy.complete_from[rel.id])},
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
           "start_known": 10, "undetermined_modalities": 20, "introduced_in": 16, "ended_in": 16}


def _xlsx_bytes(policy: Policy, rows: list[dict[str, Any]], rel_id: str, date: dt.date | None,
                history: bool) -> bytes:
    import openpyxl  # a dependency of the base install, imported only when a workbook is written
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

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
