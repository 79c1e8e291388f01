"""One cell of a telehealth table read as a value: its text, a date, a yes or no, a row's status.

Kept apart from ``read`` (which finds the table in a file and turns each row into a ``TableRow``) because these
readings are small rules about the words people write in spreadsheets ("n/a" for no end, 3/1/2026 for a date,
"not covered" for a status), and each is one place to look when a table says something new.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from ...lines import CODE_RE

Bad = Callable[[str, str], None]  # reports a problem of a row's field: (field, message)


def _unquote(text: str) -> str:
    """Undo the apostrophe the exporter puts before text a spreadsheet would run as a formula."""
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r":
        return text[1:]
    return text


def cell_text(value: Any) -> str:
    """A cell's value as the text a reader sees in it (a whole float without its ".0", a date as ISO)."""
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
        return ", ".join(cell_text(v) for v in value)
    return _unquote(str(value).strip()).strip()


_OPEN_END = {"", "-", "–", "—", "n/a", "na", "none", "open", "ongoing", "current", "no end date", "null"}
_DATE_FORMS = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})$"), ("m", "d", "y")),
    (re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$"), ("m", "d", "y")),
)


def cell_date(value: Any, blank_ok: bool) -> tuple[dt.date | None, str | None]:
    """(date, None) or (None, error message); an empty cell is (None, None) when ``blank_ok``."""
    if isinstance(value, dt.datetime):
        return value.date(), None
    if isinstance(value, dt.date):
        return value, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1 <= value < 2958466:  # an Excel serial day number in a cell not formatted as a date
            return dt.date(1899, 12, 30) + dt.timedelta(days=int(value)), None
        return None, f"{value!r} is not a date"
    text = cell_text(value)
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


YES = {"yes", "y", "true", "x", "✓", "✔", "allowed", "permitted", "1"}
NO = {"", "no", "n", "false", "0", "not allowed", "not permitted", "-", "n/a", "na", "none"}
PERMITTED = {"permitted", "yes", "y", "allowed", "payable", "listed"}
NOTPERMITTED = {"not permitted", "not-permitted", "notpermitted", "no", "n", "not allowed", "not covered",
                  "not payable"}
NOTPERMITTED_TEXT = re.compile(
    r"^\W*(not\s+(permitted|allowed|covered|payable)\s+(via|by|for|as)\s+telehealth"
    r"|telehealth\s+(is\s+)?not\s+(permitted|allowed|covered))", re.IGNORECASE)


def row_dates(get: dict[str, Any], bad: Bad) -> tuple[dt.date | None, dt.date | None]:
    effective, err = cell_date(get.get("effective"), blank_ok=False)
    if err:
        bad("effective", err)
    end, err = cell_date(get.get("end"), blank_ok=True)
    if err:
        bad("end", err)
    if effective and end and end < effective:
        bad("end", f"ends {end}, before it takes effect on {effective}")
    return effective, end


def row_system(get: dict[str, Any], code_text: str, bad: Bad) -> str | None:
    system = cell_text(get.get("system")).upper() or None
    if system is None:
        return None
    system = "HCPCS" if system.startswith("HCPCS") else system
    if system not in ("CPT", "HCPCS"):
        bad("system", f"{system!r} is not a code system (CPT or HCPCS)")
        return None
    if code_text and CODE_RE.match(code_text) and (system == "CPT") != code_text[0].isdigit():
        bad("system", f"{code_text} has the shape of a {'CPT' if code_text[0].isdigit() else 'HCPCS'} code")
    return system


def audio_and_status(get: dict[str, Any], guideline: str, bad: Bad) -> tuple[bool | None, str | None]:
    """(whether the audio-only column allows it, if it says; the row's status, from its column or its guideline)."""
    audio_raw = cell_text(get.get("audio_only")).lower()
    audio: bool | None = None
    if audio_raw in YES:
        audio = True
    elif audio_raw in NO:
        audio = False if audio_raw else None
    else:
        bad("audio_only", f"{audio_raw!r} is neither yes nor no")
    status_raw = cell_text(get.get("status")).lower()
    status: str | None = None
    if status_raw in PERMITTED:
        status = "permitted"
    elif status_raw in NOTPERMITTED:
        status = "not-permitted"
    elif status_raw:
        bad("status", f"{status_raw!r} is not a status (permitted or not permitted)")
    if status is None and not status_raw:
        status = "not-permitted" if NOTPERMITTED_TEXT.match(guideline) else "permitted"
    return audio, status


def known_and_removed(get: dict[str, Any], end: dt.date | None, bad: Bad) -> tuple[bool, bool]:
    """(whether the row's real start is known, whether the row leaves the table at its end)."""
    known_raw = cell_text(get.get("start_known")).lower()
    start_known = True
    if known_raw in NO and known_raw:
        start_known = False
    elif known_raw and known_raw not in YES:
        bad("start_known", f"{known_raw!r} is neither yes nor no")
    removed_raw = cell_text(get.get("removed")).lower()
    removed = removed_raw in YES and bool(removed_raw)
    if removed_raw and not removed and removed_raw not in NO:
        bad("removed", f"{removed_raw!r} is neither yes nor no")
    if removed and end is None:
        bad("removed", "a row that leaves the table needs an end date")
    return start_known, removed
