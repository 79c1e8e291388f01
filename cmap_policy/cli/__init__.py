"""The command line, a thin layer over the Python API: ``cmap-policy`` and its commands.

``app`` holds the group and the one list of commands (imported lazily); ``options`` the exit codes
and the options every command shares; then one module per command or family: ``eval``, ``inspect``
(show, validate), ``test``, ``authoring`` (fmt, diff, changelog, release, code) and ``table``
(import, export, synthetic). Only this package prints or picks an exit code.
"""

from .app import COMMANDS, main
from .options import EXIT_ERRORS, EXIT_OK, EXIT_USAGE

__all__ = ["COMMANDS", "EXIT_ERRORS", "EXIT_OK", "EXIT_USAGE", "main"]
