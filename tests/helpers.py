"""Small builders shared by the core tests."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from cmap_policy import ClaimLine
from cmap_policy.testing import PolicyTree, bundled_tree

FIXTURE_SOURCE = {"id": "FIXTURE", "title": "Test fixture (not the CMAP policy)",
                  "url": "https://example.invalid/fixture", "kind": "code-list", "secondary": True}


def line(code: str, date: str, *mods: str, **kw: Any) -> ClaimLine:
    return ClaimLine(code=code, date=dt.date.fromisoformat(date), modifiers=tuple(mods), **kw)


def fixture_tree() -> PolicyTree:
    """The bundled program with one made-up code that uses every field: RCCs and every limit kind."""
    tree = bundled_tree()
    tree.program["sources"].append(dict(FIXTURE_SOURCE))
    for mod in tree.program["modifiers"]:
        if mod["code"] == "FQ":
            mod["claim_types"] = ["institutional"]
    tree.releases["releases"].append({"id": "FIX-1", "published": "2026-03-01", "effective": "2026-03-01",
                                      "implements": ["FIXTURE"], "summary": "Fixture release",
                                      "coverage": "partial"})
    tree.codes["99999"] = {
        "$schema": "../../schema/code.schema.json", "code": "99999", "system": "CPT",
        "description": "Fixture code", "category": "behavioral-health",
        "periods": [{
            "effective": "2026-03-01", "status": "permitted", "modalities": ["audio-only", "audio-video"],
            "revenue_center_codes": ["0900", "0914"], "guideline": "Fixture guideline.",
            "limits": [
                {"kind": "age", "min_age": 3, "max_age": 20, "guideline": "Ages 3 to 20."},
                {"kind": "provider-type", "provider_types": ["clinic"], "guideline": "Clinics only."},
                {"kind": "established-patient", "modalities": ["audio-only"], "guideline": "Audio-only: "
                 "established patients."},
                {"kind": "units-per-day", "max_units": 4, "guideline": "At most 4 units a day."},
            ],
            "citation": {"source": "FIXTURE"}, "introduced_in": "FIX-1",
        }],
    }
    return tree


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    """A workbook of one sheet holding ``rows``, as the bytes of an .xlsx file."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
