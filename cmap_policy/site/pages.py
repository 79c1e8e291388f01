"""The pages of the providers' and billers' site, generated from the policy data by one plain function.

``generate_pages(policy, today=...)`` returns every page (Markdown) and download (bytes) by its path
under docs/. Nothing here knows about MkDocs: the hook in ``site.hooks`` only hands the pages over, so a
move to another generator that reads the same mkdocs.yml needs only a script that writes these files
(``site.write``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..authoring.changelog import change_report, render_markdown
from ..explain import describe_line
from ..load.faq import Faq, load_faqs
from ..model import Citation, Outcome, Period, Policy, Release
from ..reasons import CARC_SOURCE, REASONS
from ..resources import schema_dir
from . import svg
from .check import OUTCOME_WORDS, check_files
from .examples import CodeExamples, Example, cli_command, code_examples, reason_examples
from .nav import contributing_page
from .schema_pages import SchemaDoc, load_schemas, schema_index, schema_page
from .table import (
    MODALITY_LABELS,
    Row,
    TableOptions,
    all_rows,
    export_current,
    export_history,
    href,
    rows_in_force,
    source_kind,
    table_html,
)
from .widgets import check_form, coverage_banner, row_allows, row_dates, status_box, status_on

Pages = dict[str, "str | bytes"]

DOWNLOAD_STEM = "downloads/cmap-telehealth-table"
HISTORY_STEM = "downloads/cmap-telehealth-table-history"
FILE_KINDS = {
    "program": "`policy/program.json`",
    "releases": "`policy/releases.json`",
    "code": "`policy/codes/<CODE>.json`, one per code",
    "faq": "`policy/faq/<id>.json`, one per question",
    "tests": "`policy/tests/*.json`",
    "common": "none: definitions the other schemas share",
}


@dataclass(frozen=True, slots=True)
class SiteMeta:
    """What every page states about its origin (the footer), and what the hook puts into ``extra``."""

    release: str
    published: str
    effective: str
    policy_hash: str
    as_of: str

    def as_dict(self) -> dict[str, str]:
        return {"release": self.release, "published": self.published, "effective": self.effective,
                "hash": self.policy_hash, "hash_short": self.policy_hash[:12], "as_of": self.as_of}


def site_meta(policy: Policy, today: dt.date) -> SiteMeta:
    rel = policy.latest
    return SiteMeta(rel.id, rel.published.isoformat(), rel.effective.isoformat(), policy.hash, today.isoformat())


def _md(text: str) -> str:
    """Data text made safe to place in Markdown prose: no HTML, no accidental emphasis or links."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def _cite_md(c: Citation, page: str, *, flag_secondary: bool = True) -> str:
    """A Markdown citation with a link to the source on the sources page."""
    prefix = "../" * page.count("/")
    section = f", {_md(c.section)}" if c.section else ""
    note = f" ({_md(c.note)})" if c.note else ""
    flag = " · *secondary source*" if c.source.secondary and flag_secondary else ""
    return f"[{_md(c.source.title)}]({prefix}sources.md#{c.source.id}){section}{note}{flag}"


def _rel_link(rel_id: str, page: str) -> str:
    prefix = "../" * page.count("/")
    return f"[{rel_id}]({prefix}changelog.md#{rel_id.lower()})"


def _outcome_html(outcome: Outcome) -> str:
    """An outcome in its own words and colour, as every decision on the site shows it."""
    return f'<span class="cmap-outcome cmap-outcome-{outcome.value}">{OUTCOME_WORDS[outcome.value]}</span>'


def _billing_note(policy: Policy, page: str) -> str:
    """How to bill a telehealth line, from the program's modifiers and places of service: the same words as the
    FAQ on modifiers and place of service, the modifiers page and the example lines."""
    prog = policy.program
    by: dict[str, list[str]] = {}
    for m in prog.modifiers.values():
        if m.marks_telehealth and m.modality in ("audio-video", "audio-only"):
            by.setdefault(m.modality, []).append(m.code)
    order = sorted(by, key=lambda m: (m != "audio-video", m))
    mods = ", ".join(f"{' or '.join(sorted(by[m], key=lambda c: (not c.isdigit(), c)))} for "
                     + ("audio-only, on a code the table allows by telephone" if m == "audio-only" else
                        MODALITY_LABELS.get(m, m).lower()) for m in order)
    prefix = "../" * page.count("/")
    guided = [pos.code for pos in prog.places_of_service.values() if pos.guidance]
    pos_note = ""
    if guided:
        pos_note = (f" Lines with place of service {' or '.join(guided)} get that guidance as a warning, not a "
                    "denial: no source says they are denied.")
    return (f"**Bill** with the modifier of the way the service was delivered: {mods}; and the place of service "
            f"where the visit would have happened in person.{pos_note} See "
            f"[modifiers and places of service]({prefix}modifiers.md) and "
            f"[the FAQ]({prefix}faq.md#modifier-and-place-of-service).")


# --- pages -----------------------------------------------------------------------------------------------

def _home(policy: Policy, today: dt.date, rows: Sequence[Row], directory_urls: bool) -> str:
    rel = policy.latest
    span = svg.policy_span(policy, today)
    steps = svg.in_force_steps(policy)
    permitted = sum(1 for r in rows if r.period.permitted)
    audio_only = sum(1 for r in rows if "audio-only" in r.period.modalities)
    not_permitted = len(rows) - permitted
    first = next((s.day for s in steps if s.day is not None), None)
    step_rows = "\n".join(f"| {s.day if s.day is not None else f'before {first}'} | {s.counts['audio-video']} | "
                          f"{s.counts['audio-only']} | {s.counts['not-permitted']} | {s.counts['unknown']} |"
                          for s in steps)
    return f"""---
title: Home
---

# {_md(policy.program.name)}: telehealth

**Only procedure codes on the CMAP Telehealth Table are payable via telehealth**, in the modalities the
table allows, for dates of service between its effective and end dates. This site is generated from the
policy data of release **{rel.id}** (published {rel.published}); the engine that decides claim lines reads
the same data.

{coverage_banner(policy, "index.md", directory_urls)}

## Check a claim line {{#check-a-claim-line}}

{check_form(policy, "index.md", directory_urls)}

<div class="grid cards" markdown>

-   **[The telehealth table](table.md)**

    ---

    {len(rows)} codes in force on {today}, when this site was built: {permitted} payable via telehealth, {audio_only}
    of them also by audio-only; {not_permitted} listed as not permitted. Pick any date of service, filter, sort
    and download it.

-   **[Billing: modifiers and place of service](modifiers.md)**

    ---

    Which modifier signals which modality, and what the sources say about the place of service.

-   **[Reason codes](reasons.md)**

    ---

    Why a line is not payable, or undetermined, with the claim adjustment reason code a payer would send for a
    denial.

-   **[What changed](changelog.md)**

    ---

    One section per release of the table, newest first.

</div>

## Codes on the table over time

How many codes the table listed on each date, by modality (a code listed for both modalities counts in both),
and how many codes of this data no public source covers on that date (their answer is undetermined).

<figure class="cmap-figure" data-search-exclude>
{svg.in_force_chart_svg(steps, span, today)}
</figure>

??? note "The numbers behind the picture"

    | From | Audio-video | Audio-only | Not permitted | No public source |
    |---|---|---|---|---|
{_indent(step_rows, 4)}

## Where the data comes from

{_md(policy.program.authority)} See [the sources](sources.md) and, for each row, its citation.
"""


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _table_page(policy: Policy, today: dt.date, rows: Sequence[Row], directory_urls: bool) -> str:
    opts = TableOptions("cmap-table", "table.md", "codes", history=False, directory_urls=directory_urls)
    rel = policy.latest
    return f"""---
title: Telehealth table
hide:
  - navigation
  - toc
---

# Telehealth table on a date of service

The rows in force on the date of service you pick (your today, at first), as published in release **{rel.id}**
({rel.published}). Without JavaScript the page shows the rows in force on {today}, when it was built. Click a
column heading to sort; click a code for its history, example claim lines and its FAQs. Download: this table
([CSV]({DOWNLOAD_STEM}.csv) · [Excel]({DOWNLOAD_STEM}.xlsx) · [JSON]({DOWNLOAD_STEM}.json), as of {today}) or the
full history ([CSV]({HISTORY_STEM}.csv) · [Excel]({HISTORY_STEM}.xlsx) · [JSON]({HISTORY_STEM}.json)).

{coverage_banner(policy, "table.md", directory_urls)}

{table_html(policy, all_rows(policy), opts, today)}

**RCCs** are revenue center codes: on an institutional claim (UB-04 or 837I) a row with RCCs is payable only with
one of them. {_billing_note(policy, "table.md")} Rows marked *secondary source* come from a third party's reading
of the table: check them against the official table. Ended rows are on the [full history](history.md).
"""


def _history_page(policy: Policy, today: dt.date, rows: Sequence[Row], directory_urls: bool) -> str:
    opts = TableOptions("cmap-history", "history.md", "rows", history=True, directory_urls=directory_urls)
    ended = sum(1 for r in rows if r.state(today) == "ended")
    return f"""---
title: Full history
hide:
  - navigation
  - toc
---

# Full history of the table

Every row the table has had, as known in release **{policy.latest.id}**: {len(rows)} rows, {ended} of them
ended before {today}. A row applies to dates of service from its effective date to the date it **ends on**,
both included; pick a date of service to see which rows were in force, had ended or had not started yet.
Download it: [CSV]({HISTORY_STEM}.csv) · [Excel]({HISTORY_STEM}.xlsx) · [JSON]({HISTORY_STEM}.json).

{coverage_banner(policy, "history.md", directory_urls)}

{table_html(policy, rows, opts, today)}
"""


def _decision_md(ex: Example, policy: Policy) -> str:
    d = ex.decision
    reasons = "\n".join(f"- **{r.code}**" + (f" (CARC {r.carc})" if r.carc else "")
                        + (" (cannot decide)" if r.kind == "undetermined" else "") + f": {_md(r.message)}"
                        for r in d.reasons)
    out = f"""Claim line: {_md(describe_line(ex.line))}.

```sh
{cli_command(ex.line)}
```

<p class="cmap-verdict">{_outcome_html(d.outcome)}</p>

{reasons}
"""
    if d.to_confirm:
        out += "\nConfirm before billing (the line does not show it):\n\n" + "\n".join(
            f"- {_md(lim.guideline)}" for lim in d.to_confirm) + "\n"
    return out


def _touching(policy: Policy, periods: Sequence[Period]) -> list[tuple[Release, list[str]]]:
    out = []
    for rel in policy.releases:
        what = []
        for p in periods:
            if p.introduced_in == rel.id:
                what.append(f"added the row {row_dates(p)}: {row_allows(policy, p)}")
            if p.ended_in == rel.id:
                what.append(f"ended the row from {p.effective} on {p.end}")
        if what:
            out.append((rel, what))
    return out


def _examples_md(policy: Policy, ex: CodeExamples) -> list[str]:
    out = ["## Example claim lines\n",
           "Decided by the engine itself; the form above checks any other line.\n"]
    if ex.payable is not None and ex.payable is ex.today:
        out.append("A line for today that the engine decides as payable:\n\n" + _decision_md(ex.payable, policy))
    else:
        out.append("A line sent today, and what the engine decides:\n\n" + _decision_md(ex.today, policy))
        if ex.payable is not None:
            found = ex.payable.decision.period
            assert found is not None
            out.append(f"\nA payable line needs a date of service in a permitted row, for example in the row "
                       f"{row_dates(found)}:\n\n" + _decision_md(ex.payable, policy))
        else:
            out.append("\nNo line for this code is payable via telehealth: no row of it permits telehealth.\n")
    if ex.audio_only is not None:
        out.append("\nBy telephone (audio-only), which a row of this code allows:\n\n"
                   + _decision_md(ex.audio_only, policy))
    return out


def _code_page(policy: Policy, code: str, today: dt.date, faqs: Sequence[Faq], directory_urls: bool) -> str:
    page = f"codes/{code}.md"
    c = policy.codes[code]
    view = policy.views[policy.latest.id][code]
    periods = view.periods
    span = svg.policy_span(policy, today)
    ex: CodeExamples = code_examples(policy, code, today)
    category = policy.program.categories[c.category].name
    table_link = href(page, "table.md", directory_urls) + f"?q={code}"
    sections = [f"""---
title: "{code}: {c.description.replace('"', "'")}"
---

# {code}: {_md(c.description)}

{status_box(policy, code, today)}

{c.system} code · {_md(category)} · <a href="{table_link}">show in the table</a>

{coverage_banner(policy, page, directory_urls)}
"""]
    if c.note:
        sections.append(_md(c.note) + "\n")
    sections.append(f"""## Check a claim line {{#check-a-claim-line}}

{check_form(policy, page, directory_urls, code)}

## Periods

<figure class="cmap-figure" data-search-exclude>
{svg.timeline_svg(policy, code, span, today, title=f"Periods of {code} on the telehealth table")}
</figure>
""")
    for p in reversed(periods):
        key, label = source_kind(p.citation.source)
        lines = [f"### {_cap(row_dates(p))}", "",
                 f"- **Status:** {row_allows(policy, p)}"]
        if p.revenue_center_codes:
            lines.append(f"- **Revenue center codes** (institutional claims): {', '.join(p.revenue_center_codes)}")
        lines.append(f"- **Guideline:** {_md(p.guideline)}")
        lines += [f"- **Limit** ({lim.kind}): {_md(lim.guideline)}" for lim in p.limits]
        cite = _cite_md(p.citation, page, flag_secondary=False)
        lines.append(f'- **Source:** {cite} <span class="cmap-src cmap-src-{key}">{label}</span>')
        if p.dates_note:
            lines.append(f"- **Dates:** {_md(p.dates_note)}")
        intro = f"- **Introduced in** {_rel_link(p.introduced_in, page)}"
        if p.ended_in:
            intro += f"; **ended in** {_rel_link(p.ended_in, page)}"
        lines.append(intro)
        sections.append("\n".join(lines) + "\n")
    sections += _examples_md(policy, ex)
    touching = _touching(policy, periods)
    sections.append("## Releases that touched it\n\n" + "\n".join(
        f"- {_rel_link(rel.id, page)} (published {rel.published}): " + "; ".join(what)
        for rel, what in touching) + "\n")
    related = [f for f in faqs if code in f.codes]
    if related:
        sections.append("## FAQs\n\n" + "\n".join(f"- [{_md(f.question)}](../faq.md#{f.id})" for f in related)
                        + "\n")
    return "\n".join(sections)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _codes_index(policy: Policy, today: dt.date) -> str:
    view = policy.views[policy.latest.id]
    lines = ["---", "title: Codes", "---", "", "# Codes", "",
             f"Every code the table has listed, with its status on {today}, when this site was built (each code's "
             "page follows your date). Each page has the code's full history.",
             "", f"| Code | System | Description | On {today} |", "|---|---|---|---|"]
    for code, cv in view.items():
        state, title = status_on(policy, code, today)
        lines.append(f"| [{code}]({code}.md) | {cv.code.system} | {_md(cv.code.description)} | "
                     f'<span class="cmap-state-{state}">{_md(title)}</span> |')
    return "\n".join(lines) + "\n"


_KIND_LABELS = {"deny": "Denial", "undetermined": "Undetermined: the official table decides",
                "warn": "Warning: billing guidance", "info": "Information"}


def _dates(effective: dt.date | None, end: dt.date | None) -> str:
    if effective is None and end is None:
        return "no dates given"
    return (f"from {effective}" if effective else "") + (f" to {end}" if end else "")


def _modifiers_page(policy: Policy) -> str:
    prog = policy.program
    page = "modifiers.md"
    out = ["---", "title: Modifiers and places of service", "---", "",
           "# Modifiers and places of service", "",
           "A telehealth line says **how** the service was delivered with a modifier, and **where** the visit "
           "would have happened in person with the place of service.", "",
           _billing_note(policy, page), "",
           "## Modifiers", "",
           "| Modifier | What it signals | Modality | In the code set | Claim types | Note | Source |",
           "|---|---|---|---|---|---|---|"]
    for m in prog.modifiers.values():
        if not m.marks_telehealth:
            modality = "none: it does not make a line telehealth"
        else:
            modality = MODALITY_LABELS.get(m.modality, m.modality) if m.modality else "none: add 95 or 93"
        types = ", ".join(f"{prog.claim_types[t].name} ({prog.claim_types[t].transaction})" for t in m.claim_types)
        out.append(f"| **{m.code}** | {_md(m.meaning)} | {modality} | {_dates(m.effective, m.end)} | {types} | "
                   f"{_md(m.note)} | {_cite_md(m.citation, page)} |")
    out += ["", "## Places of service", "",
            "| Place of service | Name | Marks telehealth | In the code set | Note | Source |",
            "|---|---|---|---|---|---|"]
    for pos in prog.places_of_service.values():
        out.append(f"| **{pos.code}** | {_md(pos.name)} | {'yes' if pos.marks_telehealth else 'no'} | "
                   f"{_dates(pos.effective, pos.end)} | {_md(pos.note)} | {_cite_md(pos.citation, page)} |")
    guidance = [(pos, g) for pos in prog.places_of_service.values() for g in pos.guidance]
    if guidance:
        out += ["", "## Billing guidance", "",
                "What sources say to put on the claim. Guidance of the kind *bill it this way* adds a warning to a "
                "decision and never changes it; only a source that says such lines are denied denies them.", "",
                "| Place of service | Guidance | Kind | Applies | Source |", "|---|---|---|---|---|"]
        for pos, g in guidance:
            if g.start_known or g.effective is None:
                since = _dates(g.effective, g.end)
            else:
                since = f"in force by {g.effective} (its real start is not known)" + (f" to {g.end}" if g.end else "")
            kind = "denial" if g.kind == "deny" else "warning: the decision is unchanged"
            out.append(f"| **{pos.code}** | {_md(g.text)} | {kind} | {since} | {_cite_md(g.citation, page)} |")
    out += ["", "## Modalities", "", "| Modality | What it is | Covered | Source |", "|---|---|---|---|"]
    coverage = {"all-listed-codes": "for every code whose row lists it",
                "where-dss-specifies": "only where the table lists it for the code",
                "not-covered": "no"}
    for mod in prog.modalities.values():
        out.append(f"| **{_md(mod.name)}** | {_md(mod.description)} | {coverage.get(mod.coverage, mod.coverage)} | "
                   f"{_cite_md(mod.citation, page)} |")
    out += ["", "## Claim types", "", "| Claim type | Transaction |", "|---|---|"]
    out += [f"| {ct.name} | {ct.transaction} |" for ct in prog.claim_types.values()]
    out += ["", "## Revenue center codes (RCCs) {#revenue-center-codes}", "",
            "An institutional claim (UB-04 or 837I) carries a four-digit revenue center code on each line, which says "
            "which department or kind of service the charge belongs to (0900, for example, is behavioral health "
            "treatment). Where a row of the table lists revenue center codes, an institutional line for that code is "
            "payable via telehealth only with one of them; a professional claim carries none, and the table's RCCs "
            "do not apply to it."]
    out += ["", "## Conditions the provider must meet", "",
            "A claim line cannot show these, so a decision lists them for the provider to attest to rather than "
            "checking them.", ""]
    for a in prog.attestations:
        scope = f" (for {', '.join(a.modalities)} only)" if a.modalities else ""
        until = f" to {a.end}" if a.end else ""
        out.append(f"- {_md(a.text)}{scope} From {a.effective}{until}. {_cite_md(a.citation, page)}")
    return "\n".join(out) + "\n"


def _reasons_page(policy: Policy, today: dt.date, doc: str | None) -> str:
    examples = reason_examples(policy, today)
    outcomes = "\n".join(f"- {_outcome_html(o)}: {_md(what)}" for o, what in (
        (Outcome.PAYABLE, "the code is on the table for the date and the way the line was delivered, and nothing "
                          "denies it."),
        (Outcome.NOT_PAYABLE, "a reason of the kind deny applies: a source says the line is not payable this way."),
        (Outcome.UNDETERMINED, "nothing denies it, but the public sources this data holds are silent on something the "
                               "line needs (a code or a date they do not cover, a modality they neither allow nor "
                               "rule out). It is not a denial and has no CARC: the official table decides."),
        (Outcome.NOT_TELEHEALTH, "nothing on the line marks it as telehealth.")))
    out = ["---", "title: Reason codes", "---", "", "# Reason codes", "",
           "Every decision gives all the reasons that apply, each with a stable code that integrators can key on. "
           "A denial also carries the number of the X12 Claim Adjustment Reason Code (CARC) a payer would send "
           f"({_md(CARC_SOURCE)}). Each example below is decided by the engine itself against release "
           f"{policy.latest.id}.", "", "A decision has one of four outcomes:", "", outcomes, "",
           "| Reason | Kind | CARC | Meaning |", "|---|---|---|---|"]
    for r in REASONS.values():
        out.append(f"| [{r.code}](#{r.code.lower()}) | {_kind_html(r.kind, short=True)} | {r.carc or '—'} | "
                   f"{_md(r.meaning)} |")
    for r in REASONS.values():
        out += ["", f"## {r.code} {{#{r.code.lower()}}}", "",
                _kind_html(r.kind) + (f" · CARC **{r.carc}**" if r.carc else "") + f". {_md(r.meaning)}", ""]
        ex = examples.get(r.code)
        if ex is None:
            out.append(_why_no_example(policy, r.code))
        else:
            out.append("Example:\n\n" + _decision_md(ex, policy))
    if doc:
        body = re.sub(r"\A\s*# [^\n]*\n", "", doc)
        out += ["", "## How the kinds make the outcome, and why each CARC {#why}", "",
                re.sub(r"^## ", "### ", body, flags=re.M)]
    return "\n".join(out) + "\n"


def _kind_html(kind: str, short: bool = False) -> str:
    label = kind if short else _KIND_LABELS[kind]
    return f'<span class="cmap-kind cmap-kind-{kind}">{label}</span>'


_LIMIT_KINDS = {"AGE_OUTSIDE_LIMIT": "age", "PROVIDER_TYPE_NOT_ALLOWED": "provider-type",
                "ESTABLISHED_PATIENT_REQUIRED": "established-patient", "UNITS_OVER_LIMIT": "units-per-day"}


def _why_no_example(policy: Policy, reason: str) -> str:
    """Why no line gets ``reason`` under this policy, said from the data rather than assumed."""
    periods = [p for cv in policy.views[policy.latest.id].values() for p in cv.periods]
    prog = policy.program
    if reason in ("RCC_REQUIRED", "RCC_NOT_ALLOWED") and not any(p.revenue_center_codes for p in periods):
        why = "no row of the table lists revenue center codes"
    elif reason in _LIMIT_KINDS and not any(lim.kind == _LIMIT_KINDS[reason] for p in periods for lim in p.limits):
        why = f"no row of the table has a limit of the kind {_LIMIT_KINDS[reason]}"
    elif reason == "MODIFIER_NOT_FOR_CLAIM_TYPE" and all(set(m.claim_types) >= set(prog.claim_types)
                                                          for m in prog.modifiers.values()):
        why = "every telehealth modifier is used on every claim type"
    else:
        why = "none of the lines tried (each row's conforming lines, with one common mistake each) gets it"
    return f"No example: under release {policy.latest.id}, {why}, so no claim line gets this reason today."


def _faq_page(policy: Policy, faqs: Sequence[Faq]) -> str:
    page = "faq.md"
    out = ["---", "title: FAQs", "---", "", "# Frequently asked questions", "",
           "Each answer rests on the source it cites, and holds as of the release it names.", ""]
    for f in faqs:
        codes = ", ".join(f"[{c}](codes/{c}.md)" for c in f.codes)
        out += [f"## {_md(f.question)} {{#{f.id}}}", "", f.answer, "",
                f"<small>Source: {_cite_md(f.citation, page)} · as of release {_rel_link(f.release, page)}"
                + (f" · codes: {codes}" if codes else "") + "</small>", ""]
    if not faqs:
        out.append("No FAQs yet: add them under `policy/faq/`.")
    return "\n".join(out) + "\n"


def _changelog_page(policy: Policy) -> str:
    body = render_markdown(change_report(policy), link_codes=True)
    body = re.sub(r"\A\s*# [^\n]*\n", "", body)  # the page has its own title
    return "---\ntitle: Changelog\n---\n\n# Changelog\n\n" + _ensure_release_anchors(policy, body)


def _ensure_release_anchors(policy: Policy, body: str) -> str:
    """Other pages link to #<release id in lower case>: give the first heading naming each release that id."""
    lines = body.splitlines()
    for rel in policy.releases:
        anchor = rel.id.lower()
        if f"{{#{anchor}}}" in body or f'id="{anchor}"' in body:
            continue
        named = re.compile(rf"(?<![\w-]){re.escape(rel.id)}(?![\w-])")
        for i, line in enumerate(lines):
            if line.startswith("## ") and "{#" not in line and named.search(line):
                lines[i] = f"{line} {{#{anchor}}}"
                break
    return "\n".join(lines) + "\n"


def _sources_page(policy: Policy) -> str:
    prog = policy.program
    out = ["---", "title: Sources", "---", "", "# Sources", "", _md(prog.authority), ""]
    for s in prog.sources.values():
        flag = "Secondary source" if s.secondary else "Primary source"
        facts = [f"**{flag}**, {s.kind}"]
        if s.publisher:
            facts.append(_md(s.publisher))
        if s.published:
            facts.append(f"published {s.published}")
        where = f"<{s.url}>" if re.match(r"^https?://[^\s<>]+$", s.url) else _md(s.url)
        out += [f"## {_md(s.title)} {{#{s.id}}}", "", f"`{s.id}` · " + " · ".join(facts), "",
                f"Where: {where}", ""]
        if s.note:
            out += [_md(s.note), ""]
    out += ["## Statutes", ""]
    out += [f"- **{_md(st.citation)}**: {_md(st.requirement)}" for st in prog.statutes]
    return "\n".join(out) + "\n"


def _downloads_page(policy: Policy, today: dt.date, rows: Sequence[Row]) -> str:
    rel = policy.latest
    what_now = f"the {len(rows)} rows in force on {today}, one per code"
    what_all = f"the full history: all {len(all_rows(policy))} rows, ended ones too"
    csv_for = "spreadsheets and billing systems (UTF-8, comma-separated)"
    return f"""---
title: Downloads
---

# Downloads

The telehealth table as published in release {rel.id} ({rel.published}), with the same columns as
`cmap-policy export` writes (the official columns first). Every file states the release and the policy hash.

| File | What | For |
|---|---|---|
| [cmap-telehealth-table.csv]({DOWNLOAD_STEM}.csv) | {what_now} | {csv_for} |
| [cmap-telehealth-table.xlsx]({DOWNLOAD_STEM}.xlsx) | the same | Excel |
| [cmap-telehealth-table.json]({DOWNLOAD_STEM}.json) | the same | programs |
| [cmap-telehealth-table-history.csv]({HISTORY_STEM}.csv) | {what_all} | {csv_for} |
| [cmap-telehealth-table-history.xlsx]({HISTORY_STEM}.xlsx) | the same | Excel |
| [cmap-telehealth-table-history.json]({HISTORY_STEM}.json) | the same | programs |

The same files on the command line: `cmap-policy export --date {today} -o table.xlsx` and
`cmap-policy export --history --format json`. Policy hash: `{policy.hash}`. The same data decides claim
lines with `cmap-policy eval`; see the [CLI reference](authors/cli.md).
"""


def _cli_page() -> str:
    return """---
title: CLI reference
---

# CLI reference

Generated from the `cmap-policy` command itself, so it is always the help the command prints.

::: mkdocs-click
    :module: cmap_policy.cli
    :command: main
    :prog_name: cmap-policy
    :depth: 1
    :list_subcommands: true
"""


# --- the one function ------------------------------------------------------------------------------------

def hand_written(root: Path, docs: Path) -> dict[str, Any]:
    """What ``generate_pages`` takes from the repository besides the policy: CONTRIBUTING.md, the hand-written
    pages under ``docs`` (by path) and docs/reasons.md. The MkDocs hook and ``site.write`` both read them here."""
    guide = root / "CONTRIBUTING.md"
    reasons = docs / "reasons.md"
    return {"contributing": guide.read_text(encoding="utf-8") if guide.is_file() else None,
            "docs_pages": sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md")),
            "reasons_doc": reasons.read_text(encoding="utf-8") if reasons.is_file() else None}


def generate_pages(policy: Policy, *, today: dt.date, faqs: Sequence[Faq] | None = None,
                   schemas: Mapping[str, SchemaDoc] | None = None, contributing: str | None = None,
                   docs_pages: Collection[str] = (), directory_urls: bool = False,
                   reasons_doc: str | None = None) -> Pages:
    """Every page and download of the site, by path under docs/: Markdown text or file bytes.

    ``today`` is the day the table is shown for (the build date); ``faqs`` default to the policy's
    ``faq/`` folder and ``schemas`` to the package's schemas; ``contributing`` is CONTRIBUTING.md's text
    and ``docs_pages`` the hand-written pages under docs/ it may link to; ``reasons_doc`` is docs/reasons.md
    (why each CARC), which the generated reason-code page of the same name takes in. Besides pages and
    downloads, it writes the data of the claim-line checker (``site.check``) under assets/check/.
    """
    faqs = load_faqs(policy) if faqs is None else faqs
    schemas = load_schemas(schema_dir()) if schemas is None else schemas
    current = rows_in_force(policy, today)
    history = all_rows(policy)
    pages: Pages = {
        "index.md": _home(policy, today, current, directory_urls),
        "table.md": _table_page(policy, today, current, directory_urls),
        "history.md": _history_page(policy, today, history, directory_urls),
        "codes/index.md": _codes_index(policy, today),
        "modifiers.md": _modifiers_page(policy),
        "reasons.md": _reasons_page(policy, today, reasons_doc),
        "faq.md": _faq_page(policy, faqs),
        "changelog.md": _changelog_page(policy),
        "sources.md": _sources_page(policy),
        "downloads.md": _downloads_page(policy, today, current),
        "authors/contributing.md": contributing_page(contributing, docs_pages, schemas),
        "authors/schema/index.md": schema_index(dict(schemas), FILE_KINDS),
        "authors/cli.md": _cli_page(),
    }
    for code in policy.views[policy.latest.id]:
        pages[f"codes/{code}.md"] = _code_page(policy, code, today, faqs, directory_urls)
    for name, doc in schemas.items():
        pages[f"authors/schema/{name}.md"] = schema_page(name, doc, FILE_KINDS)
    for fmt in ("csv", "xlsx", "json"):
        pages[f"{DOWNLOAD_STEM}.{fmt}"] = export_current(policy, today, fmt)
        pages[f"{HISTORY_STEM}.{fmt}"] = export_history(policy, fmt)
    pages.update(check_files(policy))
    return pages
