"""The ``cmap-policy`` command: a thin layer over ``cmap_policy.api``.

Exit codes: 0 when every line was decided (a denial is a decision), 1 for input
or policy errors, 2 for usage errors.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from . import api
from .errors import LineError, PolicyError
from .explain import explain
from .lines import FIELDS, parse_date
from .loader import load_policy
from .model import Policy

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def _load(policy_path: str | None) -> Policy:
    try:
        return load_policy(policy_path)
    except PolicyError as err:
        for problem in err.problems:
            click.echo(str(problem), err=True)
        click.echo(f"the policy has {len(err.problems)} problem(s); run `cmap-policy validate` for details",
                   err=True)
        sys.exit(EXIT_ERRORS)


def _release(policy: Policy, release: str | None) -> None:
    try:
        policy.release(release)
    except KeyError as err:
        raise click.BadParameter(str(err.args[0]), param_hint="--release") from None


policy_option = click.option(
    "--policy", "policy_path", type=click.Path(file_okay=False), default=None, metavar="DIR",
    help="Policy tree to use (the folder holding program.json, releases.json and codes/). "
         "Default: the bundled CMAP policy.")
release_option = click.option(
    "--release", default=None, metavar="ID",
    help="Decide as the table was published in this release (see releases.json). Default: the latest.")


def _date_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return parse_date(value, param.name or "date")
    except LineError as err:
        raise click.BadParameter(err.message) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="cmap-policy")
def main() -> None:
    """The CMAP (Connecticut Medicaid, HUSKY Health) telehealth policy as code.

    Decide whether a claim line is payable via telehealth, check and show the policy.
    Exit codes: 0 success (every line decided; a denial is a decision), 1 input or
    policy errors, 2 usage errors.
    """


@main.command("eval")
@click.argument("input_file", metavar="[INPUT]", required=False, type=click.Path(allow_dash=True))
@click.option("--code", help="Procedure code of a single line (CPT or HCPCS Level II), e.g. 90791.")
@click.option("--date", "date_", metavar="YYYY-MM-DD", callback=_date_option, help="Date of service of a single line.")
@click.option("--modifier", "modifiers", multiple=True, metavar="MOD",
              help="A modifier of the line (repeat for up to 4), e.g. --modifier 95.")
@click.option("--pos", help="Place of service (two digits), e.g. 11.")
@click.option("--claim-type", type=click.Choice(["professional", "institutional"]), default=None,
              help="Claim type of a single line. Default: professional.")
@click.option("--rcc", help="Revenue center code (institutional claims), e.g. 0900.")
@click.option("--modality", help="State the modality (audio-video, audio-only) instead of or besides modifiers.")
@click.option("--member-age", type=int, help="Member age in whole years.")
@click.option("--provider-type", help="Billing provider type.")
@click.option("--units", type=int, help="Units billed for the day.")
@click.option("--established-patient/--new-patient", default=None,
              help="Whether the member is an established patient of the provider.")
@release_option
@policy_option
@click.option("--input-format", type=click.Choice(["json", "jsonl", "csv", "parquet", "x12"]), default=None,
              help="Format of INPUT. Default: from the file extension, else guessed from the content.")
@click.option("--format", "out_format", type=click.Choice(["jsonl", "json", "table"]), default="jsonl",
              show_default=True, help="jsonl: one JSON decision per line; json: one array; table: for people.")
@click.option("--explain", is_flag=True, help="Explain each decision step by step, in words a biller understands.")
@click.option("-o", "--output", type=click.Path(allow_dash=True), default="-",
              help="Write decisions here instead of standard output.")
@click.option("--engine", type=click.Choice(["auto", "duckdb", "python", "spark"]), default="auto", show_default=True,
              help="duckdb: the batch engine (columnar, for large files); python: the interpreter, line by line; "
                   "spark: Apache Spark, for a Parquet file or directory into a Parquet directory (pip install "
                   "'cmap-policy[spark]'). auto: duckdb when INPUT is a file and -o names a .csv, .jsonl or .parquet "
                   "file.")
@click.option("--errors", "errors_file", type=click.Path(), default=None, metavar="FILE",
              help="Batch engine: write malformed lines here (JSON Lines). Default: OUTPUT's name + .errors.jsonl. "
                   "With --engine spark, a directory of JSON Lines files.")
@click.option("--master", default=None, metavar="URL",
              help="--engine spark: the Spark master (local[4], yarn, spark://host:7077, ...). Default: the one "
                   "spark-submit set, else local[*].")
def eval_command(input_file: str | None, code: str | None, date_: dt.date | None, modifiers: tuple[str, ...],
                 pos: str | None, claim_type: str | None, rcc: str | None, modality: str | None,
                 member_age: int | None, provider_type: str | None, units: int | None,
                 established_patient: bool | None, release: str | None, policy_path: str | None,
                 input_format: str | None, out_format: str, explain: bool, output: str, engine: str,
                 errors_file: str | None, master: str | None) -> None:
    """Decide claim lines: one from options, or every line of INPUT (JSON, JSON Lines or CSV; - for stdin).

    \b
    One line:   cmap-policy eval --code 90791 --date 2026-01-15 --modifier 95 --pos 11
    A file:     cmap-policy eval examples/claims.jsonl --format table
    Line fields (JSON keys or CSV headings):
    """
    policy = _load(policy_path)
    _release(policy, release)
    single = [code, date_, pos, claim_type, rcc, modality, member_age, provider_type, units, established_patient]
    if input_file is not None and (any(v is not None for v in single) or modifiers):
        raise click.UsageError("give either INPUT or the options of one line (--code, --date, ...), not both")
    if input_file is None and code is None and date_ is None and sys.stdin.isatty():
        raise click.UsageError("give INPUT, '-' for standard input, or --code and --date for one line")

    if engine == "spark":
        if explain or out_format != "jsonl":
            raise click.UsageError("--engine spark writes Parquet; --explain and --format table/json need "
                                   "--engine python")
        try:
            from .spark import cli_run as spark_run  # pyspark loads only for --engine spark
        except ImportError as err:
            raise click.UsageError(f"the Spark engine needs {err.name}: pip install 'cmap-policy[spark]'") from None
        sys.exit(spark_run(input_file, output, policy=policy, release=release, errors_file=errors_file,
                           master=master, input_format=input_format))
    if master is not None:
        raise click.UsageError("--master is for --engine spark")
    for path in (input_file, output, errors_file):
        if path not in (None, "-") and Path(path).is_dir():
            raise click.UsageError(f"{path} is a directory: only --engine spark reads and writes directories")

    if _batch_wanted(input_file, output, engine, out_format, explain, input_format):
        try:
            from .batch import cli_run  # DuckDB and pyarrow load only for a batch
        except ImportError as err:
            raise click.UsageError(f"the batch engine needs {err.name}: pip install 'cmap-policy[batch]', "
                                   "or use --engine python") from None

        sys.exit(cli_run(input_file or "", output, policy=policy, release=release, errors_file=errors_file,
                         input_format=input_format))

    if input_file is None and (code is not None or date_ is not None):
        record: dict[str, Any] = {"code": code, "date": date_.isoformat() if date_ else None,
                                  "modifiers": list(modifiers), "pos": pos, "claim_type": claim_type, "rcc": rcc,
                                  "modality": modality, "member_age": member_age, "provider_type": provider_type,
                                  "units": units, "established_patient": established_patient}
        source: Any = [record]
    else:
        source = None if input_file in (None, "-") else input_file
    try:
        results = api.eval_lines(source, policy=policy, release=release, input_format=input_format)
        errors = _write(results, policy, out_format, explain, output, numbered=input_file is not None)
    except BrokenPipeError:
        # the reader (e.g. `| head`) has gone: stop quietly, as other Unix tools do
        sys.stderr.close()
        sys.exit(EXIT_OK)
    except OSError as err:
        click.echo(f"error: cannot read or write: {err}", err=True)
        sys.exit(EXIT_ERRORS)
    except UnicodeDecodeError as err:
        click.echo(f"error: the input is not UTF-8 text (byte {err.start})", err=True)
        sys.exit(EXIT_ERRORS)
    if errors:
        click.echo(f"{errors} line(s) could not be decided; every other line was", err=True)
        sys.exit(EXIT_ERRORS)


def _batch_wanted(input_file: str | None, output: str, engine: str, out_format: str, explain: bool,
                  input_format: str | None) -> bool:
    if input_file in (None, "-") or engine == "python":
        if engine == "duckdb":
            raise click.UsageError("--engine duckdb reads a file: give INPUT")
        return False
    parquet = input_format == "parquet" or str(input_file).lower().endswith((".parquet", ".pq"))
    if engine == "duckdb" or parquet:
        if explain or out_format != "jsonl":
            raise click.UsageError("the batch engine writes JSON Lines, CSV or Parquet (by -o's extension); "
                                   "--explain and --format table/json need --engine python")
        return True
    to_file = output != "-" and output.lower().endswith((".csv", ".jsonl", ".ndjson", ".parquet", ".pq"))
    return to_file and not explain and out_format == "jsonl"


eval_command.help = (eval_command.help or "") + "\n\n\b\n" + "\n".join(
    f"  {name:<20} {text}" for name, text in FIELDS.items())


def _write(results: Any, policy: Policy, out_format: str, do_explain: bool, output: str, *, numbered: bool) -> int:
    errors = 0
    out = click.open_file(output, "w", encoding="utf-8")
    rows: list[dict[str, Any]] = []
    first_table = True
    with out:
        for res in results:
            if res.error is not None:
                errors += 1
                click.echo(f"error: {res.error}", err=True)
                if out_format == "table":
                    continue
            if do_explain and res.decision is not None and res.line is not None:
                if numbered:
                    out.write(f"--- line {res.number} ---\n")
                out.write(explain(policy, res.line, res.decision) + "\n\n")
                continue
            record = res.as_dict()
            if out_format == "jsonl":
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            elif out_format == "json":
                rows.append(record)
            else:
                if first_table:
                    out.write(f"{'LINE':>5}  {'CODE':<6} {'DATE':<10}  {'OUTCOME':<14} REASONS\n")
                    first_table = False
                reasons = ", ".join(r["code"] for r in record["reasons"])
                out.write(f"{res.number:>5}  {record['code']:<6} {record['date']:<10}  {record['outcome']:<14} "
                          f"{reasons}\n")
        if out_format == "json" and not do_explain:
            out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    return errors


@main.command("validate")
@click.argument("path", required=False, type=click.Path(file_okay=False), metavar="[PATH]")
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one problem per line with a hint; json: a list of problem objects.")
def validate_command(path: str | None, out_format: str) -> None:
    """Check a policy tree (default: the bundled policy) against the schemas and the meaning checks.

    Every problem is reported as FILE:LINE:COL: /json/pointer: message, with a hint,
    the most useful first. Exits 1 when there is any problem.
    """
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
        policy = load_policy(path)
        click.echo(f"ok: {len(policy.codes)} codes, {len(policy.releases)} releases, policy hash {policy.hash[:12]}")


@main.command("show")
@click.argument("code")
@click.option("--date", "date_", metavar="YYYY-MM-DD", callback=_date_option,
              help="Also say which row is in force on this date of service.")
@release_option
@policy_option
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for programs.")
def show_command(code: str, date_: dt.date | None, release: str | None, policy_path: str | None,
                 out_format: str) -> None:
    """Show the telehealth table rows of CODE: dates, modalities, guideline and source."""
    policy = _load(policy_path)
    _release(policy, release)
    report = api.show(code, date=date_, release=release, policy=policy)
    if out_format == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(render_show(report))


def render_show(report: api.CodeReport) -> str:
    policy = report.policy
    c = policy.codes.get(report.code)
    lines = []
    rel = policy.release(report.release)
    if c is None or not report.periods:
        lines.append(f"{report.code} is NOT on the CMAP telehealth table (release {rel.id}, {rel.published}).")
        lines.append("Only listed codes are payable via telehealth.")
    else:
        lines.append(f"{c.code} ({c.system}) {c.description}")
        lines.append(f"Category: {policy.program.categories[c.category].name}")
        lines.append(f"As published in release {rel.id} ({rel.published}):")
        for p in report.periods:
            span = f"{p.effective} to {p.end}" if p.end else f"from {p.effective}, no end date"
            lines.append("")
            if p.permitted:
                lines.append(f"  {span}: PAYABLE via telehealth by {' or '.join(p.modalities)}")
            else:
                lines.append(f"  {span}: listed as NOT PERMITTED via telehealth")
            if p.revenue_center_codes:
                lines.append(f"    Revenue center codes: {', '.join(p.revenue_center_codes)}")
            lines.append(f"    Guideline: {p.guideline}")
            for lim in p.limits:
                lines.append(f"    Limit ({lim.kind}): {lim.guideline}")
            cite = p.citation
            sect = f", {cite.section}" if cite.section else ""
            lines.append(f"    Source: {cite.source.title}{sect} [{cite.source.id}]")
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
            if report.in_force is not None:
                lines.append(f"On {report.on_date} the row in force is the one from {report.in_force.effective}.")
            else:
                lines.append(f"On {report.on_date} no row of {c.code} is in force.")
    lines.append("")
    lines.append(f"Authority: {policy.program.authority}")
    lines.append(f"Policy hash {policy.hash[:12]}")
    return "\n".join(lines)


from . import cli_spec  # noqa: E402,F401  (registers `cmap-policy test`; it lives in its own module)
from .cli_authoring import add_authoring_commands  # noqa: E402  (fmt, diff, changelog, release, code)
from .cli_table import add_table_commands  # noqa: E402  (import, export, synthetic)

add_authoring_commands(main)
add_table_commands(main)
