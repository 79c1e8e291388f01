"""Row-level changes: periods added, ended and changed; codes, program entries and releases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from ...changes import BOOKKEEPING
from ...model import Period, Policy, Program
from .sides import Side


def _field_changes(before: dict[str, Any], after: dict[str, Any], skip: Iterable[str] = ()) -> list[dict[str, Any]]:
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in after if k not in skip and before.get(k) != after.get(k)]


def periods_of(side: Side, code: str) -> tuple[Period, ...]:
    view = side.policy.views[side.release].get(code)
    return view.periods if view is not None else ()




def _replaced(periods: dict[dt.date, dict[str, Any]], day: dt.date) -> dict[str, Any] | None:
    """The period that ends the day before ``day``, if one does."""
    before = (day - dt.timedelta(days=1)).isoformat()
    return next((p for p in periods.values() if p["end"] == before), None)


def row_changes(base: Side, head: Side) -> list[dict[str, Any]]:
    """Periods (rows of the table) added, ended, changed or removed between ``base`` and ``head``."""
    rows: list[dict[str, Any]] = []
    codes = sorted(set(base.policy.views[base.release]) | set(head.policy.views[head.release]))
    for code in codes:
        old = {p.effective: p.as_dict() for p in periods_of(base, code)}
        new = {p.effective: p.as_dict() for p in periods_of(head, code)}
        for day in sorted(set(old) | set(new)):
            a, b = old.get(day), new.get(day)
            if a is None and b is not None:
                row = {"action": "added", **b, "changes": []}
                prev = _replaced(new, day)
                if prev is not None:
                    # a row that takes over the day after another ends: say what it changes
                    row["replaces"] = prev["period"]
                    row["changes"] = _field_changes(prev, b, skip=BOOKKEEPING)
                rows.append(row)
            elif b is None and a is not None:
                rows.append({"action": "removed", **a, "changes": []})
            elif a is not None and b is not None and a != b:
                changes = _field_changes(a, b, skip=("code", "period"))
                action = "ended" if a["end"] is None and b["end"] is not None else "changed"
                rows.append({"action": action, **b, "changes": changes})
    return rows


def _code_attrs(policy: Policy, code: str) -> dict[str, Any] | None:
    c = policy.codes.get(code)
    if c is None:
        return None
    return {"system": c.system, "description": c.description, "category": c.category, "note": c.note}


def code_changes(base: Side, head: Side) -> list[dict[str, Any]]:
    """Changes to a code's own fields (description, category...), for codes both sides list."""
    out = []
    for code in sorted(set(base.policy.codes) & set(head.policy.codes)):
        a, b = _code_attrs(base.policy, code), _code_attrs(head.policy, code)
        assert a is not None and b is not None
        changes = _field_changes(a, b)
        if changes:
            out.append({"code": code, "changes": changes})
    return out


def _program_items(program: Program) -> dict[str, dict[str, Any]]:
    return {
        "sources": dict(program.sources),
        "modalities": dict(program.modalities),
        "modifiers": dict(program.modifiers),
        "places_of_service": dict(program.places_of_service),
        "claim_types": dict(program.claim_types),
        "categories": dict(program.categories),
        "statutes": {s.id: s for s in program.statutes},
        "attestations": {a.id: a for a in program.attestations},
    }


def program_changes(base: Side, head: Side) -> list[dict[str, Any]]:
    """Entries of program.json added, removed or changed, by section and id."""
    out = []
    a, b = _program_items(base.policy.program), _program_items(head.policy.program)
    for section in a:
        old, new = a[section], b[section]
        for key in sorted(set(old) | set(new)):
            if key not in old:
                out.append({"section": section, "id": key, "action": "added"})
            elif key not in new:
                out.append({"section": section, "id": key, "action": "removed"})
            elif old[key] != new[key]:
                out.append({"section": section, "id": key, "action": "changed"})
    pa, pb = base.policy.program, head.policy.program
    for name in ("id", "name", "plans", "authority"):
        if getattr(pa, name) != getattr(pb, name):
            out.append({"section": "program", "id": name, "action": "changed"})
    return out


def release_changes(base: Side, head: Side) -> list[dict[str, Any]]:
    """Releases in head's history (up to its release) that base's history does not hold, or holds differently."""
    def history(side: Side) -> dict[str, Any]:
        rel = side.policy.release(side.release)
        return {r.id: r for r in side.policy.releases[: rel.ordinal + 1]}

    old, new = history(base), history(head)
    out = []
    for rid, rel in new.items():
        was = old.get(rid)
        if was is not None and (was.published, was.effective, was.summary, was.implements,
                                was.notice_paragraphs) == (rel.published, rel.effective, rel.summary, rel.implements,
                                                           rel.notice_paragraphs):
            continue
        out.append({"action": "added" if was is None else "changed", "id": rid,
                    "published": rel.published.isoformat(), "effective": rel.effective.isoformat(),
                    "implements": [s.id for s in rel.implements], "summary": rel.summary})
    return out


