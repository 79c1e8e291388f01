"""Moved to ``cmap_policy.site.write``; ``python -m cmap_policy.site_write`` still runs it."""

import sys

from .site import write

if __name__ == "__main__":
    raise SystemExit(write.main())
sys.modules[__name__] = write
