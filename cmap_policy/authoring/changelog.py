"""``changelog``: what each release added, ended and changed, as data and as Markdown.

The data is ``cmap_policy.changes`` (one report per release), which the site's feeds, the notice drafts and the
service show too; its names are kept here for the programs that import them from this module. This module
loads the working policy for the command and writes the report as Markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..changes import ACTIONS, change_report, change_text, modalities_text, release_changes, release_entry
from ..load.loader import load_policy

__all__ = ["ACTIONS", "change_report", "change_text", "changelog", "release_changes", "release_entry",
           "render_markdown"]
from ..model import Policy
from ..resources import working_policy_dir


def changelog(release: str | None = None, *, policy: Policy | str | Path | None = None) -> list[dict[str, Any]]:
    """The change report of the policy at ``policy`` (default: the policy/ folder of the git checkout the current
    directory is in, else the bundled one); see ``change_report``."""
    pol = policy if isinstance(policy, Policy) else load_policy(policy if policy is not None else working_policy_dir())
    return change_report(pol, release)


# --- Markdown, laid out as DSS's notices are (each release named for what it is) ----------------------------


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _source(c: dict[str, Any]) -> str:
    text = c["title"] + (f", {c['section']}" if c.get("section") else "")
    if c.get("secondary"):
        text += " (secondary source: check the official table)"
    return _esc(text)


def _plain_code(code: str) -> str:
    return code


def _code_link(code: str) -> str:
    """A code as a link to its page on the site, from a page at the site's root (the changelog page)."""
    return f"[{code}](codes/{code}.md)"


def _change_text(ch: dict[str, Any]) -> str:
    def shown(v: Any) -> str:
        if isinstance(v, list):
            return ", ".join(str(x) if not isinstance(x, dict) else x.get("guideline", "") for x in v) or "none"
        if isinstance(v, dict):
            return str(v.get("source", ""))
        return str(v) if v not in (None, "") else "none"

    if ch["field"] == "guideline":
        return "new guideline"  # the guideline column shows it
    if ch["field"] == "citation":
        return f"source: {shown(ch['before'])} → {shown(ch['after'])}"
    if ch["field"] == "limits":
        return f"limits: now {shown(ch['after'])}"
    return f"{ch['field']}: {shown(ch['before'])} → {shown(ch['after'])}"


# What a release is, by the kind of the sources it implements (the first kind found, in this order): a release
# is named for what it is, never as one of DSS's Important Messages unless it implements one.
RELEASE_KINDS = (
    ("official-table", "Telehealth table version"),
    ("bulletin", "Provider bulletin"),
    ("executive-order", "Executive order"),
    ("secondary-reading", "Secondary reading"),
)


def release_name(rep: dict[str, Any]) -> str:
    """A release's name as a reader sees it: what it is (bulletin, table version, secondary reading), its id or
    for a secondary reading what it read, and whether its dates are known; e.g. "Provider bulletin PB-2023-38"."""
    kinds = [s["kind"] for s in rep["implements"]]
    kind, what = next(((k, name) for k, name in RELEASE_KINDS if k in kinds), ("", "Release"))
    if kind == "secondary-reading":
        # its id is this data's own: the reading's title says what it read
        name = f"{what}: {next(s['title'] for s in rep['implements'] if s['kind'] == kind)}"
    else:
        name = f"{what} {rep['release']}"
        if all(s["secondary"] for s in rep["implements"]):
            name += ", as summarised by a secondary source"
    return name if rep["dates_known"] else name + " (dates not known)"


def release_line(rep: dict[str, Any]) -> str:
    """One line that says what a release did: its date and the rows it added, changed and ended."""
    counts = rep["counts"]
    did = ", ".join(f"{counts[a]} {a}" for a in ACTIONS if counts[a]) or "no row changed"
    when = f"effective {rep['effective']}" if rep["dates_known"] else f"not before {rep['published']}"
    return f"{when}: {did}"


def _release_markdown(rep: dict[str, Any], code_text: Callable[[str], str]) -> list[str]:
    rows = rep["changes"]
    if rep["dates_known"]:
        dates = [f"**Published:** {rep['published']}  ",
                 f"**Effective for dates of service on and after:** {rep['effective']}  "]
    else:
        dates = [f"**Published:** not known (no source gives the date; not before {rep['published']})  "]
    if rep["coverage"] == "complete":
        coverage = f"**Holds:** the whole table, for dates of service from {rep['covers_from']}  "
    else:
        coverage = "**Holds:** only the rows it names; what it does not name is as earlier releases had it  "
    out = [f"## {release_name(rep)}", "",
           *dates, coverage,
           "**Implements:** " + "; ".join(f"[{s['title']}]({s['url']}) ({s['id']})"
                                          + (" (secondary source)" if s["secondary"] else "")
                                          for s in rep["implements"]),
           "", rep["summary"], ""]
    if rep["corrections"]:
        out += ["### Start dates corrected", "",
                "Rows an earlier source saw in force without their start; this release gives the start.", "",
                "| Procedure code | First seen in force | Starts | Row added by |", "|---|---|---|---|"]
        out += [f"| {code_text(c['code'])} | {c['was']} | {c['now']} | {c['introduced_in']} |"
                for c in rep["corrections"]]
        out.append("")
    if not rows:
        out += ["This release does not add, end or change any row of the telehealth table.", ""]
        return out
    named = [r for r in rows if r["action"] == "added" and not r["start_known"]]
    added = [r for r in rows if r["action"] == "added" and r["start_known"]]
    changed = [r for r in rows if r["action"] == "changed"]
    ended = [r for r in rows if r["action"] == "ended"]
    def rows_table(title: str, intro: str, since: str, table_rows: list[dict[str, Any]]) -> None:
        nonlocal out
        if not table_rows:
            return
        out += [f"### {title}", "", intro, "",
                f"| Procedure code | Description | {since} | End date | Telehealth | Revenue center codes | "
                "Policy guideline | Source |", "|---|---|---|---|---|---|---|---|"]
        out += [f"| {code_text(r['code'])} | {_esc(r['description'])} | {r['effective']} | {r['end'] or ''} | "
                f"{modalities_text(r)} | {', '.join(r['revenue_center_codes'])} | {_esc(r['guideline'])} | "
                f"{_source(r['citation'])} |" for r in table_rows]
        out.append("")

    rows_table("Codes added to the telehealth table", "The following procedure codes are on the table for dates of "
               "service on and after the effective date shown.", "Effective date", added)
    rows_table("Rows named, their start not known", "The source shows these rows in force on the date given but not "
               "since when: before it, no public source covers them (a decision then is undetermined, not a "
               "denial).", "In force by", named)
    if changed:
        out += ["### Rows changed", "",
                "For dates of service on and after the effective date shown, these codes follow a new row of the "
                "table; the previous row ends the day before.", "",
                "| Procedure code | Description | Effective date | What changed | Telehealth | Policy guideline | "
                "Source |", "|---|---|---|---|---|---|---|"]
        out += [f"| {code_text(r['code'])} | {_esc(r['description'])} | {r['effective']} | "
                f"{_esc('; '.join(_change_text(c) for c in r['changes']) or 'dates and source only')} | "
                f"{modalities_text(r)} | {_esc(r['guideline'])} | {_source(r['citation'])} |" for r in changed]
        out.append("")
    if ended:
        removed = any(r["removed"] for r in ended)
        out += ["### Rows ended", "",
                "The following rows end on the date shown. After it, a code follows its next row where a source "
                "names one"
                + (", and is not on the table otherwise." if rep["coverage"] == "complete" else
                   "; where none does, this data cannot say (the official table decides).")
                + (" A code *removed from the table* is not payable via telehealth after the end date, until a "
                   "later row lists it again." if removed and rep["coverage"] != "complete" else ""), "",
                "| Procedure code | Description | Row effective | End date | Telehealth | Source |",
                "|---|---|---|---|---|---|"]
        out += [f"| {code_text(r['code'])} | {_esc(r['description'])} | {r['effective']} | {r['end']}"
                f"{', removed from the table' if r['removed'] else ''} | {modalities_text(r)} | "
                f"{_source(r['citation'])} |" for r in ended]
        out.append("")
    c = rep["counts"]
    out += [f"*{c['added']} added, {c['changed']} changed, {c['ended']} ended.*", ""]
    return out


def render_markdown(report: list[dict[str, Any]], *, link_codes: bool = False) -> str:
    """The change report as Markdown, newest release first, each laid out as DSS's notices are.

    ``link_codes`` makes each code a link to its page, for the site's changelog page.
    """
    out = ["# Changes to the CMAP telehealth table", "",
           "Each release of the table below lists the rows it added, changed and ended, newest first. "
           "The official CMAP Telehealth Table and the Important Messages on the CMAP Web site are authoritative.",
           ""]
    for rep in reversed(report):
        out += _release_markdown(rep, _code_link if link_codes else _plain_code)
    return "\n".join(out).rstrip("\n") + "\n"
