"""The site's reference pages: modifiers and places of service, reason codes, FAQs, changelog, sources,
downloads and the CLI reference. Each is one function of the policy (and what it needs besides), returning
Markdown; ``pages.generate_pages`` puts them at their paths.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from html import escape as html_escape

from ..authoring.changelog import change_report, release_entry, release_line, release_name, render_markdown
from ..load.faq import Faq
from ..model import Outcome, Policy
from ..reasons import CARC_SOURCE, REASONS
from .examples import reason_examples
from .feeds import since_block, subscribe_links
from .fragments import billing_note, cite_md, dates, decision_md, kind_html, md, outcome_html, rel_link
from .table import MODALITY_LABELS, Row, all_rows
from .widgets import UNDECIDABLE_ANCHOR

DOWNLOAD_STEM = "downloads/cmap-telehealth-table"
HISTORY_STEM = "downloads/cmap-telehealth-table-history"
# the table as in force from each day its rows change: the table page's downloads follow the date picked
EPOCH_STEM = "downloads/on/cmap-telehealth-table-"


def modifiers_page(policy: Policy) -> str:
    prog = policy.program
    page = "modifiers.md"
    out = ["---", "title: Modifiers and places of service", "---", "",
           "# Modifiers and places of service", "",
           "A telehealth line says **how** the service was delivered with a modifier, and **where** the visit "
           "would have happened in person with the place of service.", "",
           billing_note(policy, page), "",
           "## Modifiers", "",
           "| Modifier | What it signals | Modality | In the code set | Claim types | Note | Source |",
           "|---|---|---|---|---|---|---|"]
    for m in prog.modifiers.values():
        if not m.marks_telehealth:
            modality = "none: it does not make a line telehealth"
        else:
            modality = MODALITY_LABELS.get(m.modality, m.modality) if m.modality else "none: add 95 or 93"
        types = ", ".join(f"{prog.claim_types[t].name} ({prog.claim_types[t].transaction})" for t in m.claim_types)
        out.append(f"| **{m.code}** | {md(m.meaning)} | {modality} | {dates(m.effective, m.end)} | {types} | "
                   f"{md(m.note)} | {cite_md(m.citation, page)} |")
    out += ["", "## Places of service", "",
            "| Place of service | Name | Marks telehealth | In the code set | Note | Source |",
            "|---|---|---|---|---|---|"]
    for pos in prog.places_of_service.values():
        out.append(f"| **{pos.code}** | {md(pos.name)} | {'yes' if pos.marks_telehealth else 'no'} | "
                   f"{dates(pos.effective, pos.end)} | {md(pos.note)} | {cite_md(pos.citation, page)} |")
    guidance = [(pos, g) for pos in prog.places_of_service.values() for g in pos.guidance]
    if guidance:
        out += ["", "## Billing guidance", "",
                "What sources say to put on the claim. Guidance of the kind *bill it this way* adds a warning to a "
                "decision and never changes it; only a source that says such lines are denied denies them.", "",
                "| Place of service | Guidance | Kind | Applies | Source |", "|---|---|---|---|---|"]
        for pos, g in guidance:
            if g.start_known or g.effective is None:
                since = dates(g.effective, g.end)
            else:
                since = f"in force by {g.effective} (its real start is not known)" + (f" to {g.end}" if g.end else "")
            kind = "denial" if g.kind == "deny" else "warning: the decision is unchanged"
            out.append(f"| **{pos.code}** | {md(g.text)} | {kind} | {since} | {cite_md(g.citation, page)} |")
    out += ["", "## Modalities", "", "| Modality | What it is | Covered | Source |", "|---|---|---|---|"]
    coverage = {"all-listed-codes": "for every code whose row lists it",
                "where-dss-specifies": "only where the table lists it for the code",
                "not-covered": "no"}
    for mod in prog.modalities.values():
        out.append(f"| **{md(mod.name)}** | {md(mod.description)} | {coverage.get(mod.coverage, mod.coverage)} | "
                   f"{cite_md(mod.citation, page)} |")
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
        out.append(f"- {md(a.text)}{scope} From {a.effective}{until}. {cite_md(a.citation, page)}")
    return "\n".join(out) + "\n"


def reasons_page(policy: Policy, today: dt.date, doc: str | None) -> str:
    examples = reason_examples(policy, today)
    outcomes = "\n".join(f"- {outcome_html(o)}: {md(what)}" for o, what in (
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
           f"({md(CARC_SOURCE)}). Each example below is decided by the engine itself against release "
           f"{policy.latest.id}.", "", "A decision has one of four outcomes:", "", outcomes, "",
           "| Reason | Kind | CARC | Meaning |", "|---|---|---|---|"]
    for r in REASONS.values():
        out.append(f"| [{r.code}](#{r.code.lower()}) | {kind_html(r.kind, short=True)} | {r.carc or '—'} | "
                   f"{md(r.meaning)} |")
    for r in REASONS.values():
        out += ["", f"## {r.code} {{#{r.code.lower()}}}", "",
                kind_html(r.kind) + (f" · CARC **{r.carc}**" if r.carc else "") + f". {md(r.meaning)}", ""]
        ex = examples.get(r.code)
        if ex is None:
            out.append(why_no_example(policy, r.code))
        else:
            out.append("Example:\n\n" + decision_md(ex, policy))
    if doc:
        body = re.sub(r"\A\s*# [^\n]*\n", "", doc)
        out += ["", "## How the kinds make the outcome, and why each CARC {#why}", "",
                re.sub(r"^## ", "### ", body, flags=re.M)]
    return "\n".join(out) + "\n"


LIMIT_KINDS = {"AGE_OUTSIDE_LIMIT": "age", "PROVIDER_TYPE_NOT_ALLOWED": "provider-type",
                "ESTABLISHED_PATIENT_REQUIRED": "established-patient", "UNITS_OVER_LIMIT": "units-per-day"}


def why_no_example(policy: Policy, reason: str) -> str:
    """Why no line gets ``reason`` under this policy, said from the data rather than assumed."""
    periods = [p for cv in policy.views[policy.latest.id].values() for p in cv.periods]
    prog = policy.program
    if reason in ("RCC_REQUIRED", "RCC_NOT_ALLOWED") and not any(p.revenue_center_codes for p in periods):
        why = "no row of the table lists revenue center codes"
    elif reason in LIMIT_KINDS and not any(lim.kind == LIMIT_KINDS[reason] for p in periods for lim in p.limits):
        why = f"no row of the table has a limit of the kind {LIMIT_KINDS[reason]}"
    elif reason == "MODIFIER_NOT_FOR_CLAIM_TYPE" and all(set(m.claim_types) >= set(prog.claim_types)
                                                          for m in prog.modifiers.values()):
        why = "every telehealth modifier is used on every claim type"
    else:
        why = "none of the lines tried (each row's conforming lines, with one common mistake each) gets it"
    return f"No example: under release {policy.latest.id}, {why}, so no claim line gets this reason today."


def faq_page(policy: Policy, faqs: Sequence[Faq]) -> str:
    page = "faq.md"
    out = ["---", "title: FAQs", "---", "", "# Frequently asked questions", "",
           "Each answer rests on the source it cites, and holds as of the release it names.", ""]
    for f in faqs:
        codes = ", ".join(f"[{c}](codes/{c}.md)" for c in f.codes)
        out += [f"## {md(f.question)} {{#{f.id}}}", "", f.answer, "",
                f"<small>Source: {cite_md(f.citation, page)} · as of release {rel_link(f.release, page)}"
                + (f" · codes: {codes}" if codes else "") + "</small>", ""]
    if not faqs:
        out.append("No FAQs yet: add them under `policy/faq/`.")
    return "\n".join(out) + "\n"


def changelog_page(policy: Policy) -> str:
    """Every release, newest first, each folded under a summary line (its name, date and what it did), with a link
    to its draft notice: the page stays short on a phone, and a link to a release (#<its id in lower case>) opens
    it (cmap-page.js). Above them, the feeds to subscribe to and the "what changed since" box."""
    report = change_report(policy)
    intro = render_markdown([], link_codes=True)
    intro = re.sub(r"\A\s*# [^\n]*\n", "", intro)  # the page has its own title
    sections = []
    for rep in reversed(report):
        body = render_markdown([rep], link_codes=True)
        body = body[body.index("\n## "):].split("\n", 2)[2]  # the release's own part, under the summary instead
        summary = (f'<summary><strong>{html_escape(release_name(rep))}</strong> '
                   f'<span class="cmap-release-line">{html_escape(release_line(rep))}</span></summary>')
        notice = f"[Draft Important Message for {rep['release']}](notices/{rep['release']}.md)"
        sections.append(f'<details class="cmap-release" id="{rep["release"].lower()}" markdown>\n{summary}\n\n'
                        f"{notice}\n\n{body.strip()}\n\n</details>\n")
    entries = [release_entry(rep, i) for i, rep in enumerate(report)]
    return ("---\ntitle: Changelog\nhide:\n  - toc\n---\n\n# Changelog\n\n" + subscribe_links() + "\n\n"
            + intro.strip() + "\n\n"
            + "## What changed since your last visit {#since}\n\n" + since_block(entries) + "\n\n"
            '<p class="cmap-since-nojs">Add <code>?since=YYYY-MM-DD</code> to this page\'s address to see, code by '
            "code, what changed after that date (with JavaScript; your last visit is remembered in this browser "
            "only, and nothing is sent anywhere).</p>\n\n## Every release {#releases}\n\n" + "\n".join(sections))


def sources_page(policy: Policy) -> str:
    prog = policy.program
    out = ["---", "title: Sources", "---", "", "# Sources", "", md(prog.authority), ""]
    for s in prog.sources.values():
        flag = "Secondary source" if s.secondary else "Primary source"
        facts = [f"**{flag}**, {s.kind}"]
        if s.publisher:
            facts.append(md(s.publisher))
        if s.published:
            facts.append(f"published {s.published}")
        where = f"<{s.url}>" if re.match(r"^https?://[^\s<>]+$", s.url) else md(s.url)
        out += [f"## {md(s.title)} {{#{s.id}}}", "", f"`{s.id}` · " + " · ".join(facts), "",
                f"Where: {where}", ""]
        if s.note:
            out += [md(s.note), ""]
    out += ["## Statutes", ""]
    out += [f"- **{md(st.citation)}**: {md(st.requirement)}" for st in prog.statutes]
    out += ["", *_era_rules_md(policy), *_undecidable_md(policy)]
    return "\n".join(out).rstrip("\n") + "\n"


def _era_rules_md(policy: Policy) -> list[str]:
    """What sources say of every code in a stretch of dates: what a decision on those dates cites."""
    rules = policy.program.era_rules
    if not rules:
        return []
    out = ["## What the sources say of every code, by era {#eras}", "",
           "Some sources speak of a stretch of dates and a way of delivery, whatever the code: a decision cites them "
           "by the rule's id. *Denies* means every such line is not payable; *names a category* means the source "
           "names a category of services without its codes, so a line no row decides is undetermined, with this "
           "text; a condition on the line's own fields (age, established patient) denies a line that breaks it.", "",
           "| Rule | Dates of service | Delivered by | What the source says | Source |", "|---|---|---|---|---|"]
    for r in rules:
        when = dates(r.effective, r.end) if r.effective else f"up to {r.end}" if r.end else "always"
        how = ", ".join(MODALITY_LABELS.get(m, "not stated on the line") for m in r.modalities)
        verdict = "Denies." if r.verdict == "deny" else "Names a category."
        limits = "".join(f" Condition: {md(lim.guideline)}" for lim in r.limits)
        out.append(f"| `{r.id}` | {when} | {how} | {verdict} {md(r.text)}{limits} | "
                   f"{cite_md(r.citation, 'sources.md')} |")
    return [*out, ""]


def _undecidable_md(policy: Policy) -> list[str]:
    """The written list of what a claim line cannot decide, and why (the coverage banner names each)."""
    items = policy.program.undecidable
    if not items:
        return []
    out = [f"## What a claim line cannot decide {{#{UNDECIDABLE_ANCHOR}}}", "",
           "The sources raise these questions, but no claim line answers them: a line they touch is undetermined, "
           "or its decision lists them as conditions to meet.", ""]
    for u in items:
        source = f" Source: {cite_md(u.citation, 'sources.md')}." if u.citation is not None else ""
        out += [f"- **{md(u.what)}.** {md(u.why)}{source}"]
    return [*out, ""]


def downloads_page(policy: Policy, today: dt.date, rows: Sequence[Row]) -> str:
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


def cli_page() -> str:
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
