"""The old path of ``cmap_policy.site.write``, kept as a plain re-export; ``python -m cmap_policy.site_write`` still
runs it."""

from .site.write import main, write_site_sources

__all__ = ["main", "write_site_sources"]

if __name__ == "__main__":
    raise SystemExit(main())
