"""``cmap-policy import``, ``export`` and ``synthetic``: the table as a spreadsheet, and synthetic policies.

This module is imported only when one of them runs; openpyxl only when a spreadsheet is read or written.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from ..authoring.table import export_table, import_table
from ..errors import TableError
from ..resources import working_policy_dir
from ..testing import synthetic_policy
from .options import (
    CHECKOUT_POLICY_HELP,
    EXIT_ERRORS,
    WORKING_POLICY_HELP,
    check_release,
    date_option,
    fail,
    load_or_exit,
    policy_option,
    release_option,
)


@click.command("import")
@click.argument("table", type=click.Path(exists=True, dir_okay=False), metavar="TABLE.xlsx|TABLE.csv")
@release_option("The release the table is (an id in releases.json; with --date, a new one added last).",
                required=True)
@policy_option(CHECKOUT_POLICY_HELP)
@click.option("--columns", multiple=True, metavar="'HEADING=FIELD,...'",
              help="Map headings the importer does not know to fields (code, description, rcc, effective, end, "
                   "audio_only, guideline, system, category, status, modalities, limits, citation_source, "
                   "citation_section, citation_note, dates_note), or to ignore. Repeatable.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--allow-partial", is_flag=True,
              help="Import the readable rows even when some cannot be read (codes with such rows are left as "
                   "they are).")
@date_option("--date", "date_", help_text="Add --release as a new release, published and effective on this date.")
@click.option("--source", metavar="ID",
              help="The source the rows cite: an id in program.json, or a new one added as the official table. "
                   "Default: the release's first source (for a new release, the release id).")
@click.option("--secondary", is_flag=True,
              help="The table is a third party's copy, not the official table: the release then holds only the rows "
                   "it names (coverage partial), and corrects no row's start.")
@click.option("--coverage", type=click.Choice(["complete", "partial"]), default=None,
              help="What the table holds: complete (the whole table: a code it does not list is not on it) or partial "
                   "(only the rows it names). Default: complete for the official table, partial with --secondary.")
@click.option("--source-url", metavar="URL",
              help="Where a new --source can be read. Default: the address of the official table program.json names.")
@date_option("--covers-from", help_text="The first date of service the official table holds whole (its history may "
                                        "start earlier than the release). Default: the release's effective date.")
@click.option("--category", metavar="ID",
              help="Category of new codes when the table has no Category column. Default: uncategorized "
                   "(added to program.json when needed).")
@click.option("--cpt-descriptions", is_flag=True,
              help="Store the Description column for new CPT codes: only when it is your own words (CPT "
                   "descriptors belong to the AMA). Default: a placeholder asking for one.")
@click.option("--sheet", metavar="NAME", help="The worksheet to read. Default: the first with a code column.")
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for programs.")
def import_command(table: str, release: str, policy_path: str | None, columns: tuple[str, ...], dry_run: bool,
                   allow_partial: bool, date_: dt.date | None, source: str | None, secondary: bool,
                   coverage: str | None, source_url: str | None, covers_from: dt.date | None, category: str | None,
                   cpt_descriptions: bool,
                   sheet: str | None, out_format: str) -> None:
    """Read the official telehealth table (.xlsx or .csv, or an export's .json) into the policy as a release.

    \b
    Columns, as the DSS page describes them (headings matched loosely, case aside):
      Procedure Code, Description, Revenue Center Code, Effective Date, End Date,
      Audio-Only Allowed, Policy Guidelines
    and, if present, the extra columns `cmap-policy export` writes.

    New codes become files; a changed row becomes a new period (the old one ends the
    day before); a code's row missing from the table ends the day before the release
    takes effect. Rows that cannot be read are listed by row number and nothing is
    written unless --allow-partial. Nothing is written if the result would not load.
    Exits 1 when nothing could be written because of errors.
    """

    try:
        result = import_table(Path(table), release=release, policy=policy_path, columns=list(columns),
                              dry_run=dry_run, allow_partial=allow_partial, date=date_, source=source,
                              secondary=secondary, category=category, cpt_descriptions=cpt_descriptions,
                              sheet=sheet, source_url=source_url, covers_from=covers_from, coverage=coverage)
    except TableError as err:
        fail(str(err))
    if out_format == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(result.render())
    if result.blocked:
        sys.exit(EXIT_ERRORS)


@click.command("export")
@date_option("--date", "date_", help_text="The table in force on this date of service (required unless --history).")
@release_option("As published in this release (see releases.json). Default: the latest.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "json"]), default=None,
              help="Default: from the extension of -o, else csv.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write here instead of standard output.")
@click.option("--history", is_flag=True,
              help="Every row of the release, ended ones included (with --date, those starting by then).")
@policy_option(WORKING_POLICY_HELP)
def export_command(date_: dt.date | None, release: str | None, fmt: str | None, output: str, history: bool,
                   policy_path: str | None) -> None:
    """Write the telehealth table as a spreadsheet (csv, xlsx) or json.

    The official table's columns come first (Procedure Code, Description, Revenue
    Center Code, Effective Date, End Date, Audio-Only Allowed, Policy Guidelines),
    then Code System, Category, Status, Modalities, Limits, the citation, notes and
    each row's releases, so that `cmap-policy import` can read it back.

    \b
        cmap-policy export --date 2026-01-05 -o table.xlsx
        cmap-policy export --history --format json
    """

    if date_ is None and not history:
        raise click.UsageError("give --date (the table in force that day) or --history (every row)")
    if fmt is None:
        fmt = {".xlsx": "xlsx", ".json": "json"}.get(Path(output).suffix.lower(), "csv") if output != "-" else "csv"
    if fmt == "xlsx" and output == "-" and sys.stdout.isatty():
        raise click.UsageError("an .xlsx workbook is binary: give -o FILE.xlsx")
    policy = load_or_exit(policy_path if policy_path is not None else str(working_policy_dir()))
    check_release(policy, release)
    try:
        data = export_table(policy, date=date_, release=release, fmt=fmt, history=history)
    except TableError as err:
        fail(str(err))
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(output).write_bytes(data)


@click.command("synthetic")
@click.option("--codes", "n_codes", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="How many codes.")
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed gives the same policy.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="The folder to write the policy tree to (new, or empty).")
def synthetic_command(n_codes: int, seed: int, output: str) -> None:
    """Write a SYNTHETIC policy (not CMAP) for tests and benchmarks: realistic shapes, deterministic by seed."""
    from ..testing.trees import write_tree

    out = Path(output)
    if out.exists() and any(out.iterdir()):
        fail(f"{out} is not empty: give a new folder (nothing is overwritten)")
    write_tree(synthetic_policy(n_codes=n_codes, seed=seed), out)
    click.echo(f"wrote a SYNTHETIC policy of {n_codes} codes (seed {seed}) to {out}; it is not the CMAP policy")


