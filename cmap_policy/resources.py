"""Where the bundled policy and schemas live, installed or in a source checkout; and which policy folder the
authoring commands change and compare: the one of the git checkout the user is in, whatever the install mode
(a package installed with `pip install .` carries its own copy, which is not the one being edited)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    bundled = _PACKAGE / "_bundled" / name  # a wheel puts them here
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name  # a source checkout or an editable install


def policy_dir() -> Path:
    return _find("policy")


def schema_dir() -> Path:
    return _find("schema")


def examples_dir() -> Path:
    return _find("examples")


INSTALLED_COPY = ("the policy installed with the package is not to be changed: run this in a git checkout of "
                  "the policy repository (its policy/ folder is used), or give --policy DIR")


def checkout_policy_dir(start: Path | None = None) -> Path | None:
    """The policy/ folder of the git checkout holding ``start`` (default: the current directory), or None
    outside a checkout or when the checkout has no policy/program.json."""
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:  # the current directory was removed
        return None
    for folder in (here, *here.parents):
        if (folder / ".git").exists():  # a folder, or a file in a linked worktree or a submodule
            candidate = folder / "policy"
            return candidate if (candidate / "program.json").is_file() else None
    return None


def working_policy_dir() -> Path:
    """What the authoring commands (diff, fmt, edit, import, test) default to: the checkout's policy/ folder, else
    the package's own (a source checkout's or an editable install's; for an installed package, its copy)."""
    return checkout_policy_dir() or policy_dir()


def is_installed_copy(path: Path) -> bool:
    """Whether ``path`` is (inside) the policy or schemas an installed package carries."""
    try:
        return path.resolve().is_relative_to(_PACKAGE / "_bundled")
    except OSError:
        return False
