"""``cmap-policy test``: the author-test command, a thin layer over ``cmap_policy.authoring.spec.test``."""

from __future__ import annotations

import json
import sys

import click

from ..authoring import spec
from ..errors import PolicyError, SpecFileError
from .options import EXIT_ERRORS, EXIT_OK, policy_option


@click.command("test")
@click.argument("path", required=False, type=click.Path(exists=True), metavar="[PATH]")
@policy_option()
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
        what = "test file" if isinstance(err, SpecFileError) else "policy"
        click.echo(f"the {what} has {len(err.problems)} problem(s)", err=True)
        click.echo("0 passed, 0 failed")
        sys.exit(EXIT_ERRORS)
    if out_format == "json":
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(spec.render_text(report, verbose))
    sys.exit(EXIT_OK if report.ok else EXIT_ERRORS)
