"""The telehealth table as the site shows it: rows, their HTML with filters, and the downloads.

A row is one period of a code as published in the site's release. The HTML carries each row's facts as
``data-`` attributes, so that the filter script, the browser tests and the property test read the same
values the reader sees.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ..authoring.table import export_table
from ..interpreter import spans
from ..lines import CODE_RE
from ..model import Code, Period, Policy, Source


@dataclass(frozen=True, slots=True)
class Row:
    code: Code
    period: Period

    @property
    def status(self) -> str:
        return "permitted" if self.period.permitted else "not-permitted"

    def state(self, today: dt.date) -> str:
        """in-force, ended or later (starts after today)."""
        if self.period.covers(today):
            return "in-force"
        return "later" if self.period.effective > today else "ended"


def rows_in_force(policy: Policy, today: dt.date, release: str | None = None) -> list[Row]:
    """The rows of the table on ``today``: at most one per code, ordered by code."""
    view = policy.views[policy.release(release).id]
    return [Row(cv.code, p) for cv in view.values() for p in cv.periods if p.covers(today)]


def all_rows(policy: Policy, release: str | None = None) -> list[Row]:
    """Every row ever published up to the release, ended ones included, by code then date."""
    view = policy.views[policy.release(release).id]
    return [Row(cv.code, p) for cv in view.values() for p in cv.periods]


def source_kind(source: Source) -> tuple[str, str]:
    """(css key, label) for where a row comes from: the official table, a primary or a secondary source."""
    if source.kind == "official-table":
        return "official", "Official table"
    if source.secondary:
        return "secondary", "Secondary source"
    return "primary", "Primary source (not the table)"


MODALITY_LABELS = {"audio-video": "Audio-video", "audio-only": "Audio-only (phone)", "asynchronous": "Asynchronous"}


def _badges(period: Period) -> str:
    if not period.permitted:
        return '<span class="cmap-badge cmap-badge-np">Not permitted</span>'
    out = [f'<span class="cmap-badge cmap-badge-{escape(m)}">{escape(MODALITY_LABELS.get(m, m))}</span>'
           for m in sorted(period.modalities, key=lambda m: (m != "audio-video", m))]
    out += [f'<span class="cmap-badge cmap-badge-undetermined" title="The sources neither allow nor rule it out: '
            f'a line by it is undetermined">{escape(MODALITY_LABELS.get(m, m))}: undetermined</span>'
            for m in period.undetermined_modalities]
    return " ".join(out)


def page_url(src: str, directory_urls: bool) -> str:
    """The URL MkDocs gives the page ``src`` (a path under docs/), relative to the site root."""
    if not src.endswith(".md"):
        return src
    stem = src.removesuffix(".md")
    if not directory_urls:
        return stem + ".html"
    if stem == "index" or stem.endswith("/index"):
        return stem.removesuffix("index")
    return stem + "/"


def href(from_src: str, to_src: str, directory_urls: bool, anchor: str = "") -> str:
    """A relative link from page ``from_src`` to ``to_src`` for raw HTML, which MkDocs does not rewrite."""
    here = page_url(from_src, directory_urls)
    there = page_url(to_src, directory_urls)
    base = posixpath.dirname(here) if not here.endswith("/") else here.rstrip("/")
    rel = posixpath.relpath(there or ".", base or ".")
    if there.endswith("/") or there == "":
        rel = rel.rstrip("/") + "/" if rel != "." else "./"
    return rel + (f"#{anchor}" if anchor else "")


@dataclass(frozen=True, slots=True)
class TableOptions:
    table_id: str
    page: str  # the page the table is on, for relative links
    unit: str  # what the count counts: "codes" or "rows"
    history: bool
    directory_urls: bool = False


def _filters(policy: Policy, rows: Sequence[Row], opts: TableOptions, today: dt.date) -> str:
    cats = sorted({r.code.category for r in rows})
    mods = sorted({m for r in rows for m in r.period.modalities}, key=lambda m: (m != "audio-video", m))
    mod_opts = "".join(f'<option value="{escape(m)}">{escape(MODALITY_LABELS.get(m, m))}</option>' for m in mods)
    if any(not r.period.permitted for r in rows):
        mod_opts += '<option value="not-permitted">Not permitted via telehealth</option>'
    cat_opts = "".join(f'<option value="{escape(c)}">{escape(policy.program.categories[c].name)}</option>'
                       for c in cats)
    tid = opts.table_id
    state = ""
    if opts.history:
        state = (f'<div class="cmap-field"><label for="{tid}-state">Rows</label>'
                 f'<select data-cmap-filter="state" id="{tid}-state">'
                 '<option value="">All rows</option><option value="in-force">In force on the date</option>'
                 '<option value="ended">Ended before the date</option><option value="later">Starting after the date'
                 "</option></select></div>")
    in_force = sum(1 for r in rows if r.period.covers(today))
    shown = len(rows) if opts.history else in_force
    return (
        f'<form class="cmap-filters" id="{tid}-form" data-cmap-for="{tid}" role="search" aria-label="Filter the '
        f'table" hidden onsubmit="return false">'
        f'<div class="cmap-field cmap-field-date"><label for="{tid}-date">Date of service</label>'
        f'<input type="date" id="{tid}-date" data-cmap-date value="{today}"></div>'
        f'<div class="cmap-field cmap-field-q"><label for="{tid}-q">Find a code</label>'
        f'<input type="search" id="{tid}-q" data-cmap-text placeholder="Code or description" '
        f'autocomplete="off" spellcheck="false"></div>'
        f'<div class="cmap-field"><label for="{tid}-modality">Modality</label>'
        f'<select data-cmap-filter="modalities" id="{tid}-modality"><option value="">Any</option>{mod_opts}</select>'
        f'</div><div class="cmap-field"><label for="{tid}-category">Category</label>'
        f'<select data-cmap-filter="category" id="{tid}-category"><option value="">Any</option>{cat_opts}</select>'
        f'</div>{state}'
        f'</form>'
        f'<div class="cmap-countbar">'
        f'<p class="cmap-count" id="{tid}-count" role="status" aria-live="polite"><strong class="cmap-count-n">'
        f'{shown}</strong> of <span class="cmap-count-m">{shown}</span> {opts.unit}'
        + ("" if opts.history else f' in force on <span class="cmap-count-date">{today}</span>') + '</p>'
        f'<button type="reset" form="{tid}-form" class="md-button cmap-reset" hidden>Clear filters</button></div>'
        f'<p class="cmap-gapnote" id="{tid}-gaps" hidden></p>'
    )


def _td(label: str, cls: str, body: str, sort: str | None = None, extra_cls: str = "") -> str:
    """One cell; its content sits in one block so that the phone layout (label | value) keeps it together."""
    sort_attr = f' data-sort="{escape(sort)}"' if sort is not None else ""
    classes = f"cmap-c-{cls}" + (f" {extra_cls}" if extra_cls else "")
    return f'<td data-label="{label}" class="{classes}"{sort_attr}><div class="cmap-v">{body}</div></td>'


def _row_html(policy: Policy, row: Row, opts: TableOptions, today: dt.date) -> str:
    p, c = row.period, row.code
    key, label = source_kind(p.citation.source)
    code_href = href(opts.page, f"codes/{c.code}.md", opts.directory_urls)
    src_href = href(opts.page, "sources.md", opts.directory_urls, p.citation.source.id)
    category = policy.program.categories[c.category].name
    limits = "".join(f"<li>{escape(lim.guideline)}</li>" for lim in p.limits)
    guideline = escape(p.guideline) + (f'<ul class="cmap-limits">{limits}</ul>' if limits else "")
    section = f", {escape(p.citation.section)}" if p.citation.section else ""
    end = str(p.end) if p.end else ""
    rccs = ", ".join(p.revenue_center_codes)
    # what the text filter reads: the code and what it is, never the guideline, whose words ("not payable by
    # telephone") would match rows that say the opposite; the modality filter selects by modality
    search = " ".join([c.code, c.system, c.description, category]).lower()
    state = row.state(today)
    note = {"in-force": "", "ended": "ended", "later": "starts later"}[state]
    state_note = f'<span class="cmap-state cmap-state-note cmap-state-{state}">{note}</span>'
    mods_sort = " ".join(p.modalities) if p.permitted else "~not-permitted"
    attrs = {
        "data-code": c.code, "data-system": c.system, "data-period": p.id, "data-effective": str(p.effective),
        "data-end": end, "data-status": row.status,
        "data-modalities": " ".join(p.modalities) + ("" if p.permitted else " not-permitted"),
        "data-category": c.category, "data-rccs": " ".join(p.revenue_center_codes), "data-state": state,
        "data-source-kind": key, "data-search": search,
    }
    cells = [
        _td("Code", "code", f'<a href="{code_href}"><strong>{escape(c.code)}</strong></a>'
            f'<span class="cmap-system">{escape(c.system)}</span>', sort=c.code),
        _td("Description", "desc", f'{escape(c.description)}<span class="cmap-category">{escape(category)}</span>'),
        _td("Modalities", "mods", _badges(p), sort=mods_sort),
        _td("RCCs", "rcc", escape(rccs) or '<span class="cmap-none">none</span>', sort=rccs,
            extra_cls="" if rccs else "cmap-blank"),
        _td("Effective", "date", str(p.effective) + ("" if p.start_known else
            '<span class="cmap-state cmap-state-unknown">in force by then; real start not known</span>'),
            sort=str(p.effective)),
        _td("Ends on" if opts.history else "Ends", "date",
            (end or '<span class="cmap-none">no end date</span>') + state_note, sort=end or "9999-12-31"),
        _td("Guideline", "guide", guideline),
        _td("Source", "src", f'<span class="cmap-src cmap-src-{key}">{label}</span> '
            f'<a href="{src_href}" title="{escape(p.citation.source.title)}">{escape(p.citation.source.id)}</a>'
            f"{section}", sort=key),
    ]
    attr_text = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
    hidden = " hidden" if not opts.history and state != "in-force" else ""
    return f"<tr {attr_text}{hidden}>{''.join(cells)}</tr>"


def _unknown_gaps(policy: Policy, rows: Sequence[Row]) -> dict[str, list[list[str | None]]]:
    """Per code of the table: the stretches no public source covers (``timeline.spans``), as ISO dates."""
    out: dict[str, list[list[str | None]]] = {}
    for code in dict.fromkeys(r.code.code for r in rows):
        gaps = [[s.start.isoformat() if s.start else None, s.end.isoformat() if s.end else None]
                for s in spans(policy, code) if s.period is None and not s.known]
        if gaps:
            out[code] = gaps
    return out


def table_html(policy: Policy, rows: Sequence[Row], opts: TableOptions, today: dt.date) -> str:
    """The filterable, sortable table: a raw HTML block for a Markdown page.

    Every row is there; without the history option, those not in force on ``today`` are hidden, and the
    script shows the rows of the date the reader picks."""
    head = ["Code", "Description", "Modalities", "RCCs", "Effective", "Ends on" if opts.history else "Ends",
            "Guideline", "Source"]
    # Guideline prose is not worth sorting by; tablesort skips a column marked data-sort-method="none".
    ths = "".join('<th scope="col" class="no-sort" data-sort-method="none">Guideline</th>' if name == "Guideline"
                  else '<th scope="col"><abbr title="Revenue center codes (institutional claims)">RCCs</abbr></th>'
                  if name == "RCCs" else f'<th scope="col">{name}</th>' for name in head)
    body = "".join(_row_html(policy, r, opts, today) for r in rows)
    # The script replaces this with the one sentence that applies to the date and the code searched for.
    empty = ('<p class="cmap-empty" role="status" hidden>No row matches. Where this data holds the whole table, a '
             'code that is not on it is not payable via telehealth; where it holds only the rows public sources '
             'name, the official table decides.</p>')
    gaps = escape(json.dumps(_unknown_gaps(policy, rows), separators=(",", ":")))
    whole = policy.complete_from.get(policy.latest.id)
    # A section, not a div: site search skips an element marked data-search-exclude only up to the first
    # closing tag of its own name, and the block holds divs but no section.
    return (f'<section class="cmap-table-block" data-search-exclude data-cmap-gaps="{gaps}" '
            f'data-cmap-whole="{whole or ""}" data-cmap-code-pattern="{escape(CODE_RE.pattern)}">'
            f'{_filters(policy, rows, opts, today)}'
            f'<div class="cmap-table-scroll"><table class="cmap-table" id="{opts.table_id}" '
            f'data-cmap-unit="{opts.unit}" data-cmap-mode="{"history" if opts.history else "date"}">'
            f'<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>{empty}</section>')


# --- downloads -------------------------------------------------------------------------------------------

def export_current(policy: Policy, today: dt.date, fmt: str) -> bytes:
    """The table in force on ``today`` as ``fmt`` (csv, xlsx, json): the same export as ``cmap-policy export``."""
    return export_table(policy, date=today, fmt=fmt)


def table_epochs(policy: Policy) -> list[dt.date]:
    """The days on which the rows in force change (and the day before the first): between two of them every
    day has the same table, so one export per epoch lets the table page's downloads follow any date."""
    days = {d for cv in policy.views[policy.latest.id].values() for p in cv.periods
            for d in (p.effective, p.end + dt.timedelta(days=1) if p.end else None) if d is not None}
    return ([min(days) - dt.timedelta(days=1)] if days else []) + sorted(days)


def export_history(policy: Policy, fmt: str) -> bytes:
    """Every row of the latest release, ended ones too: ``cmap-policy export --history``."""
    return export_table(policy, history=True, fmt=fmt)
