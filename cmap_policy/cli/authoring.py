"""The authoring commands: fmt, diff, changelog, release new, code add/end/set.

Each is a thin layer over the function of the same name in ``cmap_policy.authoring``: ``fmt``,
``diff``, ``changelog`` and ``edit``. This module is imported only when one of them runs.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..authoring.changelog import changelog, render_markdown
from ..authoring.diff import diff, diff_sides
from ..authoring.edit import code_add, code_end, code_set, release_new
from ..authoring.fmt import fmt, shown
from ..errors import DiffError, EditError, FmtError, PolicyError, UnknownReleaseError
from .options import (
    CHECKOUT_POLICY_HELP,
    EXIT_ERRORS,
    WORKING_POLICY_HELP,
    date_option,
    policy_option,
    report_policy_error,
)

T = TypeVar("T")


@click.command("fmt")
@click.option("--check", is_flag=True, help="Change nothing: list the files that are not in canonical form, exit 1.")
@click.argument("path", required=False, type=click.Path(exists=False), metavar="[PATH]")
def fmt_command(check: bool, path: str | None) -> None:
    """Write every policy file in one canonical form (default PATH: the policy folder).

    Keys follow the order of the JSON Schema ($schema first), two-space indentation, set-like lists
    sorted (releases keep their order), a newline at the end. The policy hash never changes.
    """
    try:
        result = fmt(path, check=check)
    except FmtError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_ERRORS)
    for err_text in result.errors:
        click.echo(f"error: {err_text}", err=True)
    for file in result.changed:
        click.echo(f"{'would reformat' if check else 'reformatted'} {shown(file)}")
    if check and result.changed:
        click.echo(f"{len(result.changed)} of {result.checked} file(s) are not in canonical form; run "
                   f"`cmap-policy fmt{' ' + path if path else ''}` to fix them", err=True)
    elif not result.changed and not result.errors:
        click.echo(f"ok: {result.checked} file(s) already in canonical form", err=True)
    if result.errors or (check and result.changed):
        sys.exit(EXIT_ERRORS)


@click.command("diff")
@click.argument("base")
@click.argument("head", required=False)
@click.option("--format", "out_format", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="md: Markdown for a pull-request comment; json: for programs.")
@policy_option("The working policy folder: HEAD when HEAD is left out, where release ids are looked up, and "
                "whose git repository revisions are read from. Default: the policy/ folder of the git checkout you "
                "are in (whatever the install mode).")
@click.option("--exit-code", is_flag=True, help="Exit 1 when some claim line's decision changes.")
@click.option("--claims", type=click.Path(dir_okay=False), metavar="FILE",
              help="Instead, decide every line of FILE (any format the batch engine reads) under BASE and HEAD and "
                   "report the lines whose decision changes: by transition and code, reasons that appear or go "
                   "away, example lines, and billed amounts from an `amount` column.")
def diff_command(base: str, head: str | None, out_format: str, policy_path: str | None, exit_code: bool,
                 claims: str | None) -> None:
    """Show what changes from BASE to HEAD: releases, rows and every claim line whose decision flips.

    BASE and HEAD are each a policy folder, a git revision of this repository (read with
    git show; nothing is checked out) or a release id (the policy as published in that release).
    HEAD defaults to the working tree. Prefix with path:, rev: or release: when a name is ambiguous.

    \b
        cmap-policy diff main                      # this branch against main
        cmap-policy diff origin/main --format md   # what the pull-request check posts
        cmap-policy diff PB-2020-14 PB-2023-38     # what a release changed
        cmap-policy diff main --claims claims.csv  # what it does to these claim lines
    """
    if claims is not None:
        try:
            sides = diff_sides(base, head, policy=policy_path)
        except DiffError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_ERRORS)
        from .engines import run_impact

        run_impact(claims, *sides, out_format=out_format, exit_code=exit_code)
    try:
        result = diff(base, head, policy=policy_path)
    except DiffError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_ERRORS)
    if out_format == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(result.to_markdown(), nl=False)
    if exit_code and result.has_decision_changes:
        sys.exit(EXIT_ERRORS)


def _of_working_policy(make: Callable[[], T], release_hint: str) -> T:
    """``make()``: a policy that does not load is reported (exit 1), an unknown release is a usage error."""
    try:
        return make()
    except PolicyError as err:
        report_policy_error(err)
        sys.exit(EXIT_ERRORS)
    except UnknownReleaseError as err:
        raise click.BadParameter(str(err), param_hint=release_hint) from None


@click.command("changelog")
@click.option("--release", default=None, metavar="ID", help="Only this release. Default: every release.")
@click.option("--format", "out_format", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="md: Important-Message style Markdown; json: the change report, one object per release.")
@policy_option(WORKING_POLICY_HELP)
def changelog_command(release: str | None, out_format: str, policy_path: str | None) -> None:
    """What each release added, ended and changed, with dates and citations."""
    report = _of_working_policy(lambda: changelog(release, policy=policy_path), "--release")
    if out_format == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(render_markdown(report), nl=False)


@click.command("notice")
@click.argument("release", metavar="RELEASE")
@click.option("--format", "out_format", type=click.Choice(["md", "html", "json"]), default="md", show_default=True,
              help="md: Markdown; html: a standalone page to print or mail; json: the draft's parts.")
@policy_option(WORKING_POLICY_HELP)
def notice_command(release: str, out_format: str, policy_path: str | None) -> None:
    """Draft the Important Message for RELEASE: a draft for DSS's author, never DSS's own notice.

    What changes for providers, code by code, in plain words; what they must do; the sources; and the
    release's notice_paragraphs (releases.json), word for word.
    """
    from ..authoring.notice import draft_notice, render_html
    from ..authoring.notice import render_markdown as notice_markdown

    notice = _of_working_policy(lambda: draft_notice(release, policy=policy_path), "RELEASE")
    if out_format == "json":
        click.echo(json.dumps(notice.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_html(notice) if out_format == "html" else notice_markdown(notice), nl=False)


def _done(result: Any) -> None:
    for path in result.written:
        click.echo(f"wrote {shown(path)}")
    pol = result.policy
    click.echo(f"ok: {result.message}; the policy is valid ({len(pol.codes)} codes, {len(pol.releases)} releases, "
               f"policy hash {pol.hash[:12]})")
    click.echo("next: `cmap-policy diff main` shows which claim lines change", err=True)


def _run(fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        result = fn(*args, **kwargs)
    except EditError as err:
        click.echo(f"error: {err.message}", err=True)
        for problem in err.problems:
            click.echo(str(problem), err=True)
        click.echo("nothing was written", err=True)
        sys.exit(EXIT_ERRORS)
    _done(result)


@click.group("release")
def release_group() -> None:
    """Start a release (a bulletin, Important Message or dated table)."""


@release_group.command("new")
@click.argument("release_id", metavar="ID")
@date_option("--date", required=True, help_text="The day it was published.")
@click.option("--source", "sources", required=True, multiple=True, metavar="SOURCE",
              help="Id of a source in program.json that the release implements (repeat for several).")
@click.option("--summary", required=True, help="What the release changes, in a sentence or two.")
@date_option("--effective", help_text="First date of service its changes apply to. Default: --date.")
@click.option("--dates-note", help="How the dates were established, when a source does not state them.")
@click.option("--source-title", help="Add the --source to program.json with this title (for a new bulletin).")
@click.option("--source-url", help="Where the new source can be read (with --source-title).")
@click.option("--source-kind", default="bulletin", show_default=True, help="Kind of the new source.")
@click.option("--secondary", is_flag=True, help="The new source is a third party's reading, not DSS itself.")
@click.option("--coverage", type=click.Choice(["partial", "complete"]), default="partial", show_default=True,
              help="partial: the release names only the rows it changes or reads (a bulletin, an Important Message, "
                   "a third party's reading); complete: it holds the whole table (an official spreadsheet).")
@date_option("--covers-from", help_text="With --coverage complete: the first date of service the whole table "
                                        "covers. Default: --effective.")
@policy_option(CHECKOUT_POLICY_HELP)
def release_new_command(release_id: str, date: dt.date, sources: tuple[str, ...], summary: str,
                        effective: dt.date | None, dates_note: str | None, source_title: str | None,
                        source_url: str | None, source_kind: str, secondary: bool, coverage: str,
                        covers_from: dt.date | None, policy_path: str | None) -> None:
    """Add release ID at the end of releases.json."""
    _run(release_new, release_id, date=date, source=sources, summary=summary, effective=effective,
         dates_note=dates_note, source_title=source_title, source_url=source_url, source_kind=source_kind,
         secondary=secondary, coverage=coverage, covers_from=covers_from, policy=policy_path)


@click.group("code")
def code_group() -> None:
    """Add a code to the table, end its row, or change it from a date."""


_modality = click.option("--modality", "modalities", multiple=True, metavar="ID",
                         help="A modality allowed: audio-video or audio-only (repeat for both).")
_release = click.option("--release", required=True, metavar="ID",
                        help="The release that publishes the change (see `cmap-policy release new`).")
_rcc = click.option("--rcc", "rccs", multiple=True, metavar="RCC",
                    help="A revenue center code for institutional claims (repeat for several).")


@code_group.command("add")
@click.argument("code")
@date_option("--effective", required=True, help_text="First date of service of the row.")
@_modality
@_release
@click.option("--source", required=True, metavar="SOURCE", help="Id of the source (program.json) of the row.")
@click.option("--section", help="Where in the source: a section, table row or page.")
@click.option("--guideline", help="The row's policy guideline, in words a biller understands.")
@click.option("--status", type=click.Choice(["permitted", "not-permitted"]), default="permitted", show_default=True,
              help="not-permitted: the table lists the code as not permitted via telehealth.")
@click.option("--system", type=click.Choice(["CPT", "HCPCS"]), help="Default: from the code's shape.")
@click.option("--description", help="A short description in your own words (required for a new code).")
@click.option("--category", help="A category id from program.json (required for a new code).")
@_rcc
@click.option("--dates-note", help="How the dates were established, when the source does not state them.")
@policy_option(CHECKOUT_POLICY_HELP)
def code_add_command(code: str, effective: dt.date, modalities: tuple[str, ...], release: str, source: str,
                     section: str | None, guideline: str | None, status: str, system: str | None,
                     description: str | None, category: str | None, rccs: tuple[str, ...], dates_note: str | None,
                     policy_path: str | None) -> None:
    """Put CODE on the telehealth table from --effective."""
    _run(code_add, code, effective=effective, release=release, source=source, modality=modalities, status=status,
         system=system, description=description, category=category, guideline=guideline, section=section,
         rcc=rccs, dates_note=dates_note, policy=policy_path)


@code_group.command("end")
@click.argument("code")
@date_option("--date", required=True, help_text="The last date of service the row covers.")
@click.option("--removed", is_flag=True,
              help="The source says the code leaves the table on --date: until a later row, a line is not payable. "
                   "Without it, what follows is what later sources say (or, where none does, unknown).")
@_release
@click.option("--dates-note", help="How the end date was established.")
@policy_option(CHECKOUT_POLICY_HELP)
def code_end_command(code: str, date: dt.date, removed: bool, release: str, dates_note: str | None,
                     policy_path: str | None) -> None:
    """End CODE's open row on --date."""
    _run(code_end, code, date=date, release=release, dates_note=dates_note, removed=removed, policy=policy_path)


@code_group.command("set")
@click.argument("code")
@date_option("--effective", required=True,
             help_text="First date of service of the new row; the open row ends the day before.")
@_release
@_modality
@click.option("--status", type=click.Choice(["permitted", "not-permitted"]), default=None,
              help="The new row's status. Default: the open row's.")
@click.option("--guideline", help="The new row's policy guideline.")
@_rcc
@click.option("--no-rcc", is_flag=True, help="The new row has no revenue center codes.")
@click.option("--source", metavar="SOURCE", help="Id of the source of the new row. Default: the open row's.")
@click.option("--section", help="Where in the source.")
@click.option("--clear-limits", is_flag=True, help="The new row has none of the open row's limits.")
@click.option("--dates-note", help="How the dates were established.")
@policy_option(CHECKOUT_POLICY_HELP)
def code_set_command(code: str, effective: dt.date, release: str, modalities: tuple[str, ...], status: str | None,
                     guideline: str | None, rccs: tuple[str, ...], no_rcc: bool, source: str | None,
                     section: str | None, clear_limits: bool, dates_note: str | None, policy_path: str | None) -> None:
    """Change CODE from --effective: a new row that copies the open one, with the changes given."""
    if no_rcc and rccs:
        raise click.UsageError("give --rcc or --no-rcc, not both")
    _run(code_set, code, effective=effective, release=release, modality=modalities or None, status=status,
         guideline=guideline, rcc=() if no_rcc else (rccs or None), source=source, section=section,
         clear_limits=clear_limits, dates_note=dates_note, policy=policy_path)
