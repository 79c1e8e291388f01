"""Moved to ``cmap_policy.engines.spark``; this name stays for code that imported it here."""

import sys

from .engines import spark

sys.modules[__name__] = spark
