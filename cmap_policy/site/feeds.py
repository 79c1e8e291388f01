"""The site's Atom feeds (RFC 4287), its release notices, and "what changed since my last visit".

The CMAP Telehealth page asks providers to come back and check the table for updates. A feed does the coming
back for them: ``feed.xml`` at the site's root has one entry per release, and ``feed-CODE.xml`` beside it one
entry per change to that code, so that a biller can follow only the codes they bill. (A code's feed is at the
root, not beside the code's page, because Material for MkDocs reads every ``<link rel="alternate">`` of a page
as a version of the site and fetches the ``sitemap.xml`` of its folder, which only the root has.) Both are made
from the one change report (``cmap_policy.changes``: ``change_report``, each release as ``release_entry``), which
the changelog page, the notices and the service's ``/v1/releases/{id}/changes`` read too.

A feed reader shows an entry again when its ``updated`` changes, so every date in a feed is a release's
published date and nothing in it depends on the day of the build: a rebuild with no policy change writes the
same bytes. Ids are ``urn:uuid`` names derived from the release (and code and row), stable across builds.
Links are relative to the feed's own address (RFC 4287 allows IRI references), since the site may be served
from anywhere, or opened from disk.
"""

from __future__ import annotations

import html
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from ..authoring.changelog import change_report, release_entry
from ..authoring.notice import build_notice
from ..authoring.notice import render_markdown as notice_markdown
from ..model import Policy

ATOM = "http://www.w3.org/2005/Atom"
FEED_PATH = "feed.xml"
FEED_TITLE = "CMAP telehealth table: every release"
NOTICE_DIR = "notices"
_NS = uuid.UUID("6f0b7a3e-52c4-4e7f-9d8a-0c1e2b3a4d5f")  # the namespace of this site's entry ids
_DISCLAIMER = ("Not an official publication of the Department of Social Services: the official CMAP Telehealth "
               "Table and DSS's Important Messages are the authority.")

ET.register_namespace("", ATOM)


def code_feed_path(code: str) -> str:
    """Where a code's feed is: at the site's root, beside the site's feed (see the module's docstring)."""
    return f"feed-{code}.xml"


def notice_page(release: str) -> str:
    return f"{NOTICE_DIR}/{release}.md"


def _html(path: str, directory_urls: bool) -> str:
    """A generated page's address (``x/y.md``) as built, from the site's root."""
    stem = path.removesuffix(".md")
    if not directory_urls:
        return stem + ".html"
    return "" if stem == "index" else (stem.removesuffix("/index") + "/")


def _id(*parts: str) -> str:
    return uuid.uuid5(_NS, "/".join(parts)).urn


def _stamp(day: str) -> str:
    return f"{day}T00:00:00Z"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _feed(title: str, feed_id: str, self_href: str, page_href: str, updated: str) -> ET.Element:
    feed = ET.Element(f"{{{ATOM}}}feed")
    _el(feed, "id", feed_id)
    _el(feed, "title", title)
    _el(feed, "subtitle", _DISCLAIMER)
    _el(feed, "updated", _stamp(updated))
    _el(feed, "link", rel="self", type="application/atom+xml", href=self_href)
    _el(feed, "link", rel="alternate", type="text/html", href=page_href)
    _el(_el(feed, "author"), "name", "CMAP telehealth policy site")
    _el(feed, "generator", "cmap-policy")
    return feed


def _bytes(feed: ET.Element) -> bytes:
    ET.indent(feed)
    out: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return out + b"\n"


def _change_html(change: dict[str, Any], prefix: str, directory_urls: bool) -> str:
    escape = html.escape
    href = prefix + _html(f"codes/{change['code']}.md", directory_urls)
    return f'<a href="{escape(href)}">{escape(change["code"])}</a> ({escape(change["description"])}): ' \
           f"{escape(change['text'])}"


def _sources_html(entry: dict[str, Any]) -> str:
    escape = html.escape
    return "<p>Sources: " + "; ".join(f'<a href="{escape(s["url"])}">{escape(s["title"])}</a>'
                                      for s in entry["sources"]) + "</p>"


def _entry(feed: ET.Element, entry: dict[str, Any], *, entry_id: str, title: str, changes: Sequence[dict[str, Any]],
           prefix: str, alternate: str, directory_urls: bool) -> None:
    el = _el(feed, "entry")
    _el(el, "id", entry_id)
    _el(el, "title", title)
    _el(el, "published", _stamp(entry["published"]))
    _el(el, "updated", _stamp(entry["published"]))
    _el(el, "link", rel="alternate", type="text/html", href=alternate)
    _el(el, "link", rel="related", type="text/html", title="Draft Important Message",
        href=prefix + _html(notice_page(entry["release"]), directory_urls))
    for s in entry["sources"]:
        _el(el, "link", rel="via", href=s["url"], title=s["title"])
    for code in sorted({c["code"] for c in changes}):
        _el(el, "category", term=code)
    _el(el, "summary", entry["summary"], type="text")
    body = "<ul>" + "".join(f"<li>{_change_html(c, prefix, directory_urls)}</li>" for c in changes) + "</ul>" \
        if changes else "<p>No row of the table was added, ended or changed.</p>"
    _el(el, "content", body + _sources_html(entry), type="html")


def release_feed(entries: Sequence[dict[str, Any]], *, directory_urls: bool = False) -> bytes:
    """The site's feed: one entry per release, newest first."""
    changelog = _html("changelog.md", directory_urls)
    feed = _feed(FEED_TITLE, _id("feed"), FEED_PATH, changelog,
                 max((e["published"] for e in entries), default="1970-01-01"))
    for e in sorted(entries, key=lambda e: (e["published"], e["ordinal"]), reverse=True):
        _entry(feed, e, entry_id=_id("release", e["release"]), title=e["title"], changes=e["changes"], prefix="",
               alternate=f"{changelog}#{e['release'].lower()}", directory_urls=directory_urls)
    return _bytes(feed)


def code_feed(code: str, entries: Sequence[dict[str, Any]], *, directory_urls: bool = False) -> bytes:
    """A code's feed: one entry per change to the code (a release may change it more than once), newest first."""
    prefix = ""  # the feed is at the site's root
    page = prefix + _html(f"codes/{code}.md", directory_urls)
    mine = [(e, c) for e in entries for c in e["changes"] if c["code"] == code]
    feed = _feed(f"CMAP telehealth table: {code}", _id("feed", code), code_feed_path(code), page,
                 max((e["published"] for e, _ in mine), default="1970-01-01"))
    for e, c in sorted(mine, key=lambda ec: (ec[0]["published"], ec[0]["ordinal"]), reverse=True):
        _entry(feed, e, entry_id=_id("change", e["release"], code, c["action"], c["effective"]),
               title=f"{code} {c['action']} in release {e['release']}: {c['text']}", changes=[c], prefix=prefix,
               alternate=page, directory_urls=directory_urls)
    return _bytes(feed)


def feed_files(policy: Policy, *, directory_urls: bool = False) -> dict[str, bytes]:
    """Every feed of the site, by path."""
    entries = [release_entry(rep, i) for i, rep in enumerate(change_report(policy))]
    out = {FEED_PATH: release_feed(entries, directory_urls=directory_urls)}
    for code in policy.views[policy.latest.id]:
        out[code_feed_path(code)] = code_feed(code, entries, directory_urls=directory_urls)
    return out


def notice_pages(policy: Policy) -> dict[str, str]:
    """A page per release with its draft Important Message (``authoring.notice``), printable as any page is."""
    out = {}
    for rel in policy.releases:
        body = notice_markdown(build_notice(policy, rel.id), code_page=lambda c: f"../codes/{c}.md")
        out[notice_page(rel.id)] = (f"---\ntitle: \"Draft notice: release {rel.id}\"\n---\n\n{body}\n"
                                    f"[Back to the changelog](../changelog.md#{rel.id.lower()})\n")
    return out


def subscribe_links(code: str | None = None, *, prefix: str = "") -> str:
    """The visible subscribe line of the changelog (``code`` None) and of a code's page."""
    if code is None:
        return (f'<p class="cmap-subscribe">Follow the changes: <a href="{prefix}{FEED_PATH}" '
                'type="application/atom+xml">subscribe to the Atom feed of every release</a> in any feed reader; '
                "each code's page has a feed of that code alone.</p>")
    return (f'<p class="cmap-subscribe">Follow {html.escape(code)}: '
            f'<a href="../{code_feed_path(code)}" type="application/atom+xml">'
            "subscribe to its Atom feed</a>, one entry each time a release changes it.</p>")


def since_block(entries: Sequence[dict[str, Any]]) -> str:
    """The changelog's "what changed since" box: every change, code by code, with its release's date; the page's
    script (cmap-since.js) shows only those after the date in the address (?since=) or of the last visit."""
    by_code: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for e in entries:
        for c in e["changes"]:
            by_code.setdefault(c["code"], []).append((e, c))
    e_ = html.escape
    out = ['<div id="cmap-since" class="cmap-since" data-search-exclude markdown="0" hidden>',
           '<form class="cmap-since-form"><label>Show what changed after <input type="date" name="since"></label> '
           '<button type="submit">Show</button></form>',
           '<p class="cmap-since-none" hidden>Nothing has changed since that date.</p>']
    for code in sorted(by_code):
        out.append(f'<section class="cmap-since-code" data-code="{e_(code)}"><h3>{e_(code)}</h3><ul>')
        for e, c in sorted(by_code[code], key=lambda ec: ec[0]["published"], reverse=True):
            out.append(f'<li data-published="{e["published"]}">{e["published"]}, release '
                       f'<a href="#{e_(e["release"].lower())}">{e_(e["release"])}</a>: {e_(c["text"])}</li>')
        out.append("</ul></section>")
    out.append("</div>")
    return "\n".join(out)
