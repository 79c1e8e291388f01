"""The site's Atom feeds, the notice drafts and /v1/releases/{id}/changes, against the one change report.

The feeds are read with feedparser, the parser of real feed readers, and checked against
``changes.change_report``: one entry per release in the site's feed, one per change in a code's feed. A build
on another day with the same policy must write the same bytes (a reader shows nothing new).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cmap_policy.authoring.notice import DRAFT_NOTE, build_notice, render_html, render_markdown
from cmap_policy.changes import change_report, release_entry
from cmap_policy.cli import main
from cmap_policy.load import load_policy
from cmap_policy.model import Policy
from cmap_policy.site import generate_pages
from cmap_policy.site.feeds import FEED_PATH, code_feed_path, feed_files
from cmap_policy.testing import write_tree
from cmap_policy.testing.trees import bundled_tree

feedparser = pytest.importorskip("feedparser")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def feeds(policy: Policy) -> dict[str, bytes]:
    return feed_files(policy)


def _parsed(data: bytes) -> Any:
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def test_the_site_feed_has_one_entry_per_release_with_its_dates_and_sources(policy: Policy,
                                                                            feeds: dict[str, bytes]) -> None:
    report = change_report(policy)
    feed = _parsed(feeds[FEED_PATH])
    assert len(feed.entries) == len(report) == len(policy.releases)
    assert len({e.id for e in feed.entries}) == len(feed.entries)
    by_title = {e.title: e for e in feed.entries}
    for i, rep in enumerate(report):
        entry = by_title[release_entry(rep, i)["title"]]
        day = dt.date.fromisoformat(rep["published"]).timetuple()[:3]
        assert entry.published_parsed[:3] == day and entry.updated_parsed[:3] == day
        assert entry.summary == rep["summary"]
        links = {(link.rel, link.href) for link in entry.links}
        assert ("related", f"notices/{rep['release']}.html") in links
        assert ("alternate", f"changelog.html#{rep['release'].lower()}") in links
        assert {s["url"] for s in rep["implements"]} <= {h for r, h in links if r == "via"}
        assert sorted(t.term for t in entry.get("tags", [])) == sorted({c["code"] for c in rep["changes"]})
        content = entry.content[0].value
        for change in rep["changes"]:
            assert f'href="codes/{change["code"]}.html"' in content
            assert change["effective"] in content and (change["end"] or "") in content
    newest = max(dt.date.fromisoformat(r["published"]) for r in report)
    assert feed.feed.updated_parsed[:3] == newest.timetuple()[:3]


def test_each_code_feed_has_one_entry_per_change_to_the_code(policy: Policy, feeds: dict[str, bytes]) -> None:
    per_code: Counter[str] = Counter(c["code"] for rep in change_report(policy) for c in rep["changes"])
    codes = list(policy.views[policy.latest.id])
    assert {code_feed_path(c) for c in codes} | {FEED_PATH} == set(feeds)
    for code in codes:
        feed = _parsed(feeds[code_feed_path(code)])
        assert len(feed.entries) == per_code[code], code
        for entry in feed.entries:
            assert entry.title.startswith(f"{code} ")
            assert entry.link == f"codes/{code}.html"
            assert [t.term for t in entry.tags] == [code]
        assert len({e.id for e in feed.entries}) == len(feed.entries)


def test_a_build_on_another_day_writes_the_same_feeds_byte_for_byte(policy: Policy) -> None:
    one = generate_pages(policy, today=dt.date(2026, 1, 5))
    other = generate_pages(policy, today=dt.date(2027, 7, 1))
    feeds = [p for p in one if p.startswith("feed") and p.endswith(".xml")]
    assert FEED_PATH in feeds and len(feeds) == len(policy.views[policy.latest.id]) + 1
    for path in feeds:
        assert one[path] == other[path], path


def test_a_policy_change_changes_only_the_feeds_it_touches(tmp_path: Path, policy: Policy) -> None:
    tree = bundled_tree()
    latest = tree.releases["releases"][-1]
    latest["summary"] = latest["summary"] + " (reworded)"
    changed = feed_files(load_policy(write_tree(tree, tmp_path / "policy")))
    before = feed_files(policy)
    assert changed[FEED_PATH] != before[FEED_PATH]
    touched = {c["code"] for c in change_report(policy, latest["id"])[0]["changes"]}
    for code in policy.views[policy.latest.id]:
        same = changed[code_feed_path(code)] == before[code_feed_path(code)]
        assert same == (code not in touched), code


def test_every_bundled_release_has_a_draft_notice_marked_as_a_draft(policy: Policy) -> None:
    for rel in policy.releases:
        notice = build_notice(policy, rel.id)
        text = render_markdown(notice)
        assert text.startswith("# DRAFT: ") and DRAFT_NOTE.split(":")[0] in text
        assert "## Sources" in text and all(s.url in text for s in rel.implements)
        for rep_change in change_report(policy, rel.id)[0]["changes"]:
            assert f"### {rep_change['code']}: " in text
        page = render_html(notice)
        assert "<h1>DRAFT: " in page and "not a notice of the Department of Social Services" in page


def test_the_notice_says_what_providers_must_do_and_keeps_the_authors_words(tmp_path: Path) -> None:
    tree = bundled_tree()
    words = ["Providers asked <why> this *changed*: because DSS said so.", "Call 1-800-555-0100 with questions."]
    rel = tree.releases["releases"][-1]
    rel["notice_paragraphs"] = words
    policy = load_policy(write_tree(tree, tmp_path / "policy"))
    notice = build_notice(policy, rel["id"])
    assert notice.author_paragraphs == tuple(words)
    assert all(re.sub(r"\\(.)", r"\1", p).replace("&lt;", "<") in
               re.sub(r"\\(.)", r"\1", render_markdown(notice)).replace("&lt;", "<") for p in words)
    assert "Providers asked &lt;why&gt; this *changed*" in render_html(notice)
    audio_only = [c for c in notice.codes if any("audio-only" in a for a in c.actions)]
    for c in audio_only:
        assert any("modifier 93" in a or "93 or" in a or "or 93" in a for a in c.actions), c


def test_notice_command(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["notice", "PB-2020-14"])
    assert res.exit_code == 0 and res.output.startswith("# DRAFT: ")
    res = runner.invoke(main, ["notice", "PB-2020-14", "--format", "html"])
    assert res.exit_code == 0 and res.output.startswith("<!DOCTYPE html>")
    res = runner.invoke(main, ["notice", "NO-SUCH"])
    assert res.exit_code == 2 and "NO-SUCH" in res.output


def test_the_service_returns_the_feed_entry_of_a_release(policy: Policy, feeds: dict[str, bytes]) -> None:
    pytest.importorskip("uvicorn")
    from tests.service_support import serve

    feed = _parsed(feeds[FEED_PATH])
    with serve() as running, running.client() as c:
        for i, rel in enumerate(policy.releases):
            got = c.get(f"/v1/releases/{rel.id}/changes")
            assert got.status_code == 200
            body = got.json()
            assert body == release_entry(change_report(policy, rel.id)[0], i)
            entry = next(e for e in feed.entries if e.title == body["title"])
            assert entry.summary == body["summary"]
            assert sorted(t.term for t in entry.get("tags", [])) == sorted({ch["code"] for ch in body["changes"]})
        missing = c.get("/v1/releases/NO-SUCH/changes")
        assert missing.status_code == 404 and missing.json()["field"] == "id"
        doc = c.get("/openapi.json").json()
    assert "/v1/releases/{id}/changes" in doc["paths"]
    assert "ReleaseChanges" in doc["components"]["schemas"]


def test_every_built_page_names_the_feeds_and_the_pages_link_them(tmp_path_factory: pytest.TempPathFactory,
                                                                  policy: Policy) -> None:
    pytest.importorskip("mkdocs")
    from tests.site_support import build_site

    out = build_site(tmp_path_factory).path
    pages = sorted(Path(out).rglob("*.html"))
    assert len(pages) > len(policy.views[policy.latest.id])
    head_link = re.compile(r'<link rel="alternate" type="application/atom\+xml"[^>]*\s+href="([^"]+)"')
    for page in pages:
        links = head_link.findall(page.read_text(encoding="utf-8"))
        assert links, page
        if page.name == "404.html":  # served at any address, so MkDocs writes its links from the site's root
            assert links[0] == "/feed.xml"
            continue
        assert (page.parent / links[0]).resolve() == (Path(out) / FEED_PATH).resolve(), page
    for code in policy.views[policy.latest.id]:
        text = (Path(out) / "codes" / f"{code}.html").read_text(encoding="utf-8")
        assert f'href="../feed-{code}.xml"' in head_link.sub("", text), code  # the visible subscribe link
        assert head_link.findall(text)[1] == f"../feed-{code}.xml"
        assert (Path(out) / code_feed_path(code)).is_file()
    changelog = (Path(out) / "changelog.html").read_text(encoding="utf-8")
    assert 'class="cmap-subscribe"' in changelog and 'id="cmap-since"' in changelog
    for rel in policy.releases:
        assert f'href="notices/{rel.id}.html"' in changelog
        assert "DRAFT: " in (Path(out) / "notices" / f"{rel.id}.html").read_text(encoding="utf-8")
