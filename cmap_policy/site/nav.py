"""The site's navigation, and links written for the repository made to work on the site."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ..model import Policy

_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def repo_links(text: str, page: str, docs_pages: Collection[str], schemas: Collection[str] = ()) -> str:
    """Links in Markdown written for the repository (``page`` is where it sits, relative to the repository
    root) made to work on the site: a page under docs/ or a schema becomes a link to its page on the site,
    any other file of the repository becomes its name in code, so that nothing points off the site."""
    here = posixpath.dirname(page)
    site_page = page.removeprefix("docs/") if page.startswith("docs/") else "authors/contributing.md"

    def fix(m: re.Match[str]) -> str:
        label, target = m.group(1), m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return m.group(0)
        path, _, anchor = target.partition("#")
        path = posixpath.normpath(posixpath.join(here, path)) if path else page
        suffix = f"#{anchor}" if anchor else ""
        prefix = "../" * site_page.count("/")
        if path.startswith("docs/") and path.removeprefix("docs/") in docs_pages:
            return f"[{label}]({prefix}{path.removeprefix('docs/')}{suffix})"
        if path.startswith("schema/") and path.endswith(".schema.json"):
            name = path.removeprefix("schema/").removesuffix(".schema.json")
            if name in schemas:
                return f"[{label}]({prefix}authors/schema/{name}.md)"
        if path.startswith("docs/"):
            return m.group(0)  # a page of the site that is missing: let the strict build say so
        return f"`{path}`" if label.strip("`") == path else f"{label} (`{path}`)"

    return _LINK.sub(fix, text)


def contributing_page(text: str | None, docs_pages: Collection[str] = (), schemas: Collection[str] = ()) -> str:
    """The authors' guide from CONTRIBUTING.md, its repository links made to work on the site."""
    if text is None:
        return ("---\ntitle: Contributing\n---\n\n# Contributing\n\nThe guide for policy authors is "
                "`CONTRIBUTING.md` at the root of the repository.\n")
    body = repo_links(text, "CONTRIBUTING.md", docs_pages, schemas)
    if not body.lstrip().startswith("# "):
        body = "# Contributing\n\n" + body
    return "---\ntitle: Contributing\n---\n\n" + body


def for_billers(path: str, pages: Mapping[str, Any]) -> bool:
    """Whether site search offers the page: the billers' pages, not the authors' and engineers' (the schema and
    CLI references, the contributing guide, the hand-written engineering pages), which would rank among a
    biller's results for words like "date" or "modifier"."""
    return path in pages and not path.startswith("authors/")


def site_nav(policy: Policy, pages: Mapping[str, Any], extra_docs: Sequence[str] = ()) -> list[Any]:
    """The navigation: the generated pages in reading order, then any other page under docs/.

    ``extra_docs`` are the hand-written pages found in docs/ (for example performance.md); they go
    under "Engineering", titled by their own headings, so a new page shows up without editing this.
    """
    codes = [{c: f"codes/{c}.md"} for c in policy.views[policy.latest.id]]
    schemas = sorted(p for p in pages if p.startswith("authors/schema/") and p != "authors/schema/index.md")
    authors: list[Any] = [
        {"Contributing": "authors/contributing.md"},
        {"Schema reference": ["authors/schema/index.md", *schemas]},
        {"CLI reference": "authors/cli.md"},
        {"Notice drafts": [f"notices/{r.id}.md" for r in reversed(policy.releases)]},
    ]
    # Bare paths: MkDocs titles each page from its own first heading.
    engineering = [p for p in sorted(extra_docs) if p not in pages]
    if engineering:
        authors.append({"Engineering": engineering})
    return [
        {"Home": "index.md"},
        {"Check a claim": "claims.md"},
        {"Table": [{"Today's table": "table.md"}, {"Full history": "history.md"}, {"Downloads": "downloads.md"}]},
        {"Codes": ["codes/index.md", *codes]},
        {"Billing": [{"Modifiers and places of service": "modifiers.md"}, {"Reason codes": "reasons.md"},
                     {"FAQs": "faq.md"}]},
        {"Changelog": "changelog.md"},
        {"Sources": "sources.md"},
        {"For authors": authors},
    ]
