"""Running ``eval`` on the batch engine or on Spark, and how every ``eval`` run ends: its last words on
standard error and its exit code.

The engines return a ``Summary`` and raise; what a user sees of a run, and the exit code, is decided here,
for the interpreter's runs too (``finish``), so that every path says the same thing in the same words.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from .. import formats
from ..errors import InputError, LineError
from ..model import Policy
from .options import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, fail


class ProgressBar:
    """A rich progress bar on standard error: the batch engine's ``Progress``, for terminals only."""

    def start(self, total: int, unit: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.p = Progress(TextColumn("deciding"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                          TextColumn("{task.fields[lines]:,} lines"), TimeElapsedColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True)
        self.task = self.p.add_task("deciding", total=total or None, lines=0)
        self.p.start()

    def advance(self, amount: int, lines: int) -> None:
        self.p.update(self.task, advance=amount, lines=lines)

    def close(self) -> None:
        self.p.stop()


def header_error(cause: LineError) -> str:
    """The error of a file's header (or Parquet schema) that every line of the file fails by, said once."""
    where = f"the header (line {cause.line})" if cause.line is not None else "the file's columns"
    return f"error: {where}: {cause.message}"


def finish(decided: int, errors: int, source: str, where_errors: str | None = None) -> NoReturn:
    """End an ``eval`` run that read ``source``: no claim lines at all is an error (exit 1) whatever the format
    or the engine; so are lines that could not be decided (each already reported, or in ``where_errors``)."""
    if decided + errors == 0:
        fail(f"no claim lines in {source}")
    if errors:
        see = f" (see {where_errors})" if where_errors else ""
        if decided:
            click.echo(f"{errors:,} line(s) could not be decided{see}; the other {decided:,} were", err=True)
        else:
            which = "the one line had an error" if errors == 1 else f"all {errors:,} lines had errors"
            click.echo(f"no line was decided: {which}{see}", err=True)
        raise SystemExit(EXIT_ERRORS)
    raise SystemExit(EXIT_OK)


def _finish(summary: Any, input_file: str, where_errors: str) -> NoReturn:
    if summary.header is not None:
        click.echo(header_error(summary.header), err=True)
    if summary.read:
        click.echo(summary.render(), err=True)
    finish(summary.decided, summary.errors, input_file, where_errors)


class _NoPandas:
    """An import finder that says pandas is not installed (see ``_without_pandas``)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"{name} is not used by the batch engine", name=name)


def _without_pandas() -> None:
    """pyarrow, on its first conversion of a Python or numpy value, imports pandas when it is installed (the spark
    extra installs it), only to ask whether the value is a pandas object: 0.15 s of a batch run's fixed cost. The
    batch engine never hands it one, and this process runs nothing else, so the command line tells pyarrow there is
    no pandas. (The Python API never does this: a program may use pandas.)"""
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


def run_batch(input_file: str | Path, output: str, *, policy: Policy, release: str | None, errors_file: str | None,
              input_format: str, label: str | None = None) -> NoReturn:
    """``cmap-policy eval INPUT -o OUTPUT`` on the batch engine; ``input_format`` is decided by the caller
    (``formats``), and ``label`` is what messages call the input (standard input is read from a copy)."""
    _without_pandas()
    try:
        from ..engines import batch
    except ImportError as err:
        raise click.UsageError(f"the batch engine needs {err.name}: pip install 'cmap-policy[batch]', "
                               "or use --engine python") from None
    to_stdout = output == "-"
    if not to_stdout and formats.output_of(output) is None:
        fail(f"cannot tell the output format of {output}: name it "
             f"{', '.join(formats.SUFFIX_OF[f] for f in formats.OUTPUTS)}", EXIT_USAGE)
    try:
        summary = batch.run(input_file, None if to_stdout else output, policy=policy, release=release,
                            errors_path=errors_file, input_fmt=input_format,
                            stream=sys.stdout if to_stdout else None,
                            errors_stream=sys.stderr,
                            progress=ProgressBar() if sys.stderr.isatty() else None)
    except formats.FormatError as err:
        fail(str(err), EXIT_USAGE)
    except (OSError, InputError) as err:
        fail(f"cannot read or write: {err}")
    where = errors_file or (str(formats.errors_path_for(output)) if not to_stdout else "standard error")
    _finish(summary, label or str(input_file), where)


def run_spark(input_file: str | None, output: str, *, policy: Policy, release: str | None, errors_file: str | None,
              master: str | None, input_format: str | None) -> NoReturn:
    """``cmap-policy eval --engine spark INPUT -o OUTPUT``."""
    try:
        from ..engines import spark
    except ImportError as err:
        raise click.UsageError(f"the Spark engine needs {err.name}: pip install 'cmap-policy[spark]'") from None
    if input_file in (None, "-"):
        fail("--engine spark reads a Parquet file or directory: give INPUT", EXIT_USAGE)
    assert input_file is not None
    if output == "-":
        fail("--engine spark writes a directory of Parquet files: give -o OUTPUT", EXIT_USAGE)
    if input_format not in (None, "parquet"):
        fail("--engine spark reads Parquet; for CSV, JSON Lines or X12 use --engine batch", EXIT_USAGE)
    if not spark.is_uri(input_file) and not Path(input_file).exists():
        fail(f"no such file or directory: {input_file}")
    errors_at = errors_file or spark.errors_path_for(output)
    try:
        formats.refuse_overlap({"INPUT": input_file if not spark.is_uri(input_file) else None},
                               {"-o": output if not spark.is_uri(output) else None,
                                "--errors": errors_at if not spark.is_uri(errors_at) else None})
    except formats.FormatError as err:
        fail(str(err), EXIT_USAGE)
    for path in (output, errors_at):
        reason = spark.why_not_overwrite(path)
        if reason is not None:
            fail(reason, EXIT_USAGE)
    # a session this command started is stopped at the end; a platform's (Databricks, a notebook) is left running
    started_here = spark.active_session() is None
    try:
        session = spark.session(master)
    except Exception as err:  # py4j and pyspark raise several kinds when the JVM cannot start
        fail(f"cannot start Spark ({spark.first_line(err)}); Spark 4 needs Java 17 or 21 (java -version)")
    try:
        summary = spark.run(session, input_file, output, policy=policy, release=release, errors_path=errors_file)
    except InputError as err:
        fail(str(err))
    finally:
        if started_here and (session.sparkContext.master or "").startswith("local"):
            session.stop()
    _finish(summary, input_file, errors_at)


def run_impact(claims: str, base: Any, head: Any, *, out_format: str, exit_code: bool) -> NoReturn:
    """``cmap-policy diff BASE [HEAD] --claims FILE``: the impact report of two sides (``authoring.diff.Side``)."""
    _without_pandas()
    try:
        from ..engines import impact
    except ImportError as err:
        raise click.UsageError(f"--claims runs the batch engine, which needs {err.name}: "
                               "pip install 'cmap-policy[batch]'") from None
    if not Path(claims).is_file():
        fail(f"no such file: {claims}")
    try:
        report = impact.impact(claims, base.policy, head.policy, base_release=base.release,
                               head_release=head.release, base_label=base.label, head_label=head.label)
    except (OSError, InputError) as err:
        fail(f"cannot read {claims}: {err}")
    show_impact(report, out_format)
    errors = report.tally.errors or report.tally.header
    sys.exit(EXIT_ERRORS if errors or (exit_code and report.changed) else EXIT_OK)


def show_impact(report: Any, out_format: str) -> None:
    """Print an impact report (``engines.impact.ImpactReport``) as JSON or Markdown."""
    if out_format == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(report.to_markdown(), nl=False)


def run_replay_impact(paths: list[Path], policy: Policy, *, release: str | None, out_format: str) -> NoReturn:
    """``cmap-policy log replay FILE... --format md|json``: the impact report of the logged decisions against
    ``policy``, the lines decided again by the batch engine."""
    _without_pandas()
    try:
        from ..engines.impact import Logged, replay_impact
        from ..service.replay import Tally, Unreplayable, logged_lines, logged_summary
    except ImportError as err:
        raise click.UsageError(f"this report needs {err.name}: pip install 'cmap-policy[batch,serve]'") from None
    tally = Tally()
    current, base, last = "", 0, 0

    def numbered(file: str, number: int) -> int:  # line numbers count on through the files, in the order given
        nonlocal current, base, last
        if file != current:
            current, base = file, last
        last = base + number
        return last

    def items() -> Iterator[Logged]:
        for item in logged_lines(paths, policy.program, tally):
            if isinstance(item, Unreplayable):
                click.echo(f"error: {item}", err=True)
                continue
            summary = logged_summary(item.record)
            if summary is None:
                tally.unreplayable += 1
                click.echo(f"error: {item.file}:{item.number}: the record has no outcome and list of reason codes",
                           err=True)
                continue
            yield Logged(numbered(item.file, item.number), item.line, summary)

    try:
        report = replay_impact(items(), policy, release=release, file=", ".join(p.name for p in paths))
    except InputError as err:
        fail(str(err))
    report.tally.errors = tally.unreplayable
    show_impact(report, out_format)
    sys.exit(EXIT_ERRORS if tally.unreplayable else EXIT_OK)
