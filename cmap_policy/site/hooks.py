"""MkDocs hook (``mkdocs.yml`` names this file): hand the pages of ``cmap_policy.site.generate_pages`` to MkDocs.

Settings come from the environment, so that a build can be reproduced or pointed at another tree:
CMAP_SITE_DATE (YYYY-MM-DD; default: today) is the day the table is shown for, and CMAP_SITE_POLICY
(a policy folder; default: the bundled policy) is the policy to publish.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from cmap_policy.load import load_policy
from cmap_policy.model import Policy
from cmap_policy.site import for_billers, generate_pages, hand_written, repo_links, site_meta, site_nav

_state: dict[str, Any] = {}


def _today() -> dt.date:
    text = os.environ.get("CMAP_SITE_DATE", "").strip()
    return dt.date.fromisoformat(text) if text else dt.date.today()


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    policy: Policy = load_policy(os.environ.get("CMAP_SITE_POLICY") or None)
    today = _today()
    inputs = hand_written(Path(config.config_file_path).parent, Path(config.docs_dir))
    written = inputs["docs_pages"]
    pages = generate_pages(policy, today=today, directory_urls=bool(config.use_directory_urls), **inputs)
    config.nav = site_nav(policy, pages, written)
    config.extra["policy"] = site_meta(policy, today).as_dict()
    _state["pages"] = pages
    _state["written"] = written
    _state["schemas"] = [p.removeprefix("authors/schema/").removesuffix(".md") for p in pages
                         if p.startswith("authors/schema/") and p != "authors/schema/index.md"]
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path, content in _state["pages"].items():
        existing = files.get_file_from_path(path)
        if existing is not None:  # a generated page wins over a stray file of the same name
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """A hand-written page under docs/ may link to files of the repository (../cmap_policy/batch.py):
    name them instead, as the contributing guide does, so the strict build passes and no link leads off
    the site. Generated pages are left alone. Search offers the billers' pages only (``site.for_billers``)."""
    if not for_billers(page.file.src_uri, _state["pages"]):
        page.meta["search"] = {**page.meta.get("search", {}), "exclude": True}
    if page.file.generated_by is not None:
        return markdown
    return repo_links(markdown, f"docs/{page.file.src_uri}", _state["written"], _state["schemas"])
