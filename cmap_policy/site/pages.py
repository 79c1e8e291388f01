"""The pages of the providers' and billers' site, generated from the policy data by one plain function.

``generate_pages(policy, today=...)`` returns every page (Markdown) and download (bytes) by its path
under docs/. Nothing here knows about MkDocs: the hook in ``site.hooks`` only hands the pages over, so a
move to another generator that reads the same mkdocs.yml needs only a script that writes these files
(``site.write``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from ..load.faq import Faq, load_faqs
from ..model import Period, Policy, Release
from ..resources import schema_dir
from . import svg
from .check import FORM_FIELDS, check_files
from .examples import CodeExamples, code_examples
from .feeds import code_feed_path, feed_files, notice_pages, subscribe_links
from .fragments import billing_note, cap, cite_md, decision_md, md, rel_link
from .nav import contributing_page
from .reference import (
    DOWNLOAD_STEM,
    EPOCH_STEM,
    HISTORY_STEM,
    changelog_page,
    cli_page,
    downloads_page,
    faq_page,
    modifiers_page,
    reasons_page,
    sources_page,
)
from .schema_pages import SchemaDoc, load_schemas, schema_index, schema_page
from .table import (
    Row,
    TableOptions,
    all_rows,
    export_current,
    export_history,
    href,
    rows_in_force,
    source_kind,
    table_epochs,
    table_html,
)
from .widgets import (
    check_form,
    claims_form,
    coverage_banner,
    row_allows,
    row_dates,
    status_box,
    status_on,
    timeline_text,
)

Pages = dict[str, "str | bytes"]

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

# {md(policy.program.name)}: telehealth

## Check a claim line {{#check-a-claim-line}}

{check_form(policy, "index.md", directory_urls)}

**Only procedure codes on the CMAP Telehealth Table are payable via telehealth**, in the modalities the
table allows, for dates of service between its effective and end dates. This site is generated from the
policy data of release **{rel.id}** (published {rel.published}); the engine that decides claim lines reads
the same data.

{coverage_banner(policy, "index.md", directory_urls)}

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

{md(policy.program.authority)} See [the sources](sources.md) and, for each row, its citation.
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
column heading to sort; click a code for its history, example claim lines and its FAQs.

{_table_downloads(policy, today)}

{coverage_banner(policy, "table.md", directory_urls)}

{table_html(policy, all_rows(policy), opts, today)}

**RCCs** are revenue center codes: on an institutional claim (UB-04 or 837I) a row with RCCs is payable only with
one of them. {billing_note(policy, "table.md")} Rows marked *secondary source* come from a third party's reading
of the table: check them against the official table. Ended rows are on the [full history](history.md).
"""


def _claims_page(policy: Policy) -> str:
    fields = ", ".join(f"`{f}`" for f in FORM_FIELDS)
    return f"""---
title: Check a whole claim
---

# Check a whole claim

Paste the lines of a claim, or drop a CSV or JSON Lines file of up to 100,000 lines: every line is decided in
this page, with the answers the claim-line checker gives (release **{policy.latest.id}**), and nothing leaves
your computer. You get the number of lines of each outcome, the lines that could not be read and why, and the
decisions as a CSV file in the columns of `cmap-policy eval -o decisions.csv`.

A CSV file starts with a header line naming its columns: {fields}. A line that states its modality, the
member's age, the provider type, units or whether the patient is established is not decided here (those
change the decision, and only the command line reads them): it is listed with the lines not decided. An X12 837
file is read by the command line: `cmap-policy eval claims.837`.

{claims_form()}
"""


def _table_downloads(policy: Policy, today: dt.date) -> str:
    """Download links of the table on the date picked: the script points them at that date's export."""
    epochs = json.dumps([d.isoformat() for d in table_epochs(policy)], separators=(",", ":"))
    links = " · ".join(f'<a href="{DOWNLOAD_STEM}.{fmt}" data-cmap-download="{fmt}">{name}</a>'
                       for fmt, name in (("csv", "CSV"), ("xlsx", "Excel"), ("json", "JSON")))
    history = " · ".join(f'<a href="{HISTORY_STEM}.{fmt}">{name}</a>'
                         for fmt, name in (("csv", "CSV"), ("xlsx", "Excel"), ("json", "JSON")))
    return (f'<p class="cmap-downloads" data-cmap-epochs="{escape(epochs)}" data-cmap-base="{EPOCH_STEM}">'
            f'Download this table ({links}, the rows in force on <span class="cmap-download-date">{today}</span>) '
            f"or the full history ({history}).</p>")


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
        out.append("A line for today that the engine decides as payable:\n\n" + decision_md(ex.payable, policy))
    else:
        out.append("A line sent today, and what the engine decides:\n\n" + decision_md(ex.today, policy))
        if ex.payable is not None:
            found = ex.payable.decision.period
            assert found is not None
            out.append(f"\nA payable line needs a date of service in a permitted row, for example in the row "
                       f"{row_dates(found)}:\n\n" + decision_md(ex.payable, policy))
        else:
            out.append("\nNo line for this code is payable via telehealth: no row of it permits telehealth.\n")
    if ex.audio_only is not None:
        out.append("\nBy telephone (audio-only), which a row of this code allows:\n\n"
                   + decision_md(ex.audio_only, policy))
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
code_feed: {code_feed_path(code)}
---

# {code}: {md(c.description)}

{status_box(policy, code, today)}

{c.system} code · {md(category)} · <a href="{table_link}">show in the table</a>

{subscribe_links(code)}

{coverage_banner(policy, page, directory_urls)}
"""]
    if c.note:
        sections.append(md(c.note) + "\n")
    sections.append(f"""## Check a claim line {{#check-a-claim-line}}

{check_form(policy, page, directory_urls, code)}

## Periods

<figure class="cmap-figure" data-search-exclude>
{svg.timeline_svg(policy, code, span, today, title=f"Periods of {code} on the telehealth table")}
</figure>

{timeline_text(policy, code)}
""")
    for p in reversed(periods):
        key, label = source_kind(p.citation.source)
        lines = [f"### {cap(row_dates(p))}", "",
                 f"- **Status:** {row_allows(policy, p)}"]
        if p.revenue_center_codes:
            lines.append(f"- **Revenue center codes** (institutional claims): {', '.join(p.revenue_center_codes)}")
        lines.append(f"- **Guideline:** {md(p.guideline)}")
        lines += [f"- **Limit** ({lim.kind}): {md(lim.guideline)}" for lim in p.limits]
        cite = cite_md(p.citation, page, flag_secondary=False)
        lines.append(f'- **Source:** {cite} <span class="cmap-src cmap-src-{key}">{label}</span>')
        if p.dates_note:
            lines.append(f"- **Dates:** {md(p.dates_note)}")
        intro = f"- **Introduced in** {rel_link(p.introduced_in, page)}"
        if p.ended_in:
            intro += f"; **ended in** {rel_link(p.ended_in, page)}"
        lines.append(intro)
        sections.append("\n".join(lines) + "\n")
    sections += _examples_md(policy, ex)
    touching = _touching(policy, periods)
    sections.append("## Releases that touched it\n\n" + "\n".join(
        f"- {rel_link(rel.id, page)} (published {rel.published}): " + "; ".join(what)
        for rel, what in touching) + "\n")
    related = [f for f in faqs if code in f.codes]
    if related:
        sections.append("## FAQs\n\n" + "\n".join(f"- [{md(f.question)}](../faq.md#{f.id})" for f in related)
                        + "\n")
    return "\n".join(sections)


def _codes_index(policy: Policy, today: dt.date) -> str:
    view = policy.views[policy.latest.id]
    lines = ["---", "title: Codes", "---", "", "# Codes", "",
             f"Every code the table has listed, with its status on {today}, when this site was built (each code's "
             "page follows your date). Each page has the code's full history.",
             "", f"| Code | System | Description | On {today} |", "|---|---|---|---|"]
    for code, cv in view.items():
        state, title = status_on(policy, code, today)
        lines.append(f"| [{code}]({code}.md) | {cv.code.system} | {md(cv.code.description)} | "
                     f'<span class="cmap-state-{state}">{md(title)}</span> |')
    return "\n".join(lines) + "\n"


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
        "claims.md": _claims_page(policy),
        "history.md": _history_page(policy, today, history, directory_urls),
        "codes/index.md": _codes_index(policy, today),
        "modifiers.md": modifiers_page(policy),
        "reasons.md": reasons_page(policy, today, reasons_doc),
        "faq.md": faq_page(policy, faqs),
        "changelog.md": changelog_page(policy),
        "sources.md": sources_page(policy),
        "downloads.md": downloads_page(policy, today, current),
        "authors/contributing.md": contributing_page(contributing, docs_pages, schemas),
        "authors/schema/index.md": schema_index(dict(schemas), FILE_KINDS),
        "authors/cli.md": cli_page(),
    }
    for code in policy.views[policy.latest.id]:
        pages[f"codes/{code}.md"] = _code_page(policy, code, today, faqs, directory_urls)
    for name, doc in schemas.items():
        pages[f"authors/schema/{name}.md"] = schema_page(name, doc, FILE_KINDS)
    for fmt in ("csv", "xlsx", "json"):
        pages[f"{DOWNLOAD_STEM}.{fmt}"] = export_current(policy, today, fmt)
        pages[f"{HISTORY_STEM}.{fmt}"] = export_history(policy, fmt)
        for day in table_epochs(policy):
            pages[f"{EPOCH_STEM}{day}.{fmt}"] = export_current(policy, day, fmt)
    pages.update(check_files(policy))
    pages.update(feed_files(policy, directory_urls=directory_urls))
    pages.update(notice_pages(policy))
    return pages
