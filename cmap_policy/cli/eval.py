"""``cmap-policy eval``: decide one claim line from options, or every line of a file or standard input.

Lines go to the interpreter (``api.eval_lines``), or, for a file written to a file, to the batch
engine or to Spark, which ``cli.engines`` runs; those are imported only when chosen.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import LineError
from ..explain import explain
from ..lines import FIELDS, format_of
from ..model import Policy
from .engines import finish, header_error
from .options import (
    EXIT_ERRORS,
    EXIT_OK,
    WHOLE_NUMBER,
    bundle_options,
    check_bundle_options,
    check_release,
    date_option,
    load_bundle_or_exit,
    load_or_exit,
    policy_option,
    release_option,
)

BATCH_OUTPUTS = ("csv", "jsonl", "parquet")  # what the batch engine writes, by -o's extension


@click.command("eval")
@click.argument("input_file", metavar="[INPUT]", required=False, type=click.Path(allow_dash=True))
@click.option("--code", help="Procedure code of a single line (CPT or HCPCS Level II), e.g. 90791.")
@date_option("--date", "date_", help_text="Date of service of a single line.")
@click.option("--modifier", "modifiers", multiple=True, metavar="MOD",
              help="A modifier of the line (repeat for up to 4), e.g. --modifier 95.")
@click.option("--pos", help="Place of service (two digits), e.g. 11.")
@click.option("--claim-type", type=click.Choice(["professional", "institutional"]), default=None,
              help="Claim type of a single line. Default: professional.")
@click.option("--rcc", help="Revenue center code (institutional claims), e.g. 0900.")
@click.option("--modality", help="State the modality (audio-video, audio-only) instead of or besides modifiers.")
@click.option("--member-age", type=WHOLE_NUMBER, help="Member age in whole years.")
@click.option("--provider-type", help="Billing provider type.")
@click.option("--units", type=WHOLE_NUMBER, help="Units billed for the day.")
@click.option("--established-patient/--new-patient", default=None,
              help="Whether the member is an established patient of the provider.")
@release_option()
@policy_option()
@bundle_options
@click.option("--input-format", type=click.Choice(["json", "jsonl", "csv", "parquet", "x12"]), default=None,
              help="Format of INPUT. Default: from the file extension, else guessed from the content.")
@click.option("--format", "out_format", type=click.Choice(["jsonl", "json", "table"]), default="jsonl",
              show_default=True, help="jsonl: one JSON decision per line; json: one array; table: for people.")
@click.option("--explain", is_flag=True, help="Explain each decision step by step, in words a biller understands.")
@click.option("-o", "--output", type=click.Path(allow_dash=True), default="-",
              help="Write decisions here instead of standard output.")
@click.option("--engine", type=click.Choice(["auto", "batch", "duckdb", "python", "spark"]), default="auto",
              show_default=True,
              help="batch: the batch engine (columnar, for large files; duckdb is its former name); python: the "
                   "interpreter, line by line; "
                   "spark: Apache Spark, for a Parquet file or directory into a Parquet directory (pip install "
                   "'cmap-policy[spark]'). auto: batch when INPUT is a file and -o names a .csv, .jsonl or .parquet "
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
                 bundle_path: str | None, verify_key: str | None, input_format: str | None, out_format: str,
                 explain: bool, output: str, engine: str,
                 errors_file: str | None, master: str | None) -> None:
    """Decide claim lines: one from options, or every line of INPUT (JSON, JSON Lines or CSV; - for stdin).

    \b
    One line:   cmap-policy eval --code 90791 --date 2026-01-15 --modifier 95 --pos 11
    A file:     cmap-policy eval examples/claims.jsonl --format table
    Line fields (JSON keys or CSV headings):
    """
    check_bundle_options(policy_path, bundle_path, verify_key)
    if bundle_path is not None and verify_key is not None:
        policy, key_id = load_bundle_or_exit(bundle_path, verify_key)
        click.echo(f"bundle {bundle_path} verified: signed by key {key_id}, policy hash {policy.hash[:12]}", err=True)
    else:
        policy = load_or_exit(policy_path)
    check_release(policy, release)
    single = [code, date_, pos, claim_type, rcc, modality, member_age, provider_type, units, established_patient]
    if input_file is not None and (any(v is not None for v in single) or modifiers):
        raise click.UsageError("give either INPUT or the options of one line (--code, --date, ...), not both")
    if input_file is None and code is None and date_ is None and sys.stdin.isatty():
        raise click.UsageError("give INPUT, '-' for standard input, or --code and --date for one line")

    if engine == "spark":
        if explain or out_format != "jsonl":
            raise click.UsageError("--engine spark writes Parquet; --explain and --format table/json need "
                                   "--engine python")
        from .engines import run_spark  # pyspark loads only for --engine spark

        run_spark(input_file, output, policy=policy, release=release, errors_file=errors_file, master=master,
                  input_format=input_format)
    if master is not None:
        raise click.UsageError("--master is for --engine spark")
    for path in (input_file, output, errors_file):
        if path not in (None, "-") and Path(path).is_dir():
            raise click.UsageError(f"{path} is a directory: only --engine spark reads and writes directories")

    if _batch_wanted(input_file, output, engine, out_format, explain, input_format):
        from .engines import run_batch  # pyarrow and numpy load only for a batch

        run_batch(input_file or "", output, policy=policy, release=release, errors_file=errors_file,
                  input_format=input_format)

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
        errors, decided = _write(results, policy, out_format, explain, output, numbered=input_file is not None)
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
    if input_file not in (None, "-"):
        finish(decided, errors, str(input_file))
    if source is not None:
        finish(decided, errors, "the options")  # one line, decided or not: never empty
    hint = "" if input_file == "-" else " (give INPUT, '-' for standard input, or --code and --date for one line)"
    finish(decided, errors, f"standard input{hint}")


def _batch_wanted(input_file: str | None, output: str, engine: str, out_format: str, explain: bool,
                  input_format: str | None) -> bool:
    if input_file in (None, "-") or engine == "python":
        if engine in ("batch", "duckdb"):
            raise click.UsageError(f"--engine {engine} reads a file: give INPUT")
        return False
    parquet = (input_format or format_of(str(input_file))) == "parquet"
    if engine in ("batch", "duckdb") or parquet:
        if explain or out_format != "jsonl":
            raise click.UsageError("the batch engine writes JSON Lines, CSV or Parquet (by -o's extension); "
                                   "--explain and --format table/json need --engine python")
        return True
    to_file = output != "-" and format_of(output) in BATCH_OUTPUTS
    return to_file and not explain and out_format == "jsonl"


eval_command.help = (eval_command.help or "") + "\n\n\b\n" + "\n".join(
    f"  {name:<20} {text}" for name, text in FIELDS.items())


def _write(results: Any, policy: Policy, out_format: str, do_explain: bool, output: str, *,
           numbered: bool) -> tuple[int, int]:
    """Write every result; (lines that could not be decided, lines decided)."""
    errors = decided = 0
    out = click.open_file(output, "w", encoding="utf-8")
    rows: list[dict[str, Any]] = []
    first_table = True
    headers_said: list[LineError] = []  # a header's error is said once, not for each line it fails
    with out:
        for res in results:
            if res.error is not None:
                errors += 1
                cause = res.error.cause
                if cause is None:
                    click.echo(f"error: {res.error}", err=True)
                elif not any(cause is said for said in headers_said):
                    headers_said.append(cause)
                    click.echo(header_error(cause), err=True)
                if out_format == "table":
                    continue
            else:
                decided += 1
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
    return errors, decided
