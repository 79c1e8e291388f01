"""The built site in a real browser (Debian's chromium through Playwright), served from 127.0.0.1.

Every page a test opens is watched: a request to any other host is recorded and refused, and a
JavaScript error or console error fails the test. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
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

from cmap_policy.changes import change_report
from cmap_policy.load.loader import load_policy
from cmap_policy.model import ClaimLine, Outcome, Policy

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


_shared: dict[str, Any] = {}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium for the session. Other browser test modules import this fixture, which makes it theirs
    too: Playwright's sync API runs once per process, so a second module's instance shares the first's."""
    if "browser" in _shared:
        yield _shared["browser"]
        return
    if shutil.which(CHROMIUM) is None:
        _need(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package is not installed")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _shared["browser"] = b
        try:
            yield b
        finally:
            del _shared["browser"]
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
    page, watch = open_page(f"table.html?date={site.today}")
    n = len(in_force_ids(policy, site.today))
    assert page.is_visible("form.cmap-filters"), "the filter script did not run"
    assert len(_visible_codes(page)) == n
    assert _count_text(page) == f"{n} of {n} codes in force on {site.today}"
    watch.assert_clean()


def test_typing_a_code_leaves_only_its_row(open_page: Opener, site: BuiltSite, policy: Policy) -> None:
    page, watch = open_page(f"table.html?date={site.today}")
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
    assert "Telehealth Table decides" in page.inner_text(".cmap-empty")  # which case: test_site_biller says
    watch.assert_clean()


def test_modality_and_category_filters(open_page: Opener, site: BuiltSite, policy: Policy) -> None:
    page, watch = open_page(f"table.html?date={site.today}")
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
    page.fill("#cmap-table-date", str(site.today))
    page.dispatch_event("#cmap-table-date", "change")
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

def _since_shown(page: Any) -> dict[str, list[str]]:
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


def _since_expected(pol: Policy, since: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rep in change_report(pol):
        for change in rep["changes"]:
            if rep["published"] > since:
                out.setdefault(change["code"], []).append(rep["published"])
    return {code: sorted(days, reverse=True) for code, days in out.items()}


def test_since_shows_only_later_changes_and_remembers_the_visit(open_page: Opener, server: str,
                                                                policy: Policy) -> None:
    """The changelog's "what changed since" box: only the changes of releases published after the date in the
    address, code by code; then, on the next visit without one, those after the last visit, which the browser
    keeps to itself."""
    page, watch = open_page("changelog.html?since=2023-01-01")
    page.wait_for_selector("#cmap-since:not([hidden])")
    want = _since_expected(policy, "2023-01-01")
    assert want and _since_shown(page) == want
    assert _since_shown(page) != _since_expected(policy, "2019-01-01")  # the date matters
    assert not page.is_visible(".cmap-since-none")
    page.fill("#cmap-since input[name=since]", "2019-01-01")
    page.click("#cmap-since button[type=submit]")
    assert _since_shown(page) == _since_expected(policy, "2019-01-01")
    assert "since=2019-01-01" in page.url
    visit = page.evaluate("() => window.localStorage.getItem('cmap-changelog-last-visit')")
    assert visit == page.evaluate("() => window.cmap.today()")
    # the next visit, with no date in the address: what changed since today's visit, which is nothing yet
    page.goto(urljoin(server, "changelog.html"), wait_until="load")
    page.wait_for_selector("#cmap-since:not([hidden])")
    assert _since_shown(page) == {} and page.is_visible(".cmap-since-none")
    assert all(urljoin(server, "") in url or url.startswith("data:") for url in watch.requests)
    watch.assert_clean()


def test_screenshots_and_fit(open_page: Opener, site: BuiltSite, policy: Policy) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page, watch = open_page(f"table.html?date={site.today}", LAPTOP)
    # On a laptop the whole table fits: no sideways scrolling for a biller.
    overflow = page.eval_on_selector(".cmap-table-scroll", "e => e.scrollWidth - e.clientWidth")
    assert overflow <= 1, f"the table is {overflow}px wider than its box at {LAPTOP['width']}px"
    page.screenshot(path=str(ARTIFACTS / "table-laptop.png"), full_page=True)

    phone, phone_watch = open_page(f"table.html?date={site.today}", PHONE)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
    n = len(in_force_ids(policy, site.today))
    cards = phone.eval_on_selector_all("#cmap-table tbody tr:not([hidden])",
                                       "rows => rows.map(r => getComputedStyle(r).display)")
    assert cards == ["block"] * n, "rows are cards on a phone"
    phone.screenshot(path=str(ARTIFACTS / "table-phone.png"), full_page=True)
    phone.screenshot(path=str(ARTIFACTS / "table-phone-first-screen.png"))

    code = _in_force_code(policy, site)
    code_page, code_watch = open_page(f"codes/{code}.html", LAPTOP)
    assert code_page.is_visible("svg.cmap-timeline")
    code_page.screenshot(path=str(ARTIFACTS / f"code-{code}.png"), full_page=True)

    # The claim-line checker with an answer, and a code page on a date no public source covers, on both screens.
    shots = []
    for viewport, suffix in ((LAPTOP, "laptop"), (PHONE, "phone")):
        home, home_watch = open_page("index.html?code=T1016&date=2026-01-05&mod=93&pos=11", viewport)
        home.wait_for_selector(".cmap-answer")
        assert home.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        home.locator("#check").screenshot(path=str(ARTIFACTS / f"check-{suffix}.png"))
        gap, gap_watch = open_page("codes/97153.html?date=2024-06-01", viewport)
        assert gap.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        gap.screenshot(path=str(ARTIFACTS / f"code-97153-{suffix}.png"))
        shots += [f"check-{suffix}.png", f"code-97153-{suffix}.png"]
        home_watch.assert_clean()
        gap_watch.assert_clean()
    for name in ("table-laptop.png", "table-phone.png", f"code-{code}.png", *shots):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
    for w in (watch, phone_watch, code_watch):
        w.assert_clean()


# --- check a claim line: the form against the interpreter ------------------------------------------------

# Reads the form's answer as a reader sees it: the outcome, the row, every reason with its kind, CARC, rule,
# source and message, the attestations, and what the form says the line was.
READ_ANSWER = """form => {
  const a = form.querySelector('.cmap-answer');
  if (!a || form.querySelector('.cmap-check-answer').hidden) {
    return {errors: [...form.querySelectorAll('[data-cmap-error]')].filter(p => !p.hidden)
      .map(p => [p.dataset.cmapError, p.textContent])};
  }
  return {
    outcome: a.dataset.outcome, period: a.dataset.period || null, modality: a.dataset.modality || null,
    verdict: a.querySelector('.cmap-answer-verdict').textContent,
    line: a.querySelector('.cmap-answer-line').textContent,
    command: a.querySelector('.cmap-answer-command').textContent,
    reasons: [...a.querySelectorAll('.cmap-reason')].map(li => [li.dataset.reason, li.dataset.kind,
      li.dataset.carc || null, li.dataset.rule || null, li.dataset.source || null,
      li.querySelector('.cmap-reason-message').textContent]),
    attestations: [...a.querySelectorAll('[data-attestation]')].map(li => li.dataset.attestation),
    to_confirm: [...a.querySelectorAll('[data-limit]')].map(li => li.dataset.limit),
    status: form.querySelector('.cmap-check-status').textContent,
  };
}"""

# Enters each line into the form as a reader would (the fields' values, the modifier boxes), submits it, waits
# for the answer and reads it: the form's own code path, many lines per round trip.
ENTER_LINES = """async ([lines, read]) => {
  const form = document.querySelector('form[data-cmap-check]');
  const readAnswer = eval('(' + read + ')');
  const out = [];
  for (const l of lines) {
    form.elements.code.value = l.code;
    form.elements.date.value = l.date;
    form.querySelectorAll('input[name=mod]').forEach(b => { b.checked = l.ticked.includes(b.value); });
    form.elements.other.value = l.other;
    form.elements.pos.value = l.pos;
    form.elements.claim_type.value = l.claim_type;
    form.elements.rcc.value = l.rcc;
    form.requestSubmit();
    await form.cmapPending;
    out.push(readAnswer(form));
  }
  return out;
}"""


def _expected(policy: Policy, fields: dict[str, Any]) -> tuple[ClaimLine, dict[str, Any]]:
    """The line as the command line reads the same fields (modifiers: the ticked ones in the form's order,
    then the others), and what the interpreter answers, projected as the form shows it."""
    from cmap_policy.explain import describe_line
    from cmap_policy.interpreter import decide
    from cmap_policy.lines import parse_line
    from cmap_policy.site.check import OUTCOME_WORDS
    from cmap_policy.site.examples import cli_command

    known = list(policy.program.modifiers)
    mods = [m for m in known if m in fields["ticked"]] + fields["other"].split()
    record = {"code": fields["code"], "date": fields["date"], "modifiers": mods, "pos": fields["pos"],
              "claim_type": fields["claim_type"], "rcc": fields["rcc"]}
    line = parse_line(record, policy.program)
    d = decide(policy, line)
    return line, {
        "outcome": d.outcome.value, "period": d.period.id if d.period else None, "modality": d.modality,
        "verdict": OUTCOME_WORDS[d.outcome.value], "line": f"Claim line: {describe_line(line)}.",
        "command": cli_command(line) + " --explain",
        "reasons": [[r.code, r.kind, r.carc, r.rule, r.citation.source.id if r.citation else None, r.message]
                    for r in d.reasons],
        "attestations": [a.id for a in d.attestations] if d.outcome.value != "not_telehealth" else [],
        "to_confirm": [lim.kind for lim in d.to_confirm],
    }


def _form_lines(policy: Policy) -> Any:
    """Claim lines as a biller fills the form: codes on the table and off it, dates on and around every
    boundary of every code's cells, every class of modifier (none, each, several, ones the program does not
    know), places of service the program knows and others, both claim types, revenue codes or none."""
    from hypothesis import strategies as st

    from cmap_policy.lines import MAX_MODIFIERS
    from cmap_policy.site.check import CheckData

    data = CheckData(policy)
    days = sorted({d + dt.timedelta(days=k) for cells in data.cells.values() for start, d, _ in cells
                   for k in (-1, 0, 1) if start != dt.date.min})
    known = list(policy.program.modifiers)
    # mostly codes of the table; some a reader may try that it does not hold, and any code at all
    codes = [st.sampled_from(list(policy.views[policy.latest.id]))] * 3 + [
        st.sampled_from(["99213", "90834", "G2012"]), st.from_regex(r"\A([0-9]{4}[0-9A-Z]|[A-V][0-9]{4})\Z")]
    # mostly a day on or next to a boundary of some code's cells; any day of the table's years; any day at all
    dates = [st.sampled_from(days)] * 2 + [st.dates(dt.date(2019, 1, 1), dt.date(2027, 12, 31)),
                                           st.dates(dt.date(1995, 1, 1), dt.date(2035, 12, 31))]

    @st.composite
    def lines(draw: Any) -> dict[str, Any]:
        # mostly one modifier, as lines carry; none, several, and ones the program does not know too
        n = draw(st.sampled_from([0, 1, 1, 1, 1, 2, 2, 3, 4]))
        ticked = draw(st.lists(st.sampled_from(known), unique=True, min_size=min(n, len(known)),
                               max_size=min(n, len(known))))
        other = draw(st.lists(st.sampled_from(["25", "59", "GA", "XU"]), unique=True,
                              max_size=min(2, MAX_MODIFIERS - len(ticked))))
        code = draw(codes[draw(st.integers(0, len(codes) - 1))])
        return {
            "code": code.lower() if draw(st.integers(0, 4)) == 0 else code,
            "date": draw(dates[draw(st.integers(0, len(dates) - 1))]).isoformat(),
            "ticked": ticked, "other": " ".join(other),
            "pos": draw(st.sampled_from(["", "", "11", *policy.program.places_of_service, "12", "2", "99"])),
            "claim_type": draw(st.sampled_from(["professional", "professional", "institutional"])),
            "rcc": draw(st.sampled_from(["", "", "", "0900", "900", "0100"])),
        }

    return lines()


LINES_PER_BATCH = 50


def test_property_the_form_answers_every_line_as_the_interpreter(open_page: Opener, policy: Policy) -> None:
    """At least 1,000 claim lines (1,500 in CI) drawn by Hypothesis, each entered into the form and answered
    by its script: the outcome, the row, every reason (kind, CARC, rule, source, message), the attestations,
    the line as the form read it and the command that decides it are the interpreter's."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    page, watch = open_page("index.html")
    page.wait_for_function("document.querySelector('form[data-cmap-check]') && "
                           "!document.querySelector('form[data-cmap-check]').hidden")
    checked: list[str] = []
    batches = 30 if os.environ.get("CI") else 20

    # no shrinking: a batch of lines shrinks slowly, and the failing line's fields are in the message anyway
    @settings(max_examples=batches, deadline=None, database=None, phases=(Phase.explicit, Phase.generate),
              suppress_health_check=list(HealthCheck))
    @given(st.lists(_form_lines(policy), min_size=LINES_PER_BATCH, max_size=LINES_PER_BATCH))
    def check(batch: list[dict[str, Any]]) -> None:
        got = page.evaluate(ENTER_LINES, [batch, READ_ANSWER])
        for fields, answer in zip(batch, got, strict=True):
            line, want = _expected(policy, fields)
            want["status"] = answer.get("status")  # compared below, in its own words
            assert answer == want, (fields, line)
            assert answer["status"].startswith(want["verdict"] + ". ")
            checked.append(line.code)
            outcomes[want["outcome"]] = outcomes.get(want["outcome"], 0) + 1
            for r in want["reasons"]:
                reasons[r[0]] = reasons.get(r[0], 0) + 1

    outcomes: dict[str, int] = {}
    reasons: dict[str, int] = {}
    check()
    assert len(checked) >= 1000, len(checked)
    # codes on the table and off it were both entered, and every outcome came up
    listed = set(policy.views[policy.latest.id])
    assert any(c in listed for c in checked) and any(c not in listed for c in checked)
    assert set(outcomes) == {o.value for o in Outcome}, outcomes
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "form-property.txt").write_text(
        f"{len(checked)} claim lines entered into the form, each answered as the interpreter answers it\n"
        f"outcomes: {dict(sorted(outcomes.items()))}\nreasons: {dict(sorted(reasons.items()))}\n", encoding="utf-8")
    watch.assert_clean()


@pytest.mark.parametrize("fields", [
    {"code": "T1016", "date": "2026-01-05", "ticked": ["93"], "other": "", "pos": "11",
     "claim_type": "professional", "rcc": ""},
    {"code": "97153", "date": "2024-06-01", "ticked": ["95"], "other": "25", "pos": "02",
     "claim_type": "professional", "rcc": ""},
    {"code": "99213", "date": "2026-01-05", "ticked": ["95"], "other": "", "pos": "10",
     "claim_type": "institutional", "rcc": "0900"},
    {"code": "90846", "date": "2021-06-01", "ticked": ["93"], "other": "", "pos": "",
     "claim_type": "professional", "rcc": ""},
    {"code": "h2014", "date": "2020-03-20", "ticked": ["GT", "95"], "other": "", "pos": "2",
     "claim_type": "professional", "rcc": ""},
    {"code": "97156", "date": "2026-02-01", "ticked": [], "other": "", "pos": "11",
     "claim_type": "professional", "rcc": ""},
])
def test_typing_a_line_into_the_form_answers_it(open_page: Opener, policy: Policy, fields: dict[str, Any]) -> None:
    """Typed and clicked as a reader does, the answer is the interpreter's, the address carries the line, and
    opening that address answers it again."""
    page, watch = open_page("index.html")
    page.wait_for_selector("form[data-cmap-check]:not([hidden])")
    page.fill("#check-code", "")
    page.locator("#check-code").press_sequentially(fields["code"], delay=10)
    page.fill("#check-date", fields["date"])
    for box in fields["ticked"]:
        page.check(f"form[data-cmap-check] input[name=mod][value='{box}']")
    page.fill("#check-other", fields["other"])
    page.fill("#check-pos", fields["pos"])
    page.select_option("#check-ct", fields["claim_type"])
    page.fill("#check-rcc", fields["rcc"])
    page.click("form[data-cmap-check] button[type=submit]")
    page.wait_for_selector(".cmap-answer")
    answer = page.eval_on_selector("form[data-cmap-check]", READ_ANSWER)
    line, want = _expected(policy, fields)
    want["status"] = answer["status"]
    assert answer == want
    shared = page.url
    assert f"date={fields['date']}" in shared and f"code={line.code}" in shared
    again, again_watch = open_page(shared.split("/", 3)[3])
    again.wait_for_selector(".cmap-answer")
    assert again.eval_on_selector("form[data-cmap-check]", READ_ANSWER) == answer
    watch.assert_clean()
    again_watch.assert_clean()


def test_a_bad_field_is_named_with_the_command_lines_message(open_page: Opener, policy: Policy) -> None:
    from cmap_policy.site.check import check_messages

    messages = check_messages()
    page, watch = open_page("index.html")
    page.wait_for_selector("form[data-cmap-check]:not([hidden])")
    page.fill("#check-code", "12")
    page.fill("#check-pos", "1A")
    page.fill("#check-other", "25 59 GA XU 76")
    page.click("form[data-cmap-check] button[type=submit]")
    page.wait_for_function("document.querySelector('#check-status').textContent.startsWith('Not checked')")
    errors = dict(page.eval_on_selector("form[data-cmap-check]", READ_ANSWER)["errors"])
    assert errors == {"code": messages["code"].replace("{value}", "'12'"),
                      "pos": messages["pos"].replace("{value}", "'1A'"),
                      "other": messages["modifiers"].replace("{value}", "5")}
    assert page.get_attribute("#check-code", "aria-invalid") == "true"
    assert page.is_hidden(".cmap-check-answer")
    watch.assert_clean()


def test_the_form_works_from_the_keyboard_alone_and_announces_the_answer(open_page: Opener,
                                                                        policy: Policy) -> None:
    page, watch = open_page("codes/T1016.html?date=2026-01-05")
    page.wait_for_selector("form[data-cmap-check]:not([hidden])")
    assert page.input_value("#check-code") == "T1016"
    page.focus("#check-code")
    visited = []
    for _ in range(40):  # Tab through the form in its order, filling each field as a reader would
        focused = page.evaluate("document.activeElement.id || document.activeElement.name || "
                                "document.activeElement.value || document.activeElement.textContent.trim()")
        visited.append(focused)
        if focused == "check-date":
            page.keyboard.type("01052026")  # a date field takes the digits in the locale's order
        elif focused == "check-pos":
            page.keyboard.type("11")
        elif page.evaluate("document.activeElement.name === 'mod' && document.activeElement.value === '93'"):
            page.keyboard.press("Space")
        elif focused == "Check the line":
            page.keyboard.press("Enter")
            break
        page.keyboard.press("Tab")
    assert visited[:2] == ["check-code", "check-date"]
    assert {"check-pos", "check-ct", "check-rcc", "check-other"} <= set(visited)
    page.wait_for_function("document.querySelector('#check-status').textContent.length > 0")
    status = page.inner_text("#check-status")
    assert page.get_attribute("#check-status", "role") == "status"
    assert page.get_attribute("#check-status", "aria-live") == "polite"
    _, want = _expected(policy, {"code": "T1016", "date": "2026-01-05", "ticked": ["93"], "other": "",
                                 "pos": "11", "claim_type": "professional", "rcc": ""})
    assert status.startswith(want["verdict"])
    assert page.eval_on_selector("form[data-cmap-check]", READ_ANSWER)["reasons"] == want["reasons"]
    watch.assert_clean()


# --- any date -------------------------------------------------------------------------------------------

def test_the_table_shows_the_rows_of_any_date(open_page: Opener, policy: Policy) -> None:
    from cmap_policy.interpreter import spans

    for day in (dt.date(2021, 6, 1), dt.date(2024, 6, 1), dt.date(2026, 1, 5)):
        page, watch = open_page(f"table.html?date={day}")
        expected = sorted(i.split("@")[0] for i in in_force_ids(policy, day))
        assert sorted(_visible_codes(page)) == expected
        n = len(expected)
        assert _count_text(page) == f"{n} of {n} codes in force on {day}"
        silent = sorted(c for c in policy.views[policy.latest.id]
                        if any(s.period is None and not s.known and (s.start is None or s.start <= day)
                               and (s.end is None or day <= s.end) for s in spans(policy, c)))
        note = page.locator("#cmap-table-gaps")
        if silent:
            assert note.is_visible() and all(c in note.inner_text() for c in silent)
        else:
            assert note.is_hidden()
        watch.assert_clean()
    # Without a date in the address, the reader's today (not the build's) is the date.
    page, watch = open_page("table.html")
    today = page.evaluate("window.cmap.today()")
    assert page.input_value("#cmap-table-date") == today
    assert sorted(_visible_codes(page)) == sorted(i.split("@")[0]
                                                  for i in in_force_ids(policy, dt.date.fromisoformat(today)))
    watch.assert_clean()


def test_the_history_measures_rows_against_the_date(open_page: Opener, policy: Policy) -> None:
    day = dt.date(2024, 6, 1)
    page, watch = open_page(f"history.html?date={day}")
    page.select_option("#cmap-history-state", "ended")
    ended = sorted(p.id for cv in policy.views[policy.latest.id].values() for p in cv.periods
                   if p.end is not None and p.end < day)
    got = page.eval_on_selector_all("#cmap-history tbody tr", "rows => rows.filter(r => !r.hidden)"
                                                              ".map(r => r.dataset.period)")
    assert sorted(got) == ended
    page.select_option("#cmap-history-state", "later")
    got = page.eval_on_selector_all("#cmap-history tbody tr", "rows => rows.filter(r => !r.hidden)"
                                                              ".map(r => r.dataset.period)")
    assert sorted(got) == sorted(p.id for cv in policy.views[policy.latest.id].values() for p in cv.periods
                                 if p.effective > day)
    watch.assert_clean()


def test_a_code_pages_status_follows_the_date(open_page: Opener, policy: Policy) -> None:
    from cmap_policy.site.widgets import status_on

    page, watch = open_page("codes/97153.html?date=2024-06-01")
    box = ".cmap-status"
    assert page.get_attribute(box, "data-state") == status_on(policy, "97153", dt.date(2024, 6, 1))[0] == "unknown"
    assert "No public source for 2024-06-01" in page.inner_text(box)
    page.fill(f"{box} input[type=date]", "2021-06-01")
    page.dispatch_event(f"{box} input[type=date]", "change")
    assert page.get_attribute(box, "data-state") == status_on(policy, "97153", dt.date(2021, 6, 1))[0] == "payable"
    assert "2021-06-01" in page.inner_text(box)
    assert "date=2021-06-01" in page.url
    # Without a date in the address, the status is the reader's today's.
    page, watch2 = open_page("codes/97153.html")
    today = page.evaluate("window.cmap.today()")
    assert page.get_attribute(box, "data-date") == today
    assert page.get_attribute(box, "data-state") == status_on(policy, "97153", dt.date.fromisoformat(today))[0]
    watch.assert_clean()
    watch2.assert_clean()


# --- every screen and paper ------------------------------------------------------------------------------

def _every_page(site: BuiltSite) -> list[str]:
    return sorted(p.relative_to(site.path).as_posix() for p in site.path.rglob("*.html")
                  if "assets" not in p.parts and p.name != "404.html")


def test_on_a_phone_no_table_hides_a_column(open_page: Opener, site: BuiltSite) -> None:
    """At 390 px every table of every page either fits or stacks its rows into cards, one line per column."""
    page, watch = open_page("index.html", PHONE)
    for path in _every_page(site):
        page.goto(urljoin(page.url, "/" + path), wait_until="load")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)
        tables = page.evaluate("""() => [...document.querySelectorAll('.md-typeset table')].filter(t => t.offsetParent)
          .map(t => {
            const box = t.closest('.md-typeset__scrollwrap, .cmap-table-scroll') || t.parentElement;
            const cell = t.querySelector('tbody td');
            return [box.scrollWidth - box.clientWidth, cell ? getComputedStyle(cell).display : 'none',
                    cell ? (cell.dataset.label || '') : ''];
          })""")
        for overflow, display, label in tables:
            assert overflow <= 1 or (display != "table-cell" and label), (path, overflow, display)
    watch.assert_clean()


def test_print_keeps_every_column_the_marks_and_the_footer(open_page: Opener, site: BuiltSite,
                                                         policy: Policy) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for path, table in ((f"table.html?date={site.today}", "cmap-table"), ("history.html", "cmap-history")):
        page, watch = open_page(path, {"width": 794, "height": 1123})  # A4 at 96 dpi
        page.emulate_media(media="print")
        heads = page.eval_on_selector_all(f"#{table} thead th", "ths => ths.map(th => [th.textContent.trim(), "
                                          "th.getBoundingClientRect().width > 0 && getComputedStyle(th).display "
                                          "!== 'none'])")
        assert [h for h, _ in heads] == ["Code", "Description", "Modalities", "RCCs", "Effective",
                                         "Ends on" if table == "cmap-history" else "Ends", "Guideline", "Source"]
        assert all(shown for _, shown in heads), heads
        fits = page.evaluate(f"document.getElementById('{table}').getBoundingClientRect().right <= "
                             "document.documentElement.clientWidth + 1")
        assert fits, "the table is cut off on paper"
        assert page.is_hidden(f"#{table}-form") and page.is_hidden(".md-header")
        footer = page.inner_text(".md-copyright")
        assert policy.latest.id in footer and policy.hash[:12] in footer
        assert "Not an official publication" in footer
        assert page.is_visible(".md-copyright")
        marks = page.eval_on_selector_all(".cmap-src-secondary", "els => els.filter(e => e.offsetParent).length")
        assert marks > 0
        pdf = ARTIFACTS / f"print-{table}.pdf"
        page.pdf(path=str(pdf), format="A4", print_background=False)
        assert pdf.stat().st_size > 10_000
        watch.assert_clean()


# --- accessibility ---------------------------------------------------------------------------------------

def _axe(page: Any) -> dict[str, int]:
    from axe_playwright_python.sync_playwright import Axe

    counts: dict[str, int] = {}
    for v in Axe().run(page).response["violations"]:
        counts[v["impact"]] = counts.get(v["impact"], 0) + len(v["nodes"])
        counts[v["id"]] = counts.get(v["id"], 0) + len(v["nodes"])
        if v["impact"] in ("serious", "critical"):
            counts.setdefault("details", 0)
            print(page.url, v["id"], [n["target"] for n in v["nodes"][:3]])
    return counts


def test_axe_finds_no_serious_or_critical_violation_on_any_page(open_page: Opener, site: BuiltSite) -> None:
    """axe-core on every page as loaded, at 1366 px and on a 390 px phone, and on the home page with an answer of
    each outcome; no serious or critical finding, and every landmark named apart (landmark-unique)."""
    try:
        import axe_playwright_python  # noqa: F401
    except ImportError:
        _need("the axe-playwright-python package is not installed")
    laptop, watch = open_page("index.html")
    phone, phone_watch = open_page("index.html", PHONE)
    page = laptop
    totals: dict[str, int] = {}
    serious: list[tuple[str, dict[str, int]]] = []
    unnamed: list[str] = []

    def scan(where: str) -> None:
        counts = _axe(page)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
        if counts.get("serious") or counts.get("critical"):
            serious.append((where, counts))
        if counts.get("landmark-unique"):
            unnamed.append(where)

    pages = _every_page(site)
    for viewport, tab in ((LAPTOP, laptop), (PHONE, phone)):
        page = tab
        for path in pages:
            page.goto(urljoin(page.url, "/" + path), wait_until="load")
            scan(f"{path} at {viewport['width']} px")
    page = phone
    phone.goto(urljoin(phone.url, "/index.html?code=T1016&date=2026-01-05&mod=93"), wait_until="load")
    phone.wait_for_selector(".cmap-answer")
    scan("index.html with an answer at 390 px")
    page = laptop
    for query in ("code=T1016&date=2026-01-05&mod=93&pos=11", "code=97153&date=2026-01-05&mod=93",
                  "code=99213&date=2026-01-05&mod=95&pos=02", "code=T1016&date=2026-01-05"):
        page.goto(urljoin(page.url, "/index.html?" + query), wait_until="load")
        page.wait_for_selector(".cmap-answer")
        scan(f"index.html?{query}")
    assert not serious, serious
    assert not unnamed, f"landmarks that share a name: {unnamed}"
    assert len(pages) > 30
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "axe.txt").write_text(f"{2 * len(pages) + 5} scans: {dict(sorted(totals.items()))}\n",
                                       encoding="utf-8")
    watch.assert_clean()
    phone_watch.assert_clean()
