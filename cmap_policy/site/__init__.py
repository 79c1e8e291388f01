"""The providers' and billers' site, generated from the policy files.

``pages`` (``generate_pages``: every page and download by its path under docs/; the home, table, history and
code pages), ``reference`` (the reference pages: modifiers, reason codes, FAQs, changelog, sources,
downloads, CLI), ``fragments`` (what every page writes the same way: safe text, citations, outcomes, a decided
example line), ``table`` (the table of
codes as HTML, filterable and sortable), ``examples`` (example claim lines decided by the interpreter),
``check`` (the answers of the claim-line checker, decided by the interpreter at build time), ``widgets`` (the
checker's form, a code's status on any date, the coverage banner),
``schema_pages`` (the authors' reference from the JSON Schemas), ``svg`` (each code's timeline), ``nav``
(the navigation, which pages site search offers, and repository links fixed for the site), ``hooks``
(the MkDocs hook: ``mkdocs.yml`` names it) and ``write`` (the same sources as plain files, for a generator
that runs no hooks: ``python -m cmap_policy.site.write``).
"""

from .nav import contributing_page, for_billers, repo_links, site_nav
from .pages import SiteMeta, generate_pages, hand_written, site_meta

__all__ = ["SiteMeta", "contributing_page", "for_billers", "generate_pages", "hand_written", "repo_links",
           "site_meta", "site_nav"]
