"""The telehealth table as the site shows it: rows, their HTML with filters, and the downloads.

A row is one period of a code as published in the site's release. The HTML carries each row's facts as
``data-`` attributes, so that the filter script, the browser tests and the property test read the same
values the reader sees.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ..authoring.table import export_table
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
    return " ".join(f'<span class="cmap-badge cmap-badge-{escape(m)}">{escape(MODALITY_LABELS.get(m, m))}</span>'
                    for m in sorted(period.modalities, key=lambda m: (m != "audio-video", m)))


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
        state = (f'<label class="cmap-field"><span>Rows</span><select data-cmap-filter="state" id="{tid}-state">'
                 '<option value="">All rows</option><option value="in-force">In force today</option>'
                 '<option value="ended">Ended</option><option value="later">Starting later</option></select></label>')
    total = len(rows)
    return (
        f'<form class="cmap-filters" id="{tid}-form" data-cmap-for="{tid}" role="search" hidden '
        f'onsubmit="return false">'
        f'<label class="cmap-field cmap-field-q"><span>Find a code</span>'
        f'<input type="search" id="{tid}-q" data-cmap-text placeholder="Code, description or guideline" '
        f'autocomplete="off" spellcheck="false" inputmode="search"></label>'
        f'<label class="cmap-field"><span>Modality</span><select data-cmap-filter="modalities" id="{tid}-modality">'
        f'<option value="">Any</option>{mod_opts}</select></label>'
        f'<label class="cmap-field"><span>Category</span><select data-cmap-filter="category" id="{tid}-category">'
        f'<option value="">Any</option>{cat_opts}</select></label>{state}'
        f'</form>'
        f'<div class="cmap-countbar">'
        f'<p class="cmap-count" id="{tid}-count" aria-live="polite"><strong class="cmap-count-n">{total}</strong> of '
        f'<span class="cmap-count-m">{total}</span> {opts.unit}'
        + (f' in force on {today}' if not opts.history else '') + '</p>'
        f'<button type="reset" form="{tid}-form" class="md-button cmap-reset" hidden>Clear filters</button></div>'
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
    search = " ".join([c.code, c.system, c.description, category, p.guideline,
                       *(lim.guideline for lim in p.limits)]).lower()
    state = row.state(today)
    state_note = {"in-force": "", "ended": '<span class="cmap-state cmap-state-ended">ended</span>',
                  "later": '<span class="cmap-state cmap-state-later">starts later</span>'}[state]
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
        _td("Effective", "date", str(p.effective), sort=str(p.effective)),
        _td("Ends on" if opts.history else "Ends", "date",
            (end or '<span class="cmap-none">no end date</span>') + state_note, sort=end or "9999-12-31"),
        _td("Guideline", "guide", guideline),
        _td("Source", "src", f'<span class="cmap-src cmap-src-{key}">{label}</span> '
            f'<a href="{src_href}" title="{escape(p.citation.source.title)}">{escape(p.citation.source.id)}</a>'
            f"{section}", sort=key),
    ]
    attr_text = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
    return f"<tr {attr_text}>{''.join(cells)}</tr>"


def table_html(policy: Policy, rows: Sequence[Row], opts: TableOptions, today: dt.date) -> str:
    """The filterable, sortable table: a raw HTML block for a Markdown page."""
    head = ["Code", "Description", "Modalities", "RCCs", "Effective", "Ends on" if opts.history else "Ends",
            "Guideline", "Source"]
    # Guideline prose is not worth sorting by; tablesort skips a column marked data-sort-method="none".
    ths = "".join('<th scope="col" class="no-sort" data-sort-method="none">Guideline</th>' if name == "Guideline"
                  else f'<th scope="col">{name}</th>' for name in head)
    body = "".join(_row_html(policy, r, opts, today) for r in rows)
    empty = ('<p class="cmap-empty" hidden>No row matches. A code that is not on the table is not payable via '
             'telehealth.</p>')
    return (f'<div class="cmap-table-block">{_filters(policy, rows, opts, today)}'
            f'<div class="cmap-table-scroll"><table class="cmap-table" id="{opts.table_id}" '
            f'data-cmap-unit="{opts.unit}">'
            f'<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>{empty}</div>')


# --- downloads -------------------------------------------------------------------------------------------

def export_current(policy: Policy, today: dt.date, fmt: str) -> bytes:
    """The table in force on ``today`` as ``fmt`` (csv, xlsx, json): the same export as ``cmap-policy export``."""
    return export_table(policy, date=today, fmt=fmt)
