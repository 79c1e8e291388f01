"""A diff as Markdown, for a pull-request comment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...explain import describe_line
from ...model import ClaimLine
from .decisions import NO_DECISION_CHANGES

if TYPE_CHECKING:  # the result renders itself with this module; the type is for the checker only
    from .result import PolicyDiff
    from .sides import Side

MAX_ROWS_PER_CODE = 30
# A pull-request comment holds at most 65,536 characters; leave room for the workflow's own text.
MAX_MARKDOWN_CHARS = 60_000


def _range(start: str | None, end: str | None) -> str:
    if start is None and end is None:
        return "every date"
    if start is None:
        return f"up to {end}"
    if end is None:
        return f"{start} onwards"
    return start if start == end else f"{start} to {end}"


def _decision_text(sig: dict[str, Any], other: dict[str, Any]) -> str:
    outcome = sig["outcome"].replace("_", " ")
    reasons = [r for r in sig["reasons"] if r not in ("ON_TELEHEALTH_TABLE", "NOT_A_TELEHEALTH_LINE")]
    text = f"**{outcome}**" + (f": {', '.join(reasons)}" if reasons else "")
    if sig["to_confirm"]:
        text += f" (confirm {', '.join(sig['to_confirm'])})"
    if sig["attestations"] != other["attestations"]:
        text += f"; attestations {', '.join(sig['attestations']) or 'none'}"
    return text


def _example_text(rec: dict[str, Any]) -> str:
    rec = dict(rec)
    line = ClaimLine(rec.pop("code"), dt.date.fromisoformat(rec.pop("date")),
                     modifiers=tuple(rec.pop("modifiers", ())), **rec)
    return describe_line(line)


def _period_span(row: dict[str, Any]) -> str:
    return f"{row['effective']} to {row['end']}" if row["end"] else f"from {row['effective']}"


def _cite(c: dict[str, Any]) -> str:
    text = str(c["source"]) + (f", {c['section']}" if c.get("section") else "")
    return text + (" (secondary)" if c.get("secondary") else "")


def _row_text(row: dict[str, Any]) -> str:
    if row["action"] == "added":
        what = ("payable by " + " or ".join(row["modalities"])) if row["status"] == "permitted" \
            else "not permitted via telehealth"
        if row["revenue_center_codes"]:
            what += f"; RCC {', '.join(row['revenue_center_codes'])}"
        if row.get("replaces"):
            changed = _change_list(row["changes"]) or "same content"
            what += f"; replaces {row['replaces']} ({changed})"
        return what
    if row["action"] == "removed":
        return "row removed"
    return _change_list(row["changes"])


def _change_list(changes: list[dict[str, Any]]) -> str:
    parts = []
    for ch in changes:
        before = "none" if ch["before"] in (None, [], "") else ch["before"]
        after = "none" if ch["after"] in (None, [], "") else ch["after"]
        if ch["field"] == "guideline":
            text = str(after) if len(str(after)) <= 200 else str(after)[:199] + "…"
            parts.append(f"guideline now: “{text}”")
        elif ch["field"] in ("dates_note", "limits", "citation"):
            parts.append(f"{ch['field']} changed")
        else:
            parts.append(f"{ch['field']}: {_plain(before)} → {_plain(after)}")
    return "; ".join(parts)


def _plain(value: Any) -> str:
    if isinstance(value, bool):  # removed, start_known: said as words, as the other fields are
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _side(side: Side) -> str:
    release = "" if side.label == f"release {side.release}" else f"release {side.release}, "
    return f"{side.label} ({release}view hash `{side.view_hash[:12]}`, policy hash `{side.policy.hash[:12]}`)"


def render_markdown(d: PolicyDiff) -> str:
    """The diff as Markdown, for a pull-request comment."""
    out = [f"## Policy diff: `{d.base.label}` → `{d.head.label}`", "",
           f"Base: {_side(d.base)}  ", f"Head: {_side(d.head)}", ""]
    if d.base.policy.hash == d.head.policy.hash and d.base.release != d.head.release:
        out += ["Both sides are releases of one tree, so they share its policy hash; the view hash is that of "
                "what each release publishes (its rows, and the releases up to it).", ""]
    if d.base.policy.hash == d.head.policy.hash and d.base.release == d.head.release:
        out.append("The two policies have the same content hash: nothing changed but layout.")
        out.append("")
    if d.releases:
        out += ["### Releases", ""]
        for r in d.releases:
            out.append(f"- {r['action']} **{r['id']}** (published {r['published']}, effective {r['effective']}; "
                       f"implements {', '.join(r['implements'])}): {_esc(r['summary'])}")
        out.append("")
    if d.program:
        out += ["### Program (program.json)", ""]
        out += [f"- {p['section']}: {p['id']} {p['action']}" for p in d.program]
        out.append("")
    if d.codes:
        out += ["### Codes", ""]
        for c in d.codes:
            out.append(f"- {c['code']}: " + "; ".join(f"{ch['field']} changed" for ch in c["changes"]))
        out.append("")
    out += ["### Rows", ""]
    if d.rows:
        out += ["| Change | Code | Period | What | Citation | Release |", "|---|---|---|---|---|---|"]
        for row in d.rows:
            rel = row["ended_in"] if row["action"] == "ended" else row["introduced_in"]
            out.append(f"| {row['action']} | {row['code']} | {_period_span(row)} | {_esc(_row_text(row))} | "
                       f"{_esc(_cite(row['citation']))} | {rel} |")
    else:
        out.append("No rows added, ended or changed.")
    out += ["", "### Decisions", ""]
    if not d.decisions:
        out.append(f"**{NO_DECISION_CHANGES.capitalize()}.** Every claim line is decided as before.")
        return "\n".join(out) + "\n"
    head = "\n".join(out)
    for detail in (2, 1, 0):
        text = head + "\n" + "\n".join(_decision_sections(d, detail)) + "\n"
        if len(text) <= MAX_MARKDOWN_CHARS:
            return text
    return text


def _join(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values)))


@dataclass
class _Row:
    """One row of a Markdown table: a date range, a before and an after as shown, the classes they apply to."""

    start: str | None
    end: str | None
    before: dict[str, Any]
    after: dict[str, Any]
    claim_types: set[str]
    rccs: set[str]
    modalities: set[str]
    example: dict[str, Any]

    @property
    def span(self) -> str:
        return _range(self.start, self.end)

    @property
    def shown(self) -> tuple[str, str]:
        return _decision_text(self.before, self.after), _decision_text(self.after, self.before)


def _adjacent(end: str | None, start: str | None) -> bool:
    return end is not None and start is not None and \
        dt.date.fromisoformat(end) + dt.timedelta(days=1) == dt.date.fromisoformat(start)


def _table_rows(entries: list[dict[str, Any]]) -> list[_Row]:
    """The changes as a reader sees them: one row per date range and before and after as shown, whatever the
    claim type, RCC and modality; then adjacent ranges with the same row joined (the JSON keeps them apart
    when what differs is not shown, such as the attestations both sides give)."""
    by_span: dict[tuple[str | None, str | None, tuple[str, str]], _Row] = {}
    for e in entries:
        for c in e["changes"]:
            row = _Row(e["from"], e["to"], c["before"], c["after"], set(), set(), set(), c["example"])
            row = by_span.setdefault((e["from"], e["to"], row.shown), row)
            row.claim_types.add(e["claim_type"])
            row.rccs.add(e["rcc"])
            row.modalities.add(e["modality"])
    groups: dict[tuple[Any, ...], list[_Row]] = {}
    for row in by_span.values():
        key = (row.shown, tuple(sorted(row.claim_types)), tuple(sorted(row.rccs)), tuple(sorted(row.modalities)))
        groups.setdefault(key, []).append(row)
    out: list[_Row] = []
    for rows in groups.values():
        rows.sort(key=lambda r: r.start or "")
        joined = [rows[0]]
        for row in rows[1:]:
            if _adjacent(joined[-1].end, row.start):
                joined[-1] = _Row(joined[-1].start, row.end, joined[-1].before, joined[-1].after,
                                  joined[-1].claim_types, joined[-1].rccs, joined[-1].modalities, joined[-1].example)
            else:
                joined.append(row)
        out.extend(joined)
    out.sort(key=lambda r: (r.start or "", r.end or "9999-12-31", sorted(r.claim_types), sorted(r.modalities),
                           r.shown))
    return out


def _decision_sections(d: PolicyDiff, detail: int) -> list[str]:
    """Per code: outcome flips in a table (detail >= 1), other reason changes folded away (detail 2)."""
    out = [f"{d.summary().capitalize()}. Checked exhaustively, not sampled: each row is a kind of claim line "
           "whose decision changes on those dates, with one example line that flips.", ""]
    by_code: dict[str, list[dict[str, Any]]] = {}
    for e in d.decisions:
        by_code.setdefault(e["code"], []).append(e)
    header = ["| Dates | Claim type | RCC | Modality | Before | After | Example line |",
              "|---|---|---|---|---|---|---|"]
    for code, entries in by_code.items():
        title = "Codes on neither table" if code == "*" else code
        rows = _table_rows(entries)
        flips = [r for r in rows if r.before["outcome"] != r.after["outcome"]]
        others = [r for r in rows if r.before["outcome"] == r.after["outcome"]]
        # in date order: by start, and ranges open at the start by their end
        ranges = "; ".join(dict.fromkeys(r.span for r in sorted(rows, key=lambda r: (r.start or "",
                                                                                    r.end or "9999-12-31"))))
        out.append(f"#### {title}")
        out.append("")
        out.append(f"Dates: {ranges}. {len(flips)} kind(s) of line change outcome; {len(others)} keep their "
                   "outcome with other reasons.")
        out.append("")
        if detail == 0:
            continue

        def table(items: list[_Row]) -> list[str]:
            lines = list(header)
            for r in items[:MAX_ROWS_PER_CODE]:
                before, after = r.shown
                lines.append(f"| {r.span} | {_join(r.claim_types)} | {_join(r.rccs)} | {_join(r.modalities)} | "
                             f"{before} | {after} | {_esc(_example_text(r.example))} |")
            if len(items) > MAX_ROWS_PER_CODE:
                lines += ["", f"… and {len(items) - MAX_ROWS_PER_CODE} more: `cmap-policy diff --format json` "
                          "lists them all."]
            return lines

        if flips:
            out += [*table(flips), ""]
        if others and detail == 2:
            out += [f"<details><summary>{len(others)} kind(s) of line keep their outcome with other "
                    "reasons</summary>", "", *table(others), "", "</details>", ""]
    return out
