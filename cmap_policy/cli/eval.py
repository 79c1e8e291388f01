"""``cmap-policy eval``: decide one claim line from options, or every line of a file or standard input.

Lines go to the interpreter (``api.eval_lines``), or, for a file written to a file, to the batch
engine or to Spark, which ``cli.engines`` runs; those are imported only when chosen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from .. import api, formats
from ..errors import InputError, LineError
from ..explain import explain
from ..guard import byte_source
from ..lines import FIELDS, guess_format
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
    fail,
    load_bundle_or_exit,
    load_or_exit,
    policy_option,
    release_option,
)


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
@click.option("--input-format", type=click.Choice(formats.INPUTS), default=None,
              help="Format of INPUT. Default: from the file's suffix, else from its first bytes.")
@click.option("--format", "out_format", type=click.Choice(["jsonl", "json", "table"]), default="jsonl",
              show_default=True, help="jsonl: one JSON decision per line; json: one array; table: for people.")
@click.option("--explain", is_flag=True, help="Explain each decision step by step, in words a biller understands.")
@click.option("-o", "--output", type=click.Path(allow_dash=True), default="-",
              help="Write decisions here instead of standard output (written under a temporary name, renamed "
                   "when whole).")
@click.option("--engine", type=click.Choice(["auto", "batch", "python", "spark"]), default="auto",
              show_default=True,
              help="batch: the batch engine (columnar, for large files); python: the interpreter, line by line; "
                   "spark: Apache Spark, for a Parquet file or directory into a Parquet directory (pip install "
                   "'cmap-policy[spark]'). auto: batch when -o names a .csv, .jsonl, .parquet or .arrow file, or "
                   "the input is Parquet or Arrow.")
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
    """Decide claim lines: one from options, or every line of INPUT (JSON, JSON Lines, CSV, Parquet, Arrow IPC or
    X12 837; - for standard input).

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
    run = Run(policy, release, out_format, explain, output, engine, errors_file)
    if engine == "spark":
        _spark(run, input_file, input_format, master)
    if master is not None:
        raise click.UsageError("--master is for --engine spark")
    for named in (input_file, output, errors_file):
        if named not in (None, "-") and Path(named).is_dir():
            raise click.UsageError(f"{named} is a directory: only --engine spark reads and writes directories")
    if input_file is None and (code is not None or date_ is not None):
        if engine == "batch":
            raise click.UsageError("--engine batch reads a file or standard input: give INPUT")
        record: dict[str, Any] = {"code": code, "date": date_.isoformat() if date_ else None,
                                  "modifiers": list(modifiers), "pos": pos, "claim_type": claim_type, "rcc": rcc,
                                  "modality": modality, "member_age": member_age, "provider_type": provider_type,
                                  "units": units, "established_patient": established_patient}
        run.interpret([record], None, "the options")
    with _usage_errors(), _opened(input_file, input_format, run) as (path, stream, fmt, label):
        formats.refuse_overlap({"INPUT": path if input_file not in (None, "-") else None},
                               {"-o": output, "--errors": run.errors_path(batch=run.batch_wanted(fmt, path))})
        if run.batch_wanted(fmt, path):
            from .engines import run_batch  # pyarrow and numpy load only for a batch

            assert path is not None
            run_batch(path, output, policy=policy, release=release, errors_file=errors_file, input_format=fmt,
                      label=label)
        run.interpret(path if path is not None else stream, fmt, label)


@dataclass(frozen=True)
class Run:
    """What one ``eval`` run was asked for: the engine and outputs it chooses by, decided once."""

    policy: Policy
    release: str | None
    out_format: str
    explain: bool
    output: str
    engine: str
    errors_file: str | None

    def batch_wanted(self, fmt: str, path: Path | None) -> bool:
        """Whether the batch engine decides (it reads a file: standard input is spooled to one first)."""
        text_out = self.explain or self.out_format != "jsonl"
        if self.engine == "batch":
            if text_out:
                raise click.UsageError("the batch engine writes JSON Lines, CSV, Parquet or Arrow (by -o's suffix); "
                                       "--explain and --format table/json need --engine python")
            return True
        if self.engine == "python" or text_out:
            return False
        if fmt in ("parquet", "arrow"):
            return True
        return self.output != "-" and formats.output_of(self.output) is not None and path is not None

    def spooled(self, fmt: str) -> bool:
        """Whether standard input is copied to a file first: for the formats read from a path, and the engine."""
        return fmt not in formats.STREAMED or self.batch_wanted(fmt, Path("-"))

    def errors_path(self, *, batch: bool) -> str | Path | None:
        if self.errors_file is not None:
            return self.errors_file
        return formats.errors_path_for(self.output) if batch and self.output != "-" else None

    def interpret(self, source: Any, fmt: str | None, label: str) -> NoReturn:
        """Decide every line with the interpreter, write its full output, and end the run."""
        self._check_suffix()
        try:
            results = api.eval_lines(source, policy=self.policy, release=self.release, input_format=fmt)
            errors, decided = _write(results, self.policy, self.out_format, self.explain, self.output,
                                     numbered=label != "the options")
        except BrokenPipeError:
            # the reader (e.g. `| head`) has gone: stop quietly, as other Unix tools do
            sys.stderr.close()
            sys.exit(EXIT_OK)
        except (OSError, InputError) as err:
            click.echo(f"error: cannot read or write: {err}", err=True)
            sys.exit(EXIT_ERRORS)
        except UnicodeDecodeError as err:
            click.echo(f"error: the input is not UTF-8 text (byte {err.start})", err=True)
            sys.exit(EXIT_ERRORS)
        finish(decided, errors, label)

    def _check_suffix(self) -> None:
        """The interpreter writes JSON Lines, a JSON array, a table or explanations: an output named for another
        format would hold something else than its name says."""
        named = formats.by_suffix(self.output) if self.output != "-" else None
        written = None if self.explain or self.out_format == "table" else self.out_format
        if named is None or named == written:
            return
        if written is None:
            raise click.UsageError(f"-o {self.output} names a {named} file, but a table or explanations are text: "
                                   "give a name such as decisions.txt")
        other = " (or drop --engine python: the batch engine writes it)" if named in formats.OUTPUTS else ""
        raise click.UsageError(f"-o {self.output} names a {named} file, but --format {written} writes "
                               f"{'JSON Lines' if written == 'jsonl' else 'a JSON array'}: give a "
                               f"{formats.SUFFIX_OF[written]} name{other}")


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    try:
        yield
    except formats.FormatError as err:
        raise click.UsageError(str(err)) from None


@contextlib.contextmanager
def _opened(input_file: str | None, given: str | None, run: Run) -> Iterator[tuple[Path | None, Any, str, str]]:
    """(a path to read, or a stream; its format; what messages call it). Standard input is read by the same
    readers as a file: streamed when its format is read a line at a time and the interpreter decides, else
    copied to a temporary file first (Parquet, Arrow and X12 are read from a path; so is all the batch engine
    reads)."""
    if input_file not in (None, "-"):
        path = Path(str(input_file))
        yield path, None, formats.of_file(path, given) or "jsonl", str(input_file)
        return
    label = "standard input" + ("" if input_file == "-" else
                                " (give INPUT, '-' for standard input, or --code and --date for one line)")
    src = byte_source(getattr(sys.stdin, "buffer", sys.stdin))
    fmt = formats.checked_input(given) if given is not None else guess_format(src)
    if not run.spooled(fmt):
        yield None, src, fmt, label
        return
    with tempfile.TemporaryDirectory(prefix="cmap-policy-stdin-") as tmp:
        spool = Path(tmp) / f"standard-input{formats.SUFFIX_OF.get(fmt, '')}"
        try:
            with spool.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        except OSError as err:
            fail(f"cannot read standard input: {err}")
        yield spool, None, fmt, label


def _spark(run: Run, input_file: str | None, input_format: str | None, master: str | None) -> NoReturn:
    if run.explain or run.out_format != "jsonl":
        raise click.UsageError("--engine spark writes Parquet; --explain and --format table/json need --engine python")
    from .engines import run_spark  # pyspark loads only for --engine spark

    run_spark(input_file, run.output, policy=run.policy, release=run.release, errors_file=run.errors_file,
              master=master, input_format=input_format)


eval_command.help = (eval_command.help or "") + "\n\n\b\n" + "\n".join(
    f"  {name:<20} {text}" for name, text in FIELDS.items())


def _write(results: Any, policy: Policy, out_format: str, do_explain: bool, output: str, *,
           numbered: bool) -> tuple[int, int]:
    """Write every result; (lines that could not be decided, lines decided)."""
    errors = decided = 0
    # written under a temporary name and renamed when whole: a run that fails leaves no half file
    out = click.open_file(output, "w", encoding="utf-8", atomic=output != "-")
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
