"""The providers' and billers' site, generated from the policy.

``generate_pages`` (``pages``) makes every page and download; ``site_nav``, ``repo_links`` and
``contributing_page`` (``nav``) order them and make the repository's Markdown work on the site;
``hooks`` hands them to MkDocs and ``write`` writes them as plain files.
"""

from .nav import contributing_page, repo_links, site_nav
from .pages import generate_pages, site_meta

__all__ = ["contributing_page", "generate_pages", "repo_links", "site_meta", "site_nav"]
