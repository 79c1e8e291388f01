"""The built site in a real browser (Debian's chromium through Playwright), served from 127.0.0.1.

Every page a test opens is watched: a request to any other host is recorded and refused, and a
JavaScript error or console error fails the test. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from cmap_policy.load.loader import load_policy
from cmap_policy.model import Policy

from .site_support import ARTIFACTS, BuiltSite, build_site, in_force_ids

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _need(what: str) -> None:
    message = f"{what}: the browser tests need it (CI installs chromium; the test extra brings playwright)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    return build_site(tmp_path_factory)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server(site: BuiltSite) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                             str(site.path), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the site server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        _need(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package is not installed")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Watch:
    """What a page did: every request, those that tried to leave 127.0.0.1, and every error."""

    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.external, f"requests left 127.0.0.1: {self.external}"
        assert not self.errors, f"JavaScript errors: {self.errors}"


Opener = Callable[..., tuple[Any, Watch]]


@pytest.fixture
def open_page(browser: Any, server: str) -> Iterator[Opener]:
    opened: list[tuple[Any, Watch]] = []

    def _open(path: str, viewport: dict[str, int] = LAPTOP) -> tuple[Any, Watch]:
        ctx = browser.new_context(viewport=viewport, service_workers="block")
        ctx.set_default_timeout(15_000)
        watch = Watch()

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith(("data:", "blob:")) or urlsplit(url).hostname == "127.0.0.1":
                r.continue_()
            else:
                watch.external.append(url)
                r.abort()

        ctx.route("**/*", route)
        ctx.on("request", lambda req: watch.requests.append(req.url))
        page = ctx.new_page()
        page.on("pageerror", lambda e: watch.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: watch.errors.append(f"console.{m.type}: {m.text}") if m.type == "error"
                else None)
        page.goto(urljoin(server, path), wait_until="load")
        opened.append((ctx, watch))
        return page, watch

    yield _open
    for ctx, _ in opened:
        ctx.close()


def _visible_codes(page: Any, table: str = "#cmap-table") -> list[str]:
    codes: list[str] = page.eval_on_selector_all(
        f"{table} tbody tr", "rows => rows.filter(r => !r.hidden && r.offsetParent !== null)"
                             ".map(r => r.dataset.code)")
    return codes


def _count_text(page: Any, table: str = "cmap-table") -> str:
    text: str = page.inner_text(f"#{table}-count")
    return " ".join(text.split())


def _in_force_code(policy: Policy, site: BuiltSite) -> str:
    return sorted(i.split("@")[0] for i in in_force_ids(policy, site.today))[-1]


# --- the table -------------------------------------------------------------------------------------------

def test_table_shows_every_row_in_force(open_page: Opener, site: BuiltSite, policy: Policy) -> None:
    page, watch = open_page("table.html")
    n = len(in_force_ids(policy, site.today))
    assert page.is_visible("form.cmap-filters"), "the filter script did not run"
    assert len(_visible_codes(page)) == n
    assert _count_text(page) == f"{n} of {n} codes in force on {site.today}"
    watch.assert_clean()


def test_typing_a_code_leaves_only_its_row(open_page: Opener, site: BuiltSite, policy: Policy) -> None:
    page, watch = open_page("table.html")
    n = len(in_force_ids(policy, site.today))
    code = _in_force_code(policy, site)
    page.locator("#cmap-table-q").press_sequentially(code.lower(), delay=20)
    assert _visible_codes(page) == [code]
    assert _count_text(page).startswith(f"1 of {n} codes")
    assert not page.is_visible(".cmap-empty")
    page.click("button.cmap-reset")
    page.wait_for_function(f"document.querySelector('.cmap-count-n').textContent === '{n}'")
    assert len(_visible_codes(page)) == n
    # A code that is not on the table: nothing shown, and the page says what that means.
    page.locator("#cmap-table-q").press_sequentially("99213", delay=20)
    assert _visible_codes(page) == []
    assert _count_text(page).startswith(f"0 of {n} codes")
    assert "not payable via telehealth" in page.inner_text(".cmap-empty")
    watch.assert_clean()


def test_modality_and_category_filters(open_page: Opener, site: BuiltSite, policy: Policy) -> None:
    page, watch = open_page("table.html")
    rows = [p for cv in policy.views[policy.latest.id].values() for p in cv.periods if p.covers(site.today)]
    n = len(rows)
    audio_only = sorted(p.code for p in rows if "audio-only" in p.modalities)
    page.select_option("#cmap-table-modality", "audio-only")
    assert sorted(_visible_codes(page)) == audio_only
    assert _count_text(page).startswith(f"{len(audio_only)} of {n} codes")
    page.select_option("#cmap-table-modality", "")
    category = policy.codes[rows[0].code].category
    in_category = sorted(p.code for p in rows if policy.codes[p.code].category == category)
    page.select_option("#cmap-table-category", category)
    assert sorted(_visible_codes(page)) == in_category
    assert _count_text(page).startswith(f"{len(in_category)} of {n} codes")
    watch.assert_clean()


def test_a_link_with_a_query_opens_the_table_filtered(open_page: Opener, site: BuiltSite, policy: Policy) -> None:
    code = _in_force_code(policy, site)
    page, watch = open_page(f"codes/{code}.html")
    page.click("text=show in the table")
    page.wait_for_url(re.compile(r"table\.html\?q="))
    assert _visible_codes(page) == [code]
    watch.assert_clean()


def test_sorting_by_code_and_by_date(open_page: Opener) -> None:
    page, watch = open_page("history.html")

    def column(index: int) -> list[str]:
        values: list[str] = page.eval_on_selector_all(
            "#cmap-history tbody tr", f"rows => rows.map(r => r.cells[{index}].dataset.sort ?? r.cells[{index}]"
                                      f".innerText.trim())")
        return values

    codes_before = column(0)
    page.click("#cmap-history th:has-text('Code')")
    first = column(0)
    assert first in (sorted(codes_before), sorted(codes_before, reverse=True))
    order = page.get_attribute("#cmap-history th:has-text('Code')", "aria-sort")
    assert order in ("ascending", "descending")
    assert first == sorted(codes_before, reverse=order == "descending")
    page.click("#cmap-history th:has-text('Code')")
    assert column(0) == sorted(codes_before, reverse=order != "descending")
    effective = "#cmap-history th:has-text('Effective')"
    page.click(effective)
    dates = column(4)
    desc = page.get_attribute(effective, "aria-sort") == "descending"
    assert len(set(dates)) > 1 and dates == sorted(dates, reverse=desc)
    # The keyboard sorts too: Enter on the focused heading turns the order round.
    page.focus(effective)
    page.keyboard.press("Enter")
    assert page.get_attribute(effective, "aria-sort") == ("ascending" if desc else "descending")
    assert column(4) == sorted(dates, reverse=not desc)
    page.keyboard.press(" ")
    assert page.get_attribute(effective, "aria-sort") == ("descending" if desc else "ascending")
    watch.assert_clean()


# --- code pages, search, every page ----------------------------------------------------------------------

def test_a_code_pages_links_resolve(open_page: Opener, server: str, site: BuiltSite, policy: Policy) -> None:
    code = "T1016" if "T1016" in policy.codes else next(iter(policy.codes))
    page, watch = open_page(f"codes/{code}.html")
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    local = sorted({h for h in hrefs if h.startswith(server)})
    assert len(local) > 20
    pages: dict[str, str] = {}
    for url in local:
        target, anchor = urldefrag(url)
        target = target.split("?", 1)[0]
        if target not in pages:
            resp = page.request.get(target)
            assert resp.status == 200, (url, resp.status)
            pages[target] = resp.text()
        if anchor:
            assert f'id="{anchor}"' in pages[target], url
    assert any(u.split("#")[0].endswith("changelog.html") for u in local)
    assert any(u.split("#")[0].endswith("sources.html") for u in local)
    watch.assert_clean()


def test_site_search_finds_a_code(open_page: Opener, policy: Policy, site: BuiltSite) -> None:
    code = _in_force_code(policy, site)
    page, watch = open_page("index.html")
    found = False
    # Material drops a query typed before its search index has loaded: type with real keys, and retry.
    for _ in range(8):
        page.click(".md-search__input")
        page.fill(".md-search__input", "")
        page.keyboard.type(code, delay=60)
        try:
            page.wait_for_selector(f".md-search-result__item:has-text('{code}')", timeout=2_500)
            found = True
            break
        except Exception:  # Playwright's TimeoutError: the index was not ready; type again
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)
    assert found, f"search did not find {code}"
    link = page.get_attribute(f".md-search-result__item:has-text('{code}') a", "href")
    assert link is not None and f"codes/{code}.html" in link
    watch.assert_clean()


def test_every_kind_of_page_loads_cleanly(open_page: Opener, site: BuiltSite) -> None:
    # One page of each template and generator: every top-level page, and the first of the code pages and
    # of the schema pages (the rest differ only in data, and the build test reads them all for what they load).
    paths = sorted(p.relative_to(site.path).as_posix() for p in site.path.rglob("*.html") if "assets" not in p.parts)
    chosen = [p for p in paths if not p.startswith(("codes/", "authors/schema/"))]
    chosen += [next(p for p in paths if p.startswith(prefix) and not p.endswith("index.html"))
               for prefix in ("codes/", "authors/schema/")]
    chosen += ["codes/index.html", "authors/schema/index.html"]
    page, watch = open_page("index.html")
    for path in chosen:
        page.goto(urljoin(page.url, "/" + path), wait_until="load")
        assert page.title(), path
    assert len(chosen) > 12
    assert not [u for u in watch.requests if urlsplit(u).hostname not in ("127.0.0.1", None)]
    watch.assert_clean()


# --- screenshots, and how the table fits ----------------------------------------------------------------

def test_screenshots_and_fit(open_page: Opener, site: BuiltSite, policy: Policy) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page, watch = open_page("table.html", LAPTOP)
    # On a laptop the whole table fits: no sideways scrolling for a biller.
    overflow = page.eval_on_selector(".cmap-table-scroll", "e => e.scrollWidth - e.clientWidth")
    assert overflow <= 1, f"the table is {overflow}px wider than its box at {LAPTOP['width']}px"
    page.screenshot(path=str(ARTIFACTS / "table-laptop.png"), full_page=True)

    phone, phone_watch = open_page("table.html", PHONE)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
    n = len(in_force_ids(policy, site.today))
    cards = phone.eval_on_selector_all("#cmap-table tbody tr", "rows => rows.map(r => getComputedStyle(r).display)")
    assert cards == ["block"] * n, "rows are cards on a phone"
    phone.screenshot(path=str(ARTIFACTS / "table-phone.png"), full_page=True)
    phone.screenshot(path=str(ARTIFACTS / "table-phone-first-screen.png"))

    code = _in_force_code(policy, site)
    code_page, code_watch = open_page(f"codes/{code}.html", LAPTOP)
    assert code_page.is_visible("svg.cmap-timeline")
    code_page.screenshot(path=str(ARTIFACTS / f"code-{code}.png"), full_page=True)

    for name in ("table-laptop.png", "table-phone.png", f"code-{code}.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
    for w in (watch, phone_watch, code_watch):
        w.assert_clean()
