"""The old path of ``cmap_policy.authoring.table``, kept as a plain re-export for code that imported it here."""

from .authoring.table import *  # noqa: F403 -- the same names, by the package's own list
from .authoring.table import __all__ as __all__
