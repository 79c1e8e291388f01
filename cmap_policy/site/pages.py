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

from ..authoring.changelog import change_report, render_markdown
from ..explain import describe_line
from ..load.faq import Faq, load_faqs
from ..model import Citation, Outcome, Period, Policy, Release
from ..reasons import CARC_SOURCE, REASONS
from ..resources import schema_dir
from . import svg
from .examples import CodeExamples, Example, cli_command, code_examples, reason_examples
from .nav import contributing_page
from .schema_pages import SchemaDoc, load_schemas, schema_index, schema_page
from .table import (
    MODALITY_LABELS,
    Row,
    TableOptions,
    all_rows,
    export_current,
    href,
    rows_in_force,
    source_kind,
    table_html,
)

Pages = dict[str, "str | bytes"]

DOWNLOAD_STEM = "downloads/cmap-telehealth-table"
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


def _span(p: Period) -> str:
    return f"{p.effective} to {p.end}" if p.end else f"from {p.effective}, no end date"


def _allows(p: Period) -> str:
    if not p.permitted:
        return "not permitted via telehealth"
    ordered = sorted(p.modalities, key=lambda m: (m != "audio-video", m))
    return "payable via telehealth by " + " or ".join(MODALITY_LABELS.get(m, m).lower() for m in ordered)


# --- pages -----------------------------------------------------------------------------------------------

def _home(policy: Policy, today: dt.date, rows: Sequence[Row]) -> str:
    rel = policy.latest
    span = svg.policy_span(policy, today)
    steps = svg.in_force_steps(policy)
    permitted = sum(1 for r in rows if r.period.permitted)
    audio_only = sum(1 for r in rows if "audio-only" in r.period.modalities)
    not_permitted = len(rows) - permitted
    step_rows = "\n".join(f"| {s.day} | {s.counts['audio-video']} | {s.counts['audio-only']} | "
                          f"{s.counts['not-permitted']} |" for s in steps)
    return f"""---
title: Home
---

# {_md(policy.program.name)}: telehealth

**Only procedure codes on the CMAP Telehealth Table are payable via telehealth**, in the modalities the
table allows, for dates of service between its effective and end dates. This site is generated from the
policy data of release **{rel.id}** (published {rel.published}); the engine that decides claim lines reads
the same data.

<div class="grid cards" markdown>

-   **[The telehealth table](table.md)**

    ---

    {len(rows)} codes on the table today ({today}): {permitted} payable via telehealth, {audio_only} of them also
    by audio-only; {not_permitted} listed as not permitted. Filter, sort and download it.

-   **[Billing: modifiers and place of service](modifiers.md)**

    ---

    Which modifier signals which modality, and which places of service CMAP does not accept.

-   **[Reason codes](reasons.md)**

    ---

    Why a line is not payable, with the claim adjustment reason code a payer would send.

-   **[What changed](changelog.md)**

    ---

    One section per release of the table, newest first.

</div>

## Codes on the table over time

How many codes the table listed on each date, by modality (a code listed for both modalities counts in both).

<figure class="cmap-figure">
{svg.in_force_chart_svg(steps, span, today)}
</figure>

??? note "The numbers behind the picture"

    | From | Audio-video | Audio-only | Not permitted |
    |---|---|---|---|
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

# Telehealth table in force today

Rows in force on **{today}**, as published in release **{rel.id}** ({rel.published}). A code that is not
listed here is **not payable via telehealth**. Click a column heading to sort; click a code for its history,
an example claim line and its FAQs. Download: [CSV]({DOWNLOAD_STEM}.csv) · [Excel]({DOWNLOAD_STEM}.xlsx) ·
[JSON]({DOWNLOAD_STEM}.json).

{table_html(policy, rows, opts, today)}

**Bill** with modifier 95 or GT for audio-video, 93 (or FQ) for audio-only, and the place of service where the
visit would have happened in person: see [modifiers and places of service](modifiers.md). Rows marked
*secondary source* come from a third party's reading of the table: check them against the official table.
Ended rows are on the [full history](history.md).
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
both included.

{table_html(policy, rows, opts, today)}
"""


def _decision_md(ex: Example, policy: Policy) -> str:
    d = ex.decision
    verdict = {Outcome.PAYABLE: "Payable via telehealth", Outcome.NOT_PAYABLE: "Not payable via telehealth",
               Outcome.NOT_TELEHEALTH: "Not a telehealth line"}[d.outcome]
    reasons = "\n".join(f"- **{r.code}**" + (f" (CARC {r.carc})" if r.carc else "") + f": {_md(r.message)}"
                        for r in d.reasons)
    out = f"""Claim line: {_md(describe_line(ex.line))}.

```sh
{cli_command(ex.line)}
```

**{verdict}.**

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
                what.append(f"added the row {_span(p) if p.ended_in != rel.id else 'from ' + str(p.effective)}: "
                            f"{_allows(p)}")
            if p.ended_in == rel.id:
                what.append(f"ended the row from {p.effective} on {p.end}")
        if what:
            out.append((rel, what))
    return out


def _code_page(policy: Policy, code: str, today: dt.date, faqs: Sequence[Faq], directory_urls: bool) -> str:
    page = f"codes/{code}.md"
    c = policy.codes[code]
    view = policy.views[policy.latest.id][code]
    periods = view.periods
    span = svg.policy_span(policy, today)
    ex: CodeExamples = code_examples(policy, code, today)
    current = next((p for p in periods if p.covers(today)), None)
    if current is None:
        status = f"**Not on the table for {today}**: not payable via telehealth today."
        kind = "warning"
    elif current.permitted:
        status = f"**{_allows(current).capitalize()}** on {today} (row {_span(current)})."
        kind = "success"
    else:
        status = f"**Listed as not permitted via telehealth** on {today} (row {_span(current)})."
        kind = "failure"
    category = policy.program.categories[c.category].name
    table_link = href(page, "table.md", directory_urls) + f"?q={code}"
    sections = [f"""---
title: "{code}: {c.description.replace('"', "'")}"
---

# {code}: {_md(c.description)}

!!! {kind} "Today"

    {status}

{c.system} code · {_md(category)} · <a href="{table_link}">show in the table</a>
"""]
    if c.note:
        sections.append(_md(c.note) + "\n")
    sections.append(f"""## Periods

<figure class="cmap-figure">
{svg.timeline_svg(periods, span, today, title=f"Periods of {code} on the telehealth table")}
</figure>
""")
    for p in reversed(periods):
        key, label = source_kind(p.citation.source)
        lines = [f"### {_span(p).capitalize()}", "",
                 f"- **Status:** {_allows(p)}"]
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
    sections.append("## Example claim line\n")
    if ex.payable is not None and ex.payable is ex.today:
        sections.append("A line for today that the engine decides as payable:\n\n" + _decision_md(ex.payable, policy))
    else:
        sections.append("A line sent today, and what the engine decides:\n\n" + _decision_md(ex.today, policy))
        if ex.payable is not None:
            found = ex.payable.decision.period
            assert found is not None
            sections.append(f"\nA payable line needs a date of service in a permitted period, for example in the "
                            f"period {_span(found)}:\n\n" + _decision_md(ex.payable, policy))
        else:
            sections.append("\nNo line for this code is payable via telehealth: no period of it permits telehealth.\n")
    touching = _touching(policy, periods)
    sections.append("## Releases that touched it\n\n" + "\n".join(
        f"- {_rel_link(rel.id, page)} (published {rel.published}): " + "; ".join(what)
        for rel, what in touching) + "\n")
    related = [f for f in faqs if code in f.codes]
    if related:
        sections.append("## FAQs\n\n" + "\n".join(f"- [{_md(f.question)}](../faq.md#{f.id})" for f in related)
                        + "\n")
    return "\n".join(sections)


def _codes_index(policy: Policy, today: dt.date) -> str:
    view = policy.views[policy.latest.id]
    lines = ["---", "title: Codes", "---", "", "# Codes", "",
             "Every code the table has listed, with what it allows today. Each page has the code's full history.",
             "", "| Code | System | Description | Today |", "|---|---|---|---|"]
    for code, cv in view.items():
        cur = next((p for p in cv.periods if p.covers(today)), None)
        now = _allows(cur) if cur else "not on the table"
        lines.append(f"| [{code}]({code}.md) | {cv.code.system} | {_md(cv.code.description)} | {now} |")
    return "\n".join(lines) + "\n"


def _modifiers_page(policy: Policy) -> str:
    prog = policy.program
    page = "modifiers.md"
    out = ["---", "title: Modifiers and places of service", "---", "",
           "# Modifiers and places of service", "",
           "A telehealth line says **how** the service was delivered with a modifier, and **where** the visit "
           "would have happened in person with the place of service.", "",
           "## Modifiers", "",
           "| Modifier | What it signals | Modality | Claim types | Note | Source |", "|---|---|---|---|---|---|"]
    for m in prog.modifiers.values():
        modality = MODALITY_LABELS.get(m.modality, m.modality) if m.modality else "none: add 95 or 93"
        types = ", ".join(f"{prog.claim_types[t].name} ({prog.claim_types[t].transaction})" for t in m.claim_types)
        out.append(f"| **{m.code}** | {_md(m.meaning)} | {modality} | {types} | {_md(m.note)} | "
                   f"{_cite_md(m.citation, page)} |")
    out += ["", "## Places of service", "",
            "| Place of service | Name | Marks telehealth | Accepted by CMAP | Note | Source |",
            "|---|---|---|---|---|---|"]
    for pos in prog.places_of_service.values():
        out.append(f"| **{pos.code}** | {_md(pos.name)} | {'yes' if pos.marks_telehealth else 'no'} | "
                   f"{'yes' if pos.accepted else '**no**'} | {_md(pos.note)} | {_cite_md(pos.citation, page)} |")
    out += ["", "## Modalities", "", "| Modality | What it is | Covered | Source |", "|---|---|---|---|"]
    coverage = {"all-listed-codes": "for every code whose row lists it",
                "where-dss-specifies": "only where the table lists it for the code",
                "not-covered": "no"}
    for mod in prog.modalities.values():
        out.append(f"| **{_md(mod.name)}** | {_md(mod.description)} | {coverage.get(mod.coverage, mod.coverage)} | "
                   f"{_cite_md(mod.citation, page)} |")
    out += ["", "## Claim types", "", "| Claim type | Transaction |", "|---|---|"]
    out += [f"| {ct.name} | {ct.transaction} |" for ct in prog.claim_types.values()]
    out += ["", "## Conditions the provider must meet", "",
            "A claim line cannot show these, so a decision lists them for the provider to attest to rather than "
            "checking them.", ""]
    for a in prog.attestations:
        scope = f" (for {', '.join(a.modalities)} only)" if a.modalities else ""
        until = f" to {a.end}" if a.end else ""
        out.append(f"- {_md(a.text)}{scope} From {a.effective}{until}. {_cite_md(a.citation, page)}")
    return "\n".join(out) + "\n"


def _reasons_page(policy: Policy, today: dt.date) -> str:
    examples = reason_examples(policy, today)
    out = ["---", "title: Reason codes", "---", "", "# Reason codes", "",
           "Every decision gives all the reasons that apply, each with a stable code that integrators can key on. "
           "A denial also carries the number of the X12 Claim Adjustment Reason Code (CARC) a payer would send "
           f"({_md(CARC_SOURCE)}). Each example below is decided by the engine itself against release "
           f"{policy.latest.id}.", "",
           "| Reason | Kind | CARC | Meaning |", "|---|---|---|---|"]
    for r in REASONS.values():
        out.append(f"| [{r.code}](#{r.code.lower()}) | {r.kind} | {r.carc or '—'} | {_md(r.meaning)} |")
    for r in REASONS.values():
        out += ["", f"## {r.code} {{#{r.code.lower()}}}", "",
                f"**{'Denial' if r.kind == 'deny' else 'Information'}**"
                + (f" · CARC **{r.carc}**" if r.carc else "") + f". {_md(r.meaning)}", ""]
        ex = examples.get(r.code)
        if ex is None:
            out.append(_why_no_example(policy, r.code))
        else:
            out.append("Example:\n\n" + _decision_md(ex, policy))
    return "\n".join(out) + "\n"


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
    body = render_markdown(change_report(policy))
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
        out += [f"## {_md(s.title)} {{#{s.id}}}", "", f"`{s.id}` · " + " · ".join(facts), "",
                f"Where: {_md(s.url)}", ""]
        if s.note:
            out += [_md(s.note), ""]
    out += ["## Statutes", ""]
    out += [f"- **{_md(st.citation)}**: {_md(st.requirement)}" for st in prog.statutes]
    return "\n".join(out) + "\n"


def _downloads_page(policy: Policy, today: dt.date, rows: Sequence[Row]) -> str:
    rel = policy.latest
    return f"""---
title: Downloads
---

# Downloads

The telehealth table in force on {today}, as published in release {rel.id} ({rel.published}): {len(rows)} rows,
one per code, with the same columns as the [table](table.md).

| File | For |
|---|---|
| [cmap-telehealth-table.csv]({DOWNLOAD_STEM}.csv) | spreadsheets and billing systems (UTF-8, comma-separated) |
| [cmap-telehealth-table.xlsx]({DOWNLOAD_STEM}.xlsx) | Excel |
| [cmap-telehealth-table.json]({DOWNLOAD_STEM}.json) | programs; it also states the release and the policy hash |

Policy hash: `{policy.hash}`. The same data decides claim lines with `cmap-policy eval`; see the
[CLI reference](authors/cli.md).
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

def generate_pages(policy: Policy, *, today: dt.date, faqs: Sequence[Faq] | None = None,
                   schemas: Mapping[str, SchemaDoc] | None = None, contributing: str | None = None,
                   docs_pages: Collection[str] = (), directory_urls: bool = False) -> Pages:
    """Every page and download of the site, by path under docs/: Markdown text or file bytes.

    ``today`` is the day the table is shown for (the build date); ``faqs`` default to the policy's
    ``faq/`` folder and ``schemas`` to the package's schemas; ``contributing`` is CONTRIBUTING.md's text
    and ``docs_pages`` the hand-written pages under docs/ it may link to.
    """
    faqs = load_faqs(policy) if faqs is None else faqs
    schemas = load_schemas(schema_dir()) if schemas is None else schemas
    current = rows_in_force(policy, today)
    history = all_rows(policy)
    pages: Pages = {
        "index.md": _home(policy, today, current),
        "table.md": _table_page(policy, today, current, directory_urls),
        "history.md": _history_page(policy, today, history, directory_urls),
        "codes/index.md": _codes_index(policy, today),
        "modifiers.md": _modifiers_page(policy),
        "reasons.md": _reasons_page(policy, today),
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
    return pages
