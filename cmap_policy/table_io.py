"""Moved to ``cmap_policy.authoring.table``; this name stays for code that imported it here."""

import sys

from .authoring import table

sys.modules[__name__] = table
