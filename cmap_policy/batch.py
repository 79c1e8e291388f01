"""Moved to ``cmap_policy.engines.batch``; this name stays for code that imported it here."""

import sys

from .engines import batch

sys.modules[__name__] = batch
