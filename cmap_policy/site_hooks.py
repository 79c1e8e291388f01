"""Moved to ``cmap_policy/site/hooks.py`` (``mkdocs.yml`` names it); this file stays for configurations that
named the old path."""

from cmap_policy.site.hooks import on_config, on_files, on_page_markdown

__all__ = ["on_config", "on_files", "on_page_markdown"]
