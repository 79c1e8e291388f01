"""What every command shares: exit codes, the ``--policy``, ``--release`` and date options, and loading a policy.

Each is defined once, so that every command spells an option, checks a date and reports a policy that does
not load in the same way (pip's ``cmdoptions`` and ``status_codes``, OPA's ``cmd/flags.go``).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, NoReturn, TypeVar

import click

from ..errors import BundleError, LineError, PolicyError, UnknownReleaseError
from ..guard import MAX_NUMBER_DIGITS
from ..lines import parse_date
from ..model import Policy

EXIT_OK = 0  # every line was decided (a denial is a decision); the command did what it was asked
EXIT_ERRORS = 1  # input or policy errors: bad lines (the others were decided), a policy that does not load
EXIT_USAGE = 2  # the command was called wrongly (click uses 2 for its own usage errors too)

_F = TypeVar("_F", bound=Callable[..., Any])

BUNDLED_POLICY_HELP = ("Policy tree to use (the folder holding program.json, releases.json and codes/). "
                       "Default: the bundled CMAP policy.")
CHECKOUT_POLICY_HELP = ("The policy folder to change. Default: the policy/ folder of the git checkout you are in "
                        "(whatever the install mode).")
WORKING_POLICY_HELP = ("Policy folder. Default: the policy/ folder of the git checkout you are in, else the bundled "
                       "policy.")
RELEASE_HELP = "Decide as the table was published in this release (see releases.json). Default: the latest."


def policy_option(help_text: str = BUNDLED_POLICY_HELP) -> Callable[[_F], _F]:
    """``--policy DIR``, passed to the command as ``policy_path``."""
    return click.option("--policy", "policy_path", type=click.Path(file_okay=False), default=None, metavar="DIR",
                        help=help_text)


def release_option(help_text: str = RELEASE_HELP, *, required: bool = False) -> Callable[[_F], _F]:
    """``--release ID``, passed as ``release``."""
    return click.option("--release", default=None, required=required, metavar="ID", help=help_text)


class WholeNumber(click.ParamType[int]):
    """An integer option of a claim line (``--units``, ``--member-age``): one too long to convert gets the same
    message as in a file ("integer too long", naming the limit) and is never echoed whole."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        digits = text.lstrip("+-")
        if len(digits) > MAX_NUMBER_DIGITS and digits.isdigit():
            self.fail(f"integer too long: more than {MAX_NUMBER_DIGITS:,} digits (the limit)", param, ctx)
        try:
            return int(text)
        except ValueError:
            self.fail(f"{text[:40]!r}{'…' if len(text) > 40 else ''} is not a whole number", param, ctx)


WHOLE_NUMBER = WholeNumber()


def _strict_date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return parse_date(value, param.name or "date")
    except LineError as err:
        raise click.BadParameter(err.message, ctx, param) from None


def date_option(*decls: str, help_text: str, required: bool = False) -> Callable[[_F], _F]:
    """A date option, strictly YYYY-MM-DD (the form claim lines use), as a ``datetime.date``."""
    return click.option(*decls, callback=_strict_date, metavar="YYYY-MM-DD", required=required, help=help_text)


def fail(message: str, code: int = EXIT_ERRORS) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def report_policy_error(err: PolicyError, what: str = "policy") -> None:
    for problem in err.problems:
        click.echo(str(problem), err=True)
    click.echo(f"the {what} has {len(err.problems)} problem(s); run `cmap-policy validate` for details", err=True)


def load_or_exit(policy_path: str | None) -> Policy:
    """The policy at ``policy_path`` (default: the bundled one); every problem printed and exit 1 if it fails."""
    from ..load import load_policy

    try:
        return load_policy(policy_path)
    except PolicyError as err:
        report_policy_error(err)
        sys.exit(EXIT_ERRORS)


def check_release(policy: Policy, release: str | None) -> None:
    """A usage error naming ``--release`` when the policy has no such release."""
    try:
        policy.release(release)
    except UnknownReleaseError as err:
        raise click.BadParameter(str(err), param_hint="--release") from None


BUNDLE_EXTRA = "signed bundles need the bundle extra: pip install 'cmap-policy[bundle]'"


def bundle_module() -> ModuleType:
    """``cmap_policy.bundle``, imported when a command needs it (``cryptography`` is loaded then); exit 1
    naming the extra when it is not installed."""
    try:
        from .. import bundle
    except ImportError:
        fail(BUNDLE_EXTRA)
    return bundle


def bundle_options(f: _F) -> _F:
    """``--bundle FILE`` and ``--verify-key KEY``: decide with a signed bundle's policy, once it verifies."""
    f = click.option("--verify-key", "verify_key", type=click.Path(dir_okay=False), default=None,
                     metavar="PUBLIC_KEY", help="The Ed25519 public key (PEM) --bundle must be signed with.")(f)
    return click.option("--bundle", "bundle_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                        help="Use the policy of this signed bundle (cmap-policy bundle build), once it verifies "
                             "against --verify-key. Instead of --policy.")(f)


def check_bundle_options(policy_path: str | None, bundle_path: str | None, verify_key: str | None) -> None:
    """Usage errors for --bundle without --verify-key (a bundle is never used unverified), and the reverse."""
    if bundle_path is not None and policy_path is not None:
        raise click.UsageError("give --policy or --bundle, not both")
    if bundle_path is not None and verify_key is None:
        raise click.UsageError("--bundle needs --verify-key: a bundle is used only once its signature verifies")
    if verify_key is not None and bundle_path is None:
        raise click.UsageError("--verify-key is for --bundle")


def load_bundle_or_exit(bundle_path: str, verify_key: str) -> tuple[Policy, str]:
    """The policy of a verified bundle and the id of the key that signed it; the reason and exit 1 if not."""
    bundle = bundle_module()
    try:
        loaded = bundle.load(bundle_path, verify_key)
    except BundleError as err:
        fail(f"the bundle is not used: {err}")
    except PolicyError as err:
        report_policy_error(err, "bundle's policy")
        sys.exit(EXIT_ERRORS)
    return loaded.policy, loaded.key_id
