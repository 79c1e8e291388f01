"""The changelog's "what changed since" box in a real browser (Debian's chromium, as tests/test_site_browser.py).

The box must show, code by code, exactly the changes of the releases published after the date in the address,
then, on the next visit without one, those after the last visit, which the browser keeps to itself.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from cmap_policy.changes import change_report
from cmap_policy.model import Policy

from .test_site_browser import Opener, browser, open_page, policy, server, site  # noqa: F401 (fixtures)


def _shown(page: Any) -> dict[str, list[str]]:
    shown: dict[str, list[str]] = page.evaluate("""() => {
        const out = {};
        document.querySelectorAll('#cmap-since .cmap-since-code').forEach(s => {
            if (s.hidden) return;
            out[s.dataset.code] = [...s.querySelectorAll('li')].filter(li => !li.hidden)
                .map(li => li.dataset.published);
        });
        return out;
    }""")
    return shown


def _expected(pol: Policy, since: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rep in change_report(pol):
        for change in rep["changes"]:
            if rep["published"] > since:
                out.setdefault(change["code"], []).append(rep["published"])
    return {code: sorted(days, reverse=True) for code, days in out.items()}


def test_since_shows_only_later_changes_and_remembers_the_visit(open_page: Opener, server: str,  # noqa: F811
                                                                policy: Policy) -> None:  # noqa: F811
    page, watch = open_page("changelog.html?since=2023-01-01")
    page.wait_for_selector("#cmap-since:not([hidden])")
    want = _expected(policy, "2023-01-01")
    assert want and _shown(page) == want
    assert _shown(page) != _expected(policy, "2019-01-01")  # the date matters
    assert not page.is_visible(".cmap-since-none")
    page.fill("#cmap-since input[name=since]", "2019-01-01")
    page.click("#cmap-since button[type=submit]")
    assert _shown(page) == _expected(policy, "2019-01-01")
    assert "since=2019-01-01" in page.url
    visit = page.evaluate("() => window.localStorage.getItem('cmap-changelog-last-visit')")
    assert visit == page.evaluate("() => window.cmap.today()")
    # the next visit, with no date in the address: what changed since today's visit, which is nothing yet
    page.goto(urljoin(server, "changelog.html"), wait_until="load")
    page.wait_for_selector("#cmap-since:not([hidden])")
    assert _shown(page) == {} and page.is_visible(".cmap-since-none")
    assert all(urljoin(server, "") in url or url.startswith("data:") for url in watch.requests)
    watch.assert_clean()
