"""``cmap-policy test``: the author-test command, a thin layer over ``cmap_policy.spec.test``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import spec
from .cli import EXIT_ERRORS, EXIT_OK, main, policy_option
from .errors import PolicyError


def _diff_lines(diff: dict[str, Any]) -> list[str]:
    name = diff["field"]
    if name != "reasons":
        return [f"      {name:<8} expected {diff['expected']}, got {diff['actual']}"]
    out = [f"      reasons  expected [{', '.join(diff['expected'])}], got [{', '.join(diff['actual'])}]"]
    if diff["missing"]:
        out.append(f"               - missing:    {', '.join(diff['missing'])}")
    for code in diff["unexpected"]:
        out.append(f"               + unexpected: {code}: {diff['messages'].get(code, '')}".rstrip(": "))
    return out


def render_text(report: spec.SpecReport, verbose: bool = False) -> str:
    out: list[str] = []
    for res in report.results:
        c = res.case
        where = f"{c.file}:{c.line_no}" if c.line_no is not None else c.file
        if res.passed:
            if verbose:
                out.append(f"PASS  {where} {c.pointer}  {c.name}")
            continue
        out.append(f"FAIL  {where} {c.pointer}  {c.name}")
        out.append(f"      release  {res.release}")
        for d in res.diff:
            out.extend(_diff_lines(d))
    out.extend(report.notes)
    cov = report.coverage
    covered_periods = len(cov.periods) - len(cov.periods_uncovered)
    reachable = cov.reasons_reachable
    out.append("")
    out.append(f"coverage: periods {covered_periods}/{len(cov.periods)} ({cov.period_percent:.1f}%) in every "
               f"release's view; reasons {len(reachable) - len(cov.reasons_uncovered)}/{len(reachable)} reachable "
               f"({cov.reason_percent:.1f}%)")
    if cov.periods_uncovered:
        out.append("  uncovered periods:")
        out.extend(f"    {period} (release {rel})" for rel, period in cov.periods_uncovered)
    if cov.reasons_uncovered:
        out.append(f"  uncovered reasons: {', '.join(cov.reasons_uncovered)}")
    if cov.unreachable:
        out.append("  unreachable in this policy:")
        out.extend(f"    {code}: {why}" for code, why in cov.unreachable.items())
    if report.fail_under is not None and not report.coverage_ok:
        out.append(f"coverage is under {report.fail_under:g}%")
    out.append(report.summary)
    return "\n".join(out)


@main.command("test")
@click.argument("path", required=False, type=click.Path(exists=True), metavar="[PATH]")
@policy_option
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None, metavar="PCT",
              help="Fail when period or reachable-reason coverage is under PCT percent.")
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: failures with an expected-versus-actual diff, coverage, and 'N passed, N failed' last; "
                   "json: one object with every case, the coverage and the counts.")
@click.option("-v", "--verbose", is_flag=True, help="List passing cases too.")
def test_command(path: str | None, policy_path: str | None, fail_under: float | None, out_format: str,
                 verbose: bool) -> None:
    """Run the policy authors' tests: claim lines with their expected decisions, and what they cover.

    PATH is a test file or a folder of them (default: tests/ in the policy folder). A tests
    folder beside a policy tree runs against that tree unless --policy says otherwise.
    Exits 1 when a case fails, a test file is malformed, or coverage is under --fail-under.

    \b
    cmap-policy test
    cmap-policy test examples/demo-policy/tests --fail-under 100
    """
    try:
        report = spec.test(path, policy=policy_path, fail_under=fail_under)
    except PolicyError as err:
        for problem in err.problems:
            click.echo(str(problem), err=True)
        what = "test file" if isinstance(err, spec.SpecFileError) else "policy"
        click.echo(f"the {what} has {len(err.problems)} problem(s)", err=True)
        click.echo("0 passed, 0 failed")
        sys.exit(EXIT_ERRORS)
    if out_format == "json":
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(report, verbose))
    sys.exit(EXIT_OK if report.ok else EXIT_ERRORS)
