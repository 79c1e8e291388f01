"""The columns of the telehealth table: the official headings, the extra ones an export adds, and how
headings are matched; the row problems and changes an import reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import TableError


def ordered(d: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The mapping with its keys in the schema's order (unknown keys after, as they were)."""
    out = {k: d[k] for k in keys if k in d}
    out.update({k: v for k, v in d.items() if k not in out})
    return out


FORMATS = ("csv", "xlsx", "json")
SHEET_NAME = "Telehealth table"
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_CATEGORY = ("uncategorized", "Not yet categorised (imported from the telehealth table)")
HEADER_SEARCH_ROWS = 30
PERIOD_KEYS = ("effective", "start_known", "end", "status", "modalities", "undetermined_modalities",
               "revenue_center_codes", "guideline", "limits", "citation", "introduced_in", "ended_in", "removed",
               "dates_note")
LIMIT_KEYS = ("kind", "guideline", "modalities", "min_age", "max_age", "provider_types", "max_units", "citation")
CODE_KEYS = ("$schema", "code", "system", "description", "category", "note", "periods")
# --------------------------------------------------------------------------------------------------- columns


@dataclass(frozen=True, slots=True)
class Column:
    field: str
    heading: str  # as exported
    json_key: str
    official: bool  # one of the columns the DSS page describes
    imported: bool  # read on import (the others are exported for readers and ignored)
    variants: tuple[str, ...] = ()  # other headings accepted on import, compared after norm_heading


def norm_heading(heading: str) -> str:
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
    Column("start_known", "Start Known", "start_known", False, True, ("startdateknown",)),
    Column("removed", "Removed From Table", "removed", False, True, ("removed",)),
    Column("undetermined_modalities", "Undetermined Modalities", "undetermined_modalities", False, True,
           ("modalitiesundetermined",)),
    Column("source_title", "Source Title", "source_title", False, False, ()),
    Column("secondary", "Secondary Source", "secondary_source", False, False, ("secondary",)),
    Column("introduced_in", "Introduced In", "introduced_in", False, False, ("introducedinrelease",)),
    Column("ended_in", "Ended In", "ended_in", False, False, ("endedinrelease",)),
)
BY_FIELD: dict[str, Column] = {c.field: c for c in COLUMNS}
OFFICIAL_FIELDS = tuple(c.field for c in COLUMNS if c.official)
# Without these two nothing can be read; the other official columns missing is an error per table.
ESSENTIAL = ("code", "effective")
# A heading that contains one of these (after norm_heading) is taken as that column: real tables add "(Y/N)"
# and the like.
CONTAINS = (("audioonly", "audio_only"), ("revenue", "rcc"), ("guideline", "guideline"), ("effective", "effective"),
             ("enddate", "end"), ("descri", "description"))
HEADINGS: dict[str, str] = {}
for _c in COLUMNS:
    for _v in (norm_heading(_c.heading), norm_heading(_c.json_key), norm_heading(_c.field), *_c.variants):
        HEADINGS.setdefault(_v, _c.field)
IGNORE = "ignore"


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
            key = norm_heading(name)
            fld = IGNORE if key in ("ignore", "skip", "") or name == "-" else HEADINGS.get(key)
            if fld is None or (fld != IGNORE and not BY_FIELD[fld].imported):
                known = ", ".join(c.field for c in COLUMNS if c.imported)
                raise TableError(f"--columns {part.strip()!r}: unknown field {name!r} (fields: {known}, or ignore)")
            out[norm_heading(heading)] = fld
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


