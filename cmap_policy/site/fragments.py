"""Markdown and HTML fragments every page of the site writes the same way: data text made safe, citations and
release links, an outcome in its words and colour, a decided example line, the billing note.

One place for them, so that the home page, the code pages and the reference pages cannot word the same thing
two ways.
"""

from __future__ import annotations

import datetime as dt
import re

from ..explain import describe_line
from ..model import Citation, Outcome, Policy
from .check import OUTCOME_WORDS
from .examples import Example, cli_command
from .table import MODALITY_LABELS


def md(text: str) -> str:
    """Data text made safe to place in Markdown prose: no HTML, no accidental emphasis or links."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def cite_md(c: Citation, page: str, *, flag_secondary: bool = True) -> str:
    """A Markdown citation with a link to the source on the sources page."""
    prefix = "../" * page.count("/")
    section = f", {md(c.section)}" if c.section else ""
    note = f" ({md(c.note)})" if c.note else ""
    flag = " · *secondary source*" if c.source.secondary and flag_secondary else ""
    return f"[{md(c.source.title)}]({prefix}sources.md#{c.source.id}){section}{note}{flag}"


def rel_link(rel_id: str, page: str) -> str:
    prefix = "../" * page.count("/")
    return f"[{rel_id}]({prefix}changelog.md#{rel_id.lower()})"


def outcome_html(outcome: Outcome) -> str:
    """An outcome in its own words and colour, as every decision on the site shows it."""
    return f'<span class="cmap-outcome cmap-outcome-{outcome.value}">{OUTCOME_WORDS[outcome.value]}</span>'


def billing_note(policy: Policy, page: str) -> str:
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


def decision_md(ex: Example, policy: Policy) -> str:
    """A decided example line in a biller's words; its reason codes and the command that decides it are folded
    under "Details for integrators"."""
    d = ex.decision
    reasons = "\n".join(f"- {md(r.message)}" + (f" (claim adjustment reason code {r.carc})" if r.carc else "")
                        + (" (the official table decides)" if r.kind == "undetermined" else "")
                        for r in d.reasons)
    codes = ", ".join(f"`{r.code}`" for r in d.reasons)
    out = f"""<p class="cmap-verdict">{outcome_html(d.outcome)}</p>

Claim line: {md(describe_line(ex.line))}.

{reasons}
"""
    if d.to_confirm:
        out += "\nConfirm before billing (the line does not show it):\n\n" + "\n".join(
            f"- {md(lim.guideline)}" for lim in d.to_confirm) + "\n"
    out += f"""
??? info "Details for integrators"

    Reason codes: {codes}. The same on the command line:

    ```sh
    {cli_command(ex.line)}
    ```
"""
    return out


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


KIND_LABELS = {"deny": "Denial", "undetermined": "Undetermined: the official table decides",
                "warn": "Warning: billing guidance", "info": "Information"}


def dates(effective: dt.date | None, end: dt.date | None) -> str:
    if effective is None and end is None:
        return "no dates given"
    return (f"from {effective}" if effective else "") + (f" to {end}" if end else "")


def kind_html(kind: str, short: bool = False) -> str:
    label = kind if short else KIND_LABELS[kind]
    return f'<span class="cmap-kind cmap-kind-{kind}">{label}</span>'
