"""``cmap-policy show`` and ``validate``: look at the policy, a code's rows or a tree's problems."""

from __future__ import annotations

import datetime as dt
import json
import sys

import click

from .. import api
from ..model import Period, Policy
from ..resources import working_policy_dir
from .options import EXIT_ERRORS, check_release, date_option, load_or_exit, policy_option, release_option


@click.command("validate")
@click.argument("path", required=False, type=click.Path(file_okay=False), metavar="[PATH]")
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one problem per line with a hint; json: a list of problem objects.")
def validate_command(path: str | None, out_format: str) -> None:
    """Check a policy tree against the schemas and the meaning checks (default PATH: the policy/ folder of the
    git checkout you are in, else the bundled policy).

    Every problem is reported as FILE:LINE:COL: /json/pointer: message, with a hint,
    the most useful first. Exits 1 when there is any problem.
    """
    path = path if path is not None else str(working_policy_dir())
    problems = api.validate(path)
    if out_format == "json":
        click.echo(json.dumps([p.as_dict() for p in problems], indent=2))
    else:
        for p in problems:
            click.echo(str(p))
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(EXIT_ERRORS)
    if out_format == "text":
        policy = load_or_exit(path)
        click.echo(f"ok: {len(policy.codes)} codes, {len(policy.releases)} releases, policy hash {policy.hash[:12]}")


@click.command("show")
@click.argument("code")
@date_option("--date", "date_", help_text="Also say which row is in force on this date of service.")
@release_option("As published in this release (see releases.json). Default: the latest.")
@policy_option()
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for programs.")
def show_command(code: str, date_: dt.date | None, release: str | None, policy_path: str | None,
                 out_format: str) -> None:
    """Show the telehealth table rows of CODE: dates, modalities, guideline and source."""
    policy = load_or_exit(policy_path)
    check_release(policy, release)
    report = api.show(code, date=date_, release=release, policy=policy)
    if out_format == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(render_show(report))


def _span_text(start: dt.date | None, end: dt.date | None) -> str:
    if start is None and end is None:
        return "every date"
    if start is None:
        return f"up to {end}"
    return f"{start} to {end}" if end else f"from {start}"


def _era_lines(policy: Policy, start: dt.date | None, end: dt.date | None) -> list[str]:
    """What sources say of every code on some of a gap's dates (the program's era rules), for the gap."""
    out = []
    for r in policy.program.era_rules:
        if (r.end is None or start is None or r.end >= start) and (r.effective is None or end is None
                                                                     or r.effective <= end):
            how = " or ".join(policy.program.modalities[m].name if m in policy.program.modalities
                              else "a line that does not say how" for m in r.modalities)
            out.append(f"    {_span_text(r.effective, r.end)}, any code, {how}: {r.text} [{r.id}]")
    return out


def render_show(report: api.CodeReport) -> str:
    policy = report.policy
    c = policy.codes.get(report.code)
    lines = []
    rel = policy.release(report.release)
    whole = report.whole_table_from
    table = policy.program.official_table
    official = f"The official CMAP Telehealth Table ({table.source.url}) decides." if table else ""
    if whole is None:
        coverage = (f"This data holds only the rows public sources name (release {rel.id} is partial): where they "
                    f"are silent it cannot say. {official}").strip()
    else:
        coverage = f"Release {rel.id} holds the whole table for dates of service from {whole}."
    if c is None or not report.periods:
        if whole is not None and (report.on_date is None or report.on_date >= whole):
            lines.append(f"{report.code} is NOT on the CMAP telehealth table (release {rel.id}, {rel.published}, "
                         f"which holds the whole table from {whole}).")
            lines.append("Only listed codes are payable via telehealth.")
        else:
            lines.append(f"{report.code} is not in this data (release {rel.id}, {rel.published}): no public source it "
                         "holds names the code, so it cannot say whether the code is on the CMAP telehealth table.")
    else:
        lines.append(f"{c.code} ({c.system}) {c.description}")
        lines.append(f"Category: {policy.program.categories[c.category].name}")
        lines.append(f"As published in release {rel.id} ({rel.published}):")
        before: Period | None = None
        for span in report.spans:
            lines.append("")
            p, before = span.period, span.period if span.period is not None else before
            if p is None:
                # a known gap: the row before it says the code left the table, or the release holds it all then
                left = before is not None and before.removed
                what = ("no public source for these dates: the official table decides" if not span.known else
                        "not on the table (the source of the row before says the code left it)" if left else
                        "not on the table (the release holds the whole table then)")
                lines.append(f"  {_span_text(span.start, span.end)}: {what}")
                lines += _era_lines(policy, span.start, span.end)
                continue
            start = str(p.effective) if p.start_known else \
                f"{p.effective} (in force by then; its real start is not known)"
            dates = f"{start} to {p.end}" if p.end else f"from {start}, no end date"
            if p.permitted:
                lines.append(f"  {dates}: PAYABLE via telehealth by {' or '.join(p.modalities)}")
                if p.undetermined_modalities:
                    lines.append(f"    The sources are silent on {' and '.join(p.undetermined_modalities)}: "
                                 "such a line is undetermined.")
            else:
                lines.append(f"  {dates}: listed as NOT PERMITTED via telehealth")
            if p.revenue_center_codes:
                lines.append(f"    Revenue center codes: {', '.join(p.revenue_center_codes)}")
            lines.append(f"    Guideline: {p.guideline}")
            for lim in p.limits:
                lines.append(f"    Limit ({lim.kind}): {lim.guideline}")
            cite = p.citation
            sect = f", {cite.section}" if cite.section else ""
            lines.append(f"    Source: {cite.source.title}{sect} [{cite.source.id}] {cite.source.url}")
            if cite.source.kind == "official-table":
                lines.append("    This row comes from the official CMAP telehealth table.")
            elif cite.source.secondary:
                lines.append("    This row comes from a SECONDARY source (a third party's reading of a DSS "
                             "document), not from DSS itself: check it against the official table.")
            if p.dates_note:
                lines.append(f"    Dates: {p.dates_note}")
            lines.append(f"    Introduced in {p.introduced_in}" + (f"; ended in {p.ended_in}" if p.ended_in else ""))
        if report.on_date is not None:
            lines.append("")
            on = report.span_on(report.on_date)
            if report.in_force is not None:
                lines.append(f"On {report.on_date} the row in force is the one from {report.in_force.effective}.")
            elif on is not None and on.known:
                lines.append(f"On {report.on_date} no row of {c.code} is in force: it is not on the table then.")
            else:
                lines.append(f"On {report.on_date} no public source this data holds covers {c.code}: the official "
                             "table decides.")
    lines.append("")
    lines.append(coverage)
    lines.append(f"Authority: {policy.program.authority}")
    lines.append(f"Policy hash {policy.hash[:12]}")
    return "\n".join(lines)
