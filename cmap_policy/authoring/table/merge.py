"""Merging a table's rows for one code into that code's file: new periods, ended ones, unchanged ones."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...load.canonical import normalize
from .columns import CODE_KEYS, PERIOD_KEYS, Change, RowProblem, ordered
from .read import TableRow


def to_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _same_content(p: Mapping[str, Any], row: TableRow) -> bool:
    return p["guideline"] == row.guideline and _same_decision(p, row)


def _same_decision(p: Mapping[str, Any], row: TableRow) -> bool:
    """The period and the row decide every line alike (their guideline text aside)."""
    if (p["status"], tuple(sorted(p["modalities"])), tuple(sorted(p.get("revenue_center_codes", []))),
            tuple(sorted(p.get("undetermined_modalities", [])))) != \
            (row.status, row.modalities, row.rccs, row.undetermined_modalities):
        return False
    return row.limits is None or canonical_text(p.get("limits", [])) == canonical_text(row.limits)


def canonical_text(value: Any) -> str:
    """Equal for documents that mean the same (key order and set-like list order aside)."""
    return json.dumps(normalize(value), sort_keys=True)


@dataclass
class Target:
    release: str
    effective: dt.date
    source: str  # cited by rows without a citation column
    cpt_descriptions: bool
    category: str
    corrects_starts: bool = False  # the official table dates rows whose start no earlier source knew
    # A whole table (coverage complete) says by leaving a row out that the row ended; a partial source's
    # silence says nothing, so the rows it does not name are kept as they are.
    complete: bool = True


def describe_period(p: Mapping[str, Any]) -> str:
    span = f"from {p['effective']}" + (f" to {p['end']}" if p.get("end") else "")
    if p["status"] == "not-permitted":
        return f"{span}, not permitted"
    return f"{span}, {' and '.join(p['modalities'])}"


def _new_period(row: TableRow, start: dt.date, end: dt.date | None, t: Target, own: Sequence[dict[str, Any]],
                note: str = "") -> dict[str, Any]:
    # A period this release added by an earlier import of the table keeps what the table cannot say
    # (limits, citation, notes) when the table still says the same: re-importing changes nothing.
    reuse = next((p for p in own if p["effective"] == start.isoformat() and _same_content(p, row)), None)
    p: dict[str, Any] = {"effective": start.isoformat()}
    if end is not None:
        p["end"] = end.isoformat()
    p["status"] = row.status
    p["modalities"] = list(row.modalities)
    if row.undetermined_modalities:
        p["undetermined_modalities"] = list(row.undetermined_modalities)
    if not row.start_known:
        p["start_known"] = False
    if row.removed and end is not None:
        p["removed"] = True
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
    return ordered(p, PERIOD_KEYS)


def _placeholder(code: str) -> str:
    return f"CPT {code}: write a short description in your own words (CPT descriptors belong to the AMA)"


@dataclass(frozen=True)
class Correction:
    """A row whose start a source did not know, dated by the official table: ``was`` becomes ``now``."""

    code: str
    was: str
    now: str
    introduced_in: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "was": self.was, "now": self.now, "introduced_in": self.introduced_in}


def _correct_starts(base: list[dict[str, Any]], rows: Sequence[TableRow], t: Target) -> list[Correction]:
    """Give each earlier row whose start was not known (start_known false) the start the table gives it.

    The table is the authority on dates: where it has a row in force on the date the earlier source first
    saw the row, deciding the same (status, modalities, revenue center codes, limits), the table's start
    is the row's real start. The row takes the table's guideline and cites the table (the earlier source
    could not quote the guideline); it keeps its release of introduction; the correction is recorded in the
    importing release. A row the table decides differently is left for the author (the overlap is reported).
    """
    out = []
    for b in base:
        if b.get("start_known", True):
            continue
        seen = to_date(b["effective"])
        row = next((r for r in sorted(rows, key=lambda r: r.effective) if r.start_known and r.effective <= seen
                    and (r.end is None or r.end >= seen) and _same_decision(b, r)), None)
        if row is None:
            continue
        out.append(Correction(row.code, b["effective"], row.effective.isoformat(), b["introduced_in"]))
        b["effective"] = row.effective.isoformat()
        b.pop("start_known")
        b["guideline"] = row.guideline
        b["citation"] = copy.deepcopy(row.citation or {"source": t.source, "section": f"row {row.code}"})
        b["dates_note"] = (f"First read (release {b['introduced_in']}) in force on {seen}, its start not known; "
                           f"release {t.release}, the official table, dates it from {row.effective}.")
    return out


def merge_code(doc: dict[str, Any] | None, code: str, rows: Sequence[TableRow], t: Target
               ) -> tuple[dict[str, Any] | None, list[RowProblem], list[RowProblem], list[Correction]]:
    """The code's document after the release's table (None: no periods left), with errors, warnings and the
    starts it corrected.

    The periods earlier releases published are history: the release may only give
    an open one an end date, correct a start no source knew, and add new periods.
    Periods the release itself added (by an earlier import into the same release)
    are redone from the table.
    """
    original = doc["periods"] if doc else []
    m = _Merge(code, t, [p for p in original if p["introduced_in"] == t.release], _history(original, t.release))
    corrections = _correct_starts(m.base, rows, t) if t.corrects_starts else []
    m.base.sort(key=lambda p: p["effective"])
    m.at = {p["effective"]: p for p in m.base}
    for row in sorted(rows, key=lambda r: r.effective):
        m.row(row)
    m.end_missing_rows()
    periods = sorted([*m.base, *(p for _, p in m.new)], key=lambda p: p["effective"])
    m.check_overlaps(periods)
    if not periods:
        return None, m.errors, m.warnings, corrections
    if doc is not None:
        out = copy.deepcopy(doc)
        out["periods"] = [ordered(p, PERIOD_KEYS) for p in periods]
        return ordered(out, CODE_KEYS), m.errors, m.warnings, corrections
    return _new_document(code, rows, periods, t), m.errors, m.warnings, corrections


def _history(original: Sequence[dict[str, Any]], release: str) -> list[dict[str, Any]]:
    """Copies of the periods earlier releases published, as they were before ``release`` ended any of them."""
    base: list[dict[str, Any]] = []
    for p in original:
        if p["introduced_in"] == release:
            continue
        q = copy.deepcopy(p)
        if q.get("ended_in") == release:
            q.pop("end", None)
            q.pop("ended_in", None)
            q.pop("removed", None)
        base.append(q)
    return base


_ONE_DAY = dt.timedelta(days=1)


@dataclass
class _Merge:
    """One code's merge in progress: the published periods (``base``, ended in place), the new ones, the problems."""

    code: str
    t: Target
    own: list[dict[str, Any]]  # the periods this release added by an earlier import: redone from the table
    base: list[dict[str, Any]]
    at: dict[str, dict[str, Any]] = field(default_factory=dict)  # base by effective date
    new: list[tuple[TableRow | None, dict[str, Any]]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # effective dates of base periods the table has a row for
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)

    def cut(self, b: dict[str, Any], day: dt.date, removed: bool = False) -> None:
        b["end"], b["ended_in"] = day.isoformat(), self.t.release
        if removed:
            b["removed"] = True

    def row(self, row: TableRow) -> None:
        """One row of the table against the published period that starts the same day, if any."""
        code, t = self.code, self.t
        b = self.at.get(row.effective.isoformat())
        if b is None:
            self.new.append((row, _new_period(row, row.effective, row.end, t, self.own)))
            return
        self.used.add(b["effective"])
        b_end = to_date(b["end"]) if "end" in b else None
        since = f"{code}'s row from {b['effective']} (release {b['introduced_in']})"
        if _same_content(b, row):
            self.same_row(row, b, b_end, since)
            return
        start = max(row.effective, t.effective)
        if b_end is not None and b_end < start:
            self.warnings.append(RowProblem(row.number, None, f"differs from {since}, which ended {b_end}, before "
                                            "this release takes effect: the published history is kept", code))
            return
        if start <= to_date(b["effective"]) or b_end is not None:
            self.errors.append(RowProblem(row.number, None, f"changes {since}, which "
                                          + ("starts on or after the release takes effect" if b_end is None else
                                             f"release {b.get('ended_in')} set to end {b_end}")
                                          + f"; the release cannot end it the day before {start}: edit "
                                          f"codes/{code}.json by hand, or import into the release that added the row",
                                          code))
            return
        self.cut(b, start - _ONE_DAY)
        note = "" if start == row.effective else (
            f"The table dates the row from {row.effective}; it changed in release {t.release}, so this period starts "
            f"on the release's effective date and the earlier one ends the day before.")
        self.new.append((row, _new_period(row, start, row.end, t, self.own, note)))

    def same_row(self, row: TableRow, b: dict[str, Any], b_end: dt.date | None, since: str) -> None:
        """A row that says what the published period says: only its end may differ."""
        if row.end == b_end:
            return
        if b_end is None:
            assert row.end is not None
            self.cut(b, row.end, row.removed)
        elif row.end is None or row.end > b_end:
            note = (f"Continues the row from {b['effective']}, which release {b['ended_in']} ended on {b_end}; "
                    f"the table of release {self.t.release} extends it.")
            self.new.append((row, _new_period(row, b_end + _ONE_DAY, row.end, self.t, self.own, note)))
        else:
            self.errors.append(RowProblem(row.number, None, f"ends {row.end}, but {since} already ends {b_end} "
                                          f"(release {b['ended_in']}); a later release cannot move an end date "
                                          f"earlier: edit codes/{self.code}.json by hand", self.code))

    def end_missing_rows(self) -> None:
        """A published period the whole table no longer has ends the day before the release (or the next row)."""
        code, e = self.code, self.t.effective
        starts = sorted(to_date(p["effective"]) for _, p in self.new)
        for b in self.base:
            if b["effective"] in self.used:
                continue
            b_end = to_date(b["end"]) if "end" in b else None
            if b_end is not None and b_end < e:
                continue  # history the table no longer shows
            if not self.t.complete:
                continue  # a partial source does not say the rows it leaves out ended
            b_eff = to_date(b["effective"])
            nxt = next((s for s in starts if s > b_eff), None)
            day = e - _ONE_DAY if nxt is None else min(e - _ONE_DAY, nxt - _ONE_DAY)
            if day < b_eff or b_end is not None:
                why = (f"starts on or after the release takes effect ({e})" if day < b_eff else
                       f"release {b.get('ended_in')} set it to end {b_end}, after this release takes effect")
                self.errors.append(RowProblem(None, None, f"{code}'s row from {b['effective']} (release "
                                              f"{b['introduced_in']}) is not in the table, but {why}, so the release "
                                              f"cannot end it the day before: edit codes/{code}.json by hand", code))
                continue
            self.cut(b, day, removed=nxt is None)  # the whole table no longer lists the code: it left the table

    def check_overlaps(self, periods: Sequence[dict[str, Any]]) -> None:
        code = self.code
        for a, b in itertools.pairwise(periods):
            if "end" not in a or to_date(a["end"]) >= to_date(b["effective"]):
                culprit = next((r for r, p in self.new if p is b or p is a), None)
                self.errors.append(RowProblem(culprit.number if culprit else None, None,
                                              f"{code}: the rows from {a['effective']} ({describe_period(a)}) and "
                                              f"from {b['effective']} would overlap; edit codes/{code}.json by hand",
                                              code))


def _new_document(code: str, rows: Sequence[TableRow], periods: Sequence[dict[str, Any]],
                  t: Target) -> dict[str, Any]:
    """The document of a code the policy did not have, from its first row."""
    first = sorted(rows, key=lambda r: r.effective)[0]
    system = first.system or ("CPT" if code[0].isdigit() else "HCPCS")
    description = first.description.strip()
    if system == "CPT" and not t.cpt_descriptions:
        description = _placeholder(code)
    if len(description) < 3:
        description = f"{code}: no description in the table; write a short one"
    return {"$schema": "../../schema/code.schema.json", "code": code, "system": system,
            "description": description[:200], "category": first.category or t.category,
            "periods": [ordered(p, PERIOD_KEYS) for p in periods]}


def period_changes(code: str, before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]],
                   corrections: Sequence[Correction] = ()) -> list[Change]:
    old = {p["effective"]: p for p in before}
    new = {p["effective"]: p for p in after}
    out = []
    for c in corrections:
        was = old.pop(c.was, None)
        if was is not None:  # compare the rest of the row as corrected: only what else changed is reported
            fixed = {k: v for k, v in was.items() if k not in ("start_known", "dates_note")}
            fixed["effective"] = c.now
            if "dates_note" in new.get(c.now, {}):
                fixed["dates_note"] = new[c.now]["dates_note"]
            old[c.now] = fixed
        out.append(Change(code, "corrected-start", f"the row first seen in force on {c.was} (release "
                                                   f"{c.introduced_in}, its start not known) starts {c.now}"))
    for eff in sorted(set(old) | set(new)):
        a, b = old.get(eff), new.get(eff)
        if a is None and b is not None:
            out.append(Change(code, "new-period", f"new row {describe_period(b)}"))
        elif b is None and a is not None:
            out.append(Change(code, "removed-period", f"removed the row {describe_period(a)}, which release "
                                                      f"{a['introduced_in']} had added and the table no longer has"))
        elif a is not None and b is not None and canonical_text(a) != canonical_text(b):
            ending = ("end", "ended_in", "removed")
            if {k: v for k, v in a.items() if k not in ending} == {k: v for k, v in b.items() if k not in ending}:
                if b.get("end"):
                    gone = ", and the code leaves the table" if b.get("removed") else ""
                    out.append(Change(code, "ended", f"the row from {eff} now ends {b['end']}{gone}"))
                else:
                    out.append(Change(code, "end-changed", f"the row from {eff} no longer has an end date"))
            else:
                out.append(Change(code, "changed", f"the row from {eff} changed: {describe_period(b)}"))
    return out


