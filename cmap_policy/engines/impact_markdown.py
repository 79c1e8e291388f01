"""The impact report (``impact.ImpactReport.as_dict``) as Markdown, for a pull-request comment or a terminal.

Kept apart from the comparison so that the counting stays arrays and the wording stays here.
"""

from __future__ import annotations

from typing import Any

_OUTCOME_WORDS = {"payable": "payable", "not_payable": "not payable", "undetermined": "undetermined",
                  "not_telehealth": "not telehealth"}


def _words(outcome: str) -> str:
    return _OUTCOME_WORDS.get(outcome, outcome)


def _money(value: float | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def _side(side: dict[str, Any]) -> str:
    return f"{side['label']} (release {side['release']}, policy hash `{str(side['policy_hash'])[:12]}`)"


def _example(e: dict[str, Any]) -> str:
    ids = ", ".join(f"{k} {e[k]}" for k in ("line_id", "claim_id") if e.get(k))
    before = " ".join(e["before"]["reasons"]) or "no reason"
    after = " ".join(e["after"]["reasons"]) or "no reason"
    return (f"line {e['line']}{f' ({ids})' if ids else ''}: {e['code']} on {e['date']}: "
            f"{before} → {after}")


def render_markdown(d: dict[str, Any]) -> str:
    lines = d["lines"]
    out = [f"## Impact on the claim lines of `{d['file']}`", "",
           f"From {_side(d['base'])} to {_side(d['head'])}.", "",
           f"- **{lines['read']:,}** lines read: {lines['compared']:,} decided under both, "
           f"{lines['errors']:,} malformed",
           f"- **{lines['outcome_changed']:,}** change outcome; {lines['reasons_changed_only']:,} keep their outcome "
           f"with other reasons; {lines['unchanged']:,} unchanged"]
    if d["amount"] is not None:
        a = d["amount"]
        out.append(f"- billed amounts from the `{a['column']}` column: {a['lines_with_amount']:,} lines have one"
                   + (f", {a['unread']:,} could not be read as a number (left out of the sums)" if a["unread"] else ""))
    out.append("")
    if d["header_error"]:
        out += [f"**The file's header cannot be read:** {d['header_error']}", ""]
    if d["transitions"]:
        money = d["amount"] is not None
        out += ["### Transitions", "", "| From | To | Lines | " + ("Billed amount | " if money else "") + "Codes |",
                "|---|---|---:|" + ("---:|" if money else "") + "---|"]
        for t in d["transitions"]:
            codes = ", ".join(f"{c} ({n:,})" for c, n in list(t["by_code"].items())[:10])
            more = f" and {len(t['by_code']) - 10} more" if len(t["by_code"]) > 10 else ""
            out.append(f"| {_words(t['from'])} | {_words(t['to'])} | {t['lines']:,} | "
                       + (f"{_money(t['amount'])} | " if money else "") + f"{codes}{more} |")
        out.append("")
        for t in d["transitions"]:
            out += [f"**{_words(t['from'])} → {_words(t['to'])}**, for example:", ""]
            out += [f"- {_example(e)}" for e in t["examples"]]
            out.append("")
    reasons = d["reasons"]
    if reasons["appeared"] or reasons["gone"]:
        out += ["### Reasons", "", "| Reason | Lines where it appears | Lines where it goes away |", "|---|---:|---:|"]
        for r in sorted(set(reasons["appeared"]) | set(reasons["gone"])):
            out.append(f"| `{r}` | {reasons['appeared'].get(r, 0):,} | {reasons['gone'].get(r, 0):,} |")
        out.append("")
    if d["by_code"]:
        out += ["### By code", "", "| Code | Outcome changes | Other reasons only | Transitions |",
                "|---|---:|---:|---|"]
        for c in d["by_code"][:50]:
            moves = "; ".join(f"{k.replace('_', ' ')}: {n:,}" for k, n in c["transitions"].items())
            out.append(f"| {c['code']} | {c['outcome_changed']:,} | {c['reasons_changed']:,} | {moves} |")
        if len(d["by_code"]) > 50:
            out.append(f"\n{len(d['by_code']) - 50} more codes: `--format json` lists them all.")
        out.append("")
    if not d["transitions"] and not d["by_code"]:
        out += ["No line of the file changes its decision.", ""]
    if d["errors"]:
        out += ["### Malformed lines", "", f"The first {len(d['errors'])} of {lines['errors']:,}:", ""]
        out += [f"- line {e['line']}" + (f", field `{e['field']}`" if e.get("field") else "") + f": {e['error']}"
                for e in d["errors"]]
        out.append("")
    return "\n".join(out)
