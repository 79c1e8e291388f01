"""The ``cmap-policy`` command group and the one list of its commands.

Commands are named here and imported only when one runs (pip's ``commands/__init__.py``), so
that ``cmap-policy eval`` loads no authoring, engine or site code. ``--help`` imports them all to
show their summaries.
"""

from __future__ import annotations

import importlib

import click

# name -> (module under cmap_policy.cli, attribute): the one list of commands, in the order --help shows them.
COMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("eval", "eval_command"),
    "show": ("inspect", "show_command"),
    "validate": ("inspect", "validate_command"),
    "test": ("test", "test_command"),
    "fmt": ("authoring", "fmt_command"),
    "diff": ("authoring", "diff_command"),
    "changelog": ("authoring", "changelog_command"),
    "notice": ("authoring", "notice_command"),
    "release": ("authoring", "release_group"),
    "code": ("authoring", "code_group"),
    "import": ("table", "import_command"),
    "export": ("table", "export_command"),
    "synthetic": ("table", "synthetic_command"),
    "serve": ("serve", "serve_command"),
    "log": ("serve", "log_group"),
    "bundle": ("bundle", "bundle_group"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name when they run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(f"{__package__}.{target[0]}")
        command: click.Command = getattr(module, target[1])
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="cmap-policy")
def main() -> None:
    """The CMAP (Connecticut Medicaid, HUSKY Health) telehealth policy as code.

    Decide whether a claim line is payable via telehealth, check and show the policy.
    Exit codes: 0 success (every line decided; a denial is a decision), 1 input or
    policy errors, 2 usage errors.
    """
