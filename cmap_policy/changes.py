"""The changes of each release, as data: what the changelog, the feeds, the notices and the service all show.

One report per release, like the change files that ship with the NCCI edits: one record per row of the table
that the release touched, with its dates and citation. A row is a period of a code. A release *adds* the
periods it introduces and *ends* the periods it gives an end date; when it ends a period and starts a new one
for the same code on the next day (what ``cmap-policy code set`` writes), the two are reported as one
*changed* row that lists the fields that differ.

It sits below the authoring tools, the site and the service (it reads only the model), so that each of them
shows the same report rather than a restatement of it: ``authoring.changelog`` (Markdown), ``site.feeds``
(Atom), ``authoring.notice`` (the Important Message draft) and the service's ``/v1/releases/{id}/changes``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .model import Code, Period, Policy, Release

# Fields that say when and by which release, not what a row says: not "changes" when one row replaces another.
# What a row that takes over from another does not change by itself: its own dates, whether its start is known
# (the new row starts on a date its source gives) and how it ends (the old row ends the day before).
BOOKKEEPING = ("code", "period", "effective", "start_known", "end", "introduced_in", "ended_in", "removed",
               "dates_note")

ACTIONS = ("added", "changed", "ended")


def _row(action: str, code: Code, p: Period) -> dict[str, Any]:
    return {"action": action, "code": code.code, "system": code.system, "description": code.description,
            "category": code.category, **p.as_dict()}


def _release_dict(rel: Release) -> dict[str, Any]:
    return {
        "release": rel.id,
        "published": rel.published.isoformat(),
        "effective": rel.effective.isoformat(),
        "dates_known": rel.dates_known,
        "coverage": rel.coverage,
        "covers_from": rel.covers_from.isoformat() if rel.covers_from else None,
        "summary": rel.summary,
        "implements": [{"id": s.id, "title": s.title, "url": s.url, "kind": s.kind, "secondary": s.secondary}
                       for s in rel.implements],
        "corrections": [{"code": c.code, "was": c.was.isoformat(), "now": c.now.isoformat(),
                         "introduced_in": c.introduced_in} for c in rel.corrections],
    }


def release_changes(policy: Policy, rel: Release) -> list[dict[str, Any]]:
    """The rows ``rel`` added, ended or changed, by code."""
    rows: list[dict[str, Any]] = []
    for code in policy.codes.values():
        added = [p for p in code.periods if p.introduced_in == rel.id]
        ended = [p for p in code.periods if p.ended_in == rel.id]
        replaced: set[int] = set()
        for old in ended:
            assert old.end is not None  # ended_in goes with end (schema)
            nxt = old.end + dt.timedelta(days=1)
            new = next((p for p in added if p.effective == nxt), None)
            if new is None:
                rows.append(_row("ended", code, old))
                continue
            replaced.add(id(new))
            before, after = old.as_dict(), new.as_dict()
            row = _row("changed", code, new)
            row["previous"] = before
            row["changes"] = [{"field": k, "before": before[k], "after": after[k]}
                              for k in after if k not in BOOKKEEPING and before[k] != after[k]]
            rows.append(row)
        rows.extend(_row("added", code, p) for p in added if id(p) not in replaced)
    rows.sort(key=lambda r: (ACTIONS.index(r["action"]), r["code"], r["effective"]))
    return rows


def change_report(policy: Policy, release: str | None = None) -> list[dict[str, Any]]:
    """One report per release, oldest first (or only ``release``): the release and the rows it touched.

    Each report is ``{"release", "published", "effective", "summary", "implements", "counts", "changes"}``;
    each change is a row with ``action`` (added, changed, ended), the code, the period's fields and its
    ``citation``; a changed row also has ``previous`` (the period it replaces) and ``changes``
    (``field``, ``before``, ``after``).
    """
    releases = policy.releases if release is None else (policy.release(release),)
    out = []
    for rel in releases:
        rows = release_changes(policy, rel)
        report = _release_dict(rel)
        report["counts"] = {a: sum(1 for r in rows if r["action"] == a) for a in ACTIONS}
        report["changes"] = rows
        out.append(report)
    return out


def modalities_text(row: dict[str, Any]) -> str:
    if row["status"] != "permitted":
        return "not permitted via telehealth"
    silent = f" (sources silent on {', '.join(row['undetermined_modalities'])})" \
        if row.get("undetermined_modalities") else ""
    return " or ".join(row["modalities"]) + silent


# --- one release's changes in a biller's words: the feeds' entries and the service's /v1/releases/{id}/changes ---


def change_text(row: dict[str, Any]) -> str:
    """One change (a row of ``release_changes``) in a sentence: what, in which modality, from when to when."""
    span = (f"from {row['effective']}" if row["start_known"] else f"in force by {row['effective']}") \
        + (f" through {row['end']}" if row.get("end") else "")
    if row["action"] == "ended":
        return f"row ends on {row['end']}" + (", and the code leaves the table" if row["removed"] else "") \
            + f" (it was {modalities_text(row)}, from {row['effective']})"
    what = "added" if row["action"] == "added" else \
        "changed (" + (", ".join(c["field"].replace("_", " ") for c in row["changes"]) or "dates and source") + ")"
    return f"{what}: {modalities_text(row)}, {span}"


def release_entry(rep: dict[str, Any], ordinal: int = 0) -> dict[str, Any]:
    """A release's report (``change_report``) as the feeds and the service show it: a title, the summary, its
    sources, and each change with its dates, modality and a sentence."""
    c = rep["counts"]
    done = [f"{c[a]} {a}" for a in ACTIONS if c[a]]
    return {
        "release": rep["release"], "ordinal": ordinal,
        "title": f"Release {rep['release']}: " + (", ".join(done) if done else "no row of the table changed"),
        "published": rep["published"], "effective": rep["effective"], "dates_known": rep["dates_known"],
        "summary": rep["summary"],
        "sources": [{"id": s["id"], "title": s["title"], "url": s["url"], "secondary": s["secondary"]}
                    for s in rep["implements"]],
        "changes": [{"code": r["code"], "description": r["description"], "action": r["action"],
                     "effective": r["effective"], "end": r["end"], "status": r["status"],
                     "modalities": list(r["modalities"]), "removed": r["removed"], "text": change_text(r)}
                    for r in rep["changes"]],
    }
