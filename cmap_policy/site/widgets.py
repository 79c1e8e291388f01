"""The site's interactive parts as HTML: the claim-line checker, a code's status on any date, the coverage banner.

Each is written here at build time from the policy; ``docs/assets/javascripts/cmap-check.js`` brings the
checker and the status to life from the data ``site.check`` writes. Without a script, the checker stays
hidden (a note says what to run instead) and the status shows the build date's answer.
"""

from __future__ import annotations

import datetime as dt
import json
from html import escape

from ..interpreter import Span, spans
from ..lines import CLAIM_TYPES, MAX_MODIFIERS
from ..model import Period, Policy
from .check import OUTCOME_WORDS, day_number
from .table import MODALITY_LABELS, href

CHECK_ID = "check"
UNDECIDABLE_ANCHOR = "undecidable"  # the sources page's list of what a claim line cannot decide


def _modality_words(policy: Policy, modalities: tuple[str, ...]) -> str:
    ordered = sorted(modalities, key=lambda m: (m != "audio-video", m))
    return " or ".join(MODALITY_LABELS.get(m, m).lower() for m in ordered)


def row_dates(p: Period) -> str:
    """A row's dates as the site says them everywhere: a start the sources do not know is said so."""
    start = (f"from {p.effective}" if p.start_known
             else f"in force by {p.effective} (its real start is not known)")
    return start + (f" to {p.end}" if p.end else ", no end date")


def row_allows(policy: Policy, p: Period) -> str:
    """What a row allows, with the modalities its sources are silent on."""
    if not p.permitted:
        return "listed as not permitted via telehealth"
    out = "payable via telehealth by " + _modality_words(policy, p.modalities)
    if p.undetermined_modalities:
        out += ("; the sources neither allow nor rule out " + _modality_words(policy, p.undetermined_modalities)
                + ", so such a line is undetermined")
    return out


def coverage_banner(policy: Policy, page: str, directory_urls: bool) -> str:
    """What the data covers, and where the authority is: on the table pages and every code page."""
    program = policy.program
    whole = policy.complete_from.get(policy.latest.id)
    if whole is None:
        covers = ("<strong>This data holds only the rows public sources name.</strong> Where they are silent "
                  "(a code they do not list, dates they do not cover), the answer is <em>undetermined</em>, "
                  "never “not listed”.")
    else:
        covers = (f"<strong>This data holds the whole official table for dates of service from {whole}</strong>; "
                  "before that, only the rows public sources name, and where they are silent the answer is "
                  "<em>undetermined</em>.")
    links = []
    if program.official_table is not None:
        links.append(f'<a href="{escape(program.official_table.source.url)}">the official CMAP Telehealth Table '
                     "(spreadsheet)</a>")
    if program.citation is not None:
        links.append(f'<a href="{escape(program.citation.source.url)}">{escape(program.citation.source.title)}</a>')
    where = (" The official table is the authority: " + " on ".join(links) + ".") if links else ""
    sources = href(page, "sources.md", directory_urls)
    cannot = ""
    if program.undecidable:
        why = href(page, "sources.md", directory_urls, UNDECIDABLE_ANCHOR)
        cannot = ("<p><strong>What it cannot decide</strong>, because the sources name a category or an era but "
                  "not its codes, or nothing a claim line shows: "
                  + "; ".join(escape(u.what) for u in program.undecidable) + f'. <a href="{why}">Why</a>.</p>')
    return (f'<div class="cmap-coverage" role="note" aria-label="What this data covers"><p>{covers}{where} '
            f'<a href="{sources}">Sources</a>.</p>{cannot}</div>')


def check_form(policy: Policy, page: str, directory_urls: bool, code: str | None = None) -> str:
    """The claim-line checker: a form the script answers from the build's data."""
    program = policy.program
    fid = CHECK_ID
    codes = "".join(f'<option value="{escape(c)}">{escape(cv.code.description)}</option>'
                    for c, cv in policy.views[policy.latest.id].items())
    places = "".join(f'<option value="{escape(p.code)}">{escape(p.name)}</option>'
                     for p in program.places_of_service.values())
    places += '<option value="11">office</option><option value="12">home</option>'
    mods = []
    for m in program.modifiers.values():
        what = (MODALITY_LABELS.get(m.modality, m.modality).lower() if m.modality and m.marks_telehealth
                else "telehealth, no modality" if m.marks_telehealth else "not telehealth")
        mods.append(f'<label class="cmap-mod"><input type="checkbox" name="mod" value="{escape(m.code)}"> '
                    f'<span class="cmap-mod-code">{escape(m.code)}</span> <span class="cmap-mod-what">{escape(what)}'
                    "</span></label>")
    types = "".join(f'<option value="{ct}">{escape(program.claim_types[ct].name if ct in program.claim_types else ct)}'
                    + (f" ({escape(program.claim_types[ct].transaction)})" if ct in program.claim_types else "")
                    + "</option>" for ct in CLAIM_TYPES)

    def err(name: str) -> str:
        return f'<p class="cmap-check-error" id="{fid}-{name}-error" data-cmap-error="{name}" hidden></p>'

    def described(name: str, hint: str = "") -> str:
        ids = f"{fid}-{name}-error" + (f" {fid}-{name}-hint" if hint else "")
        return f'aria-describedby="{ids}"'

    value = f' value="{escape(code)}"' if code else ""
    # data-search-exclude: the form's labels and options are not prose for site search (which skips a marked
    # element up to the first closing tag of its name: a form holds no other form)
    code_attr = f' data-code="{escape(code)}"' if code else ""
    return (
        f'<form class="cmap-check" id="{fid}" data-cmap-check{code_attr} novalidate hidden data-search-exclude '
        f'aria-labelledby="{fid}-title" data-reasons-href="{href(page, "reasons.md", directory_urls)}" '
        f'data-sources-href="{href(page, "sources.md", directory_urls)}">'
        f'<p class="cmap-check-title" id="{fid}-title"><strong>Check a claim line</strong> for any date of '
        f'service, against release {escape(policy.latest.id)}.</p>'
        '<div class="cmap-check-grid">'
        f'<div class="cmap-field"><label for="{fid}-code">Procedure code</label>'
        f'<input id="{fid}-code" name="code" list="{fid}-codes" autocomplete="off" spellcheck="false" '
        f'autocapitalize="characters" required{value} {described("code")}>{err("code")}</div>'
        f'<datalist id="{fid}-codes">{codes}</datalist>'
        f'<div class="cmap-field"><label for="{fid}-date">Date of service</label>'
        # text, not type=date: a date field empties itself on an impossible day, and the reader must see what
        # was typed beside the message that names it
        f'<input id="{fid}-date" name="date" inputmode="numeric" autocomplete="off" placeholder="YYYY-MM-DD" '
        f'required {described("date", "hint")}><p class="cmap-hint" id="{fid}-date-hint">YYYY-MM-DD or '
        f'MM/DD/YYYY.</p>{err("date")}</div>'
        f'<div class="cmap-field"><label for="{fid}-pos">Place of service</label>'
        f'<input id="{fid}-pos" name="pos" list="{fid}-places" inputmode="numeric" autocomplete="off" '
        f'{described("pos")}>{err("pos")}</div>'
        f'<datalist id="{fid}-places">{places}</datalist>'
        f'<div class="cmap-field cmap-field-ct"><label for="{fid}-ct">Claim type</label>'
        f'<select id="{fid}-ct" name="claim_type">{types}</select></div>'
        f'<div class="cmap-field"><label for="{fid}-rcc">Revenue center code</label>'
        f'<input id="{fid}-rcc" name="rcc" inputmode="numeric" autocomplete="off" {described("rcc", "hint")}>'
        f'<p class="cmap-hint" id="{fid}-rcc-hint">Institutional claims only (UB-04 / 837I).</p>{err("rcc")}</div>'
        "</div>"
        f'<fieldset class="cmap-mods"><legend>Modifiers (a line carries at most {MAX_MODIFIERS})</legend>'
        + "".join(mods)
        + f'<div class="cmap-field cmap-field-other"><label for="{fid}-other">Other modifiers</label>'
        f'<input id="{fid}-other" name="other" autocomplete="off" spellcheck="false" '
        f'{described("other", "hint")}><p class="cmap-hint" id="{fid}-other-hint">Any other modifier on the line, '
        "such as 25: the telehealth decision does not read it.</p>"
        f"{err('other')}</div></fieldset>"
        '<div class="cmap-check-actions"><button type="submit" class="md-button md-button--primary">Check the line'
        '</button> <button type="reset" class="md-button">Clear</button></div>'
        f'<p class="cmap-check-status" role="status" aria-live="polite" id="{fid}-status"></p>'
        f'<div class="cmap-check-answer" id="{fid}-answer" hidden></div>'
        "</form>"
        '<noscript data-search-exclude><p class="cmap-noscript">The claim-line checker needs JavaScript. '
        'The command line gives the same '
        "answer: <code>cmap-policy eval --code CODE --date YYYY-MM-DD --modifier 95 --pos 11 --explain</code>.</p>"
        "</noscript>"
    )


# --- a code's status on any date -----------------------------------------------------------------------

def _span_state(policy: Policy, span: Span) -> tuple[str, str, str]:
    """(state, title, detail) of one stretch of a code's timeline; {date} stands for the date asked about."""
    p = span.period
    if p is not None:
        detail = f"Row {row_dates(p)}."
        if not p.permitted:
            return "not-permitted", "Listed as not permitted via telehealth on {date}", detail
        if p.undetermined_modalities:
            detail += (f" The sources neither allow nor rule out {_modality_words(policy, p.undetermined_modalities)}"
                       " for it: such a line is undetermined, and the official table decides.")
        return "payable", f"Payable via telehealth by {_modality_words(policy, p.modalities)} on {{date}}", detail
    if span.known:
        return ("not-listed", "Not on the telehealth table on {date}",
                "The data holds the whole table for this date, or a source says the code left it: not payable "
                "via telehealth.")
    return ("unknown", "No public source for {date}: undetermined",
            "This data holds only the rows public sources name, and none of them covers this date for this code. "
            "The official CMAP Telehealth Table decides.")


def status_spans(policy: Policy, code: str) -> list[tuple[int | None, str, str, str]]:
    """The code's timeline for the status box: (first day or None, state, title, detail) of each stretch."""
    out = []
    for s in spans(policy, code):
        state, title, detail = _span_state(policy, s)
        out.append((None if s.start is None else day_number(s.start), state, title, detail))
    return out


def _status_at(stretches: list[tuple[int | None, str, str, str]], day: dt.date) -> tuple[int | None, str, str, str]:
    n = day_number(day)
    current = stretches[0]
    for s in stretches:
        if s[0] is None or s[0] <= n:
            current = s
    return current


def _undated(title: str) -> str:
    return title.replace(" on {date}", "").replace(" for {date}", "")


def status_on(policy: Policy, code: str, day: dt.date) -> tuple[str, str]:
    """(state, title) of ``code`` on ``day``, the title without its date."""
    _, state, title, _ = _status_at(status_spans(policy, code), day)
    return state, _undated(title)


def timeline_text(policy: Policy, code: str) -> str:
    """What the code's timeline draws, as a list: a phone shows it instead of the picture, whose text would be
    scaled down past reading."""
    items = []
    for s in spans(policy, code):
        state, title, _ = _span_state(policy, s)
        when = (f"Until {s.end}" if s.start is None else f"From {s.start}" if s.end is None
                else f"{s.start} to {s.end}") if s.start is not None or s.end is not None else "Always"
        items.append(f'<li class="cmap-status-{state}"><strong>{escape(when)}</strong>: {escape(_undated(title))}</li>')
    return f'<ol class="cmap-timeline-text" aria-label="Periods of {escape(code)}, as a list">{"".join(items)}</ol>'


def status_box(policy: Policy, code: str, today: dt.date) -> str:
    """The status of ``code`` on a date: the build date without a script, the viewer's date (or the one
    picked) with one."""
    stretches = status_spans(policy, code)
    _, state, title, detail = _status_at(stretches, today)
    data = escape(json.dumps([list(s) for s in stretches], separators=(",", ":")))
    return (f'<div class="cmap-status cmap-status-{state}" data-state="{state}" data-date="{today}" '
            f'data-cmap-spans="{data}">'
            f'<p class="cmap-status-title">{escape(title.replace("{date}", str(today)))}</p>'
            f'<p class="cmap-status-detail">{escape(detail.replace("{date}", str(today)))}</p>'
            f'<p class="cmap-status-pick" hidden><label>Date of service <input type="date" '
            f'value="{today}"></label></p></div>')


# --- a whole claim at once ------------------------------------------------------------------------------

def claims_form() -> str:
    """Paste claim lines or drop a file; ``cmap-claims.js`` decides every line in a worker, in the page."""
    words = escape(json.dumps(OUTCOME_WORDS, separators=(",", ":")))
    example = "code,date,modifiers,pos&#10;T1016,2026-01-05,93,11&#10;97153,2026-01-05,93,11"
    return (
        f'<form class="cmap-claims" data-cmap-claims data-outcome-words="{words}" hidden novalidate '
        'data-search-exclude aria-labelledby="claims-title">'
        '<p id="claims-title"><strong>Check every line of a claim</strong>, in this page: nothing is uploaded.</p>'
        '<div class="cmap-field"><label for="claims-text">Claim lines: CSV with a header line, or JSON Lines'
        f'</label><textarea id="claims-text" rows="7" spellcheck="false" placeholder="{example}"></textarea></div>'
        '<div class="cmap-claims-drop"><label for="claims-file">Or choose a file (CSV or JSON Lines), or drop '
        'it here</label> <input type="file" id="claims-file" accept=".csv,.jsonl,.ndjson,.txt,text/csv"></div>'
        '<div class="cmap-check-actions"><button type="submit" class="md-button md-button--primary">Check every '
        "line</button></div>"
        '<p class="cmap-claims-status" role="status" aria-live="polite"></p>'
        '<div class="cmap-claims-result" hidden></div></form>'
        '<noscript data-search-exclude><p class="cmap-noscript">Checking a claim file here needs JavaScript. The '
        "command line gives the same answers: <code>cmap-policy eval claims.csv -o decisions.csv</code>.</p>"
        "</noscript>"
    )
