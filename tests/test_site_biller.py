"""The site as a biller uses it, in Debian's chromium: printed, shared, on a phone, in plain words.

Each test drives the built site (served from 127.0.0.1, as in ``test_site_browser``) the way a biller does:
prints a checked line and the table to PDF and reads the PDF back, opens a shared link on a phone, types an
impossible date, reads an answer for ids and file paths, filters the table and shares the address.
"""

# ruff: noqa: F811  (the browser fixtures are imported from test_site_browser, and named again as parameters)
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cmap_policy.interpreter import decide, spans
from cmap_policy.lines import parse_line
from cmap_policy.model import Policy

from .site_support import BuiltSite, in_force_ids
from .test_site_browser import (  # noqa: F401  (fixtures, shared with the other browser tests)
    LAPTOP,
    PHONE,
    Opener,
    browser,
    open_page,
    policy,
    server,
    site,
)

LETTER_LANDSCAPE = (792, 612)  # points


def _pdf(page: Any, **options: Any) -> tuple[int, str, list[tuple[float, float]]]:
    """Print the page as Chromium prints it (page.pdf): its page count, its text with runs of white space made
    one space, and each page's size in points."""
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(page.pdf(**options)))
    text = " ".join(" ".join(p.extract_text() or "" for p in reader.pages).split())
    return len(reader.pages), text, [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]


def _plain(text: str) -> str:
    return " ".join(text.replace("\ufb01", "fi").replace("\ufb00", "ff").replace("\ufb03", "ffi").split())


def _squash(text: str) -> str:
    """Text with no white space: a PDF's lines break where the page does (after a hyphen, inside a URL)."""
    return re.sub(r"\s+", "", _plain(text))


def _answer(page: Any, query: str) -> None:
    page.goto(re.sub(r"/[^/]*$", "/", page.url) + "index.html?" + query, wait_until="load")
    page.wait_for_selector(".cmap-answer")


def _decision(policy: Policy, **fields: Any) -> Any:
    return decide(policy, parse_line(fields, policy.program))


# --- 1. print ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, fields", [
    ("code=97153&date=2026-01-05&mod=93", {"code": "97153", "date": "2026-01-05", "modifiers": ["93"]}),
    ("code=T1016&date=2026-01-05&mod=93&pos=11",
     {"code": "T1016", "date": "2026-01-05", "modifiers": ["93"], "pos": "11"}),
    ("code=99213&date=2026-01-05&mod=95", {"code": "99213", "date": "2026-01-05", "modifiers": ["95"]}),
])
def test_a_checked_line_prints_as_a_one_page_decision_record(open_page: Opener, policy: Policy, query: str,
                                                             fields: dict[str, Any]) -> None:
    from cmap_policy.site.check import OUTCOME_WORDS

    page, watch = open_page("index.html?" + query)
    page.wait_for_selector(".cmap-answer")
    d = _decision(policy, **fields)
    for paper in ("Letter", "A4"):
        pages, text, _ = _pdf(page, format=paper)
        text = _plain(text)
        assert pages == 1, f"the record of {query} takes {pages} {paper} pages"
        assert _plain(OUTCOME_WORDS[d.outcome.value]) in text
        assert f"Claim line: {fields['code']} on {fields['date']}" in text
        for r in d.reasons:
            assert _squash(r.message) in _squash(text), r.code
            if r.citation is not None:
                assert _squash(r.citation.source.url) in _squash(text)
        assert policy.latest.id in text and policy.hash[:12] in text
        assert f"checked on {dt.date.today()}" in text or "checked on " in text
        assert "What to do next:" in text
        assert "Procedure code" not in text and "Check the line" not in text  # the form's fields stay on screen
        if d.outcome.value == "payable":
            assert all(_plain(a.text)[:40] in text for a in d.attestations)
        else:
            assert not any(_plain(a.text)[:40] in text for a in d.attestations)
    watch.assert_clean()


def test_the_table_prints_legibly_about_fifteen_rows_a_page(open_page: Opener, site: BuiltSite,
                                                             policy: Policy) -> None:
    day = site.today
    page, watch = open_page(f"table.html?date={day}")
    rows = [p for cv in policy.views[policy.latest.id].values() for p in cv.periods if p.covers(day)]
    for paper in ("Letter", "A4"):
        pages, text, sizes = _pdf(page, format=paper)
        assert pages <= 1 + len(rows) // 15 + 1, f"{len(rows)} rows take {pages} {paper} pages"
        assert all(w > h for w, h in sizes), "the table prints landscape"
        text = _plain(text)
        words = set(re.findall(r"[\w']+", text))
        for p in rows:
            # each word of each description whole: a word broken in the middle would be two pieces
            assert p.code in words, p.code
            assert set(re.findall(r"[\w']+", policy.codes[p.code].description)) <= words, p.code
        assert policy.hash[:12] in text
    # Its small labels are smaller than the cells' text, never larger.
    page.emulate_media(media="print")
    sizes_pt = page.evaluate("""() => {
      const px = s => parseFloat(getComputedStyle(s).fontSize);
      const cell = document.querySelector('#cmap-table tbody tr:not([hidden]) .cmap-c-desc');
      const label = document.querySelector('#cmap-table tbody tr:not([hidden]) .cmap-category');
      return [px(cell), px(label)];
    }""")
    assert sizes_pt[1] < sizes_pt[0]
    watch.assert_clean()


def test_code_pages_and_the_changelog_print_cleanly(open_page: Opener, policy: Policy) -> None:
    from cmap_policy.authoring.changelog import change_report, release_name

    page, watch = open_page("codes/97153.html")
    pages, text, _ = _pdf(page, format="Letter")
    text = _plain(text)
    assert "97153" in text and "Check the line" not in text and pages <= 4
    page.goto(page.url.replace("codes/97153.html", "changelog.html"), wait_until="load")
    pages, text, _ = _pdf(page, format="Letter")
    for rep in change_report(policy):
        assert _squash(release_name(rep)) in _squash(text).replace("\u2019", "'")
    # on paper every release is open, folded as they are on the screen
    assert "Rows ended" in text and "Codes added to the telehealth table" in text
    watch.assert_clean()


# --- 2, 3. the table's search, its state in the address, its downloads ----------------------------------

def test_a_code_the_data_does_not_hold_gets_the_sentence_that_applies(open_page: Opener, policy: Policy) -> None:
    whole = policy.complete_from.get(policy.latest.id)
    for day in (dt.date(2021, 6, 1), dt.date(2026, 1, 5)):
        page, watch = open_page(f"table.html?date={day}&q=99213")
        assert page.is_visible(".cmap-empty")
        said = page.inner_text(".cmap-empty")
        if whole is not None and day >= whole:
            assert said.startswith(f"99213 is not on the telehealth table on {day}: this data holds the whole")
        else:
            assert said.startswith(f"99213 is not in this data, which holds for {day} only the rows public sources")
            assert "undetermined, not a denial" in said
        assert "where it holds only" not in said  # one case, not both
        watch.assert_clean()
    # A code the data holds, on a date no public source covers: undetermined, said so.
    silent = next((c, s.start) for c in policy.views[policy.latest.id] for s in spans(policy, c)
                  if s.period is None and not s.known and s.start is not None)
    page, watch = open_page(f"table.html?date={silent[1]}&q={silent[0]}")
    if page.is_visible(".cmap-empty"):
        assert page.inner_text(".cmap-empty").startswith(f"No public source this data holds covers {silent[0]}")
    watch.assert_clean()


def test_every_filter_and_the_date_are_in_the_address(open_page: Opener, policy: Policy) -> None:
    day = dt.date(2021, 6, 1)
    letter = sorted(i for i in in_force_ids(policy, day))[0][0]
    page, watch = open_page(f"table.html?date={day}")
    page.select_option("#cmap-table-modality", "audio-video")
    page.locator("#cmap-table-q").press_sequentially(letter, delay=10)
    query = parse_qs(urlsplit(page.url).query)
    assert query["date"] == [str(day)] and query["modalities"] == ["audio-video"] and query["q"] == [letter]
    shown = sorted(page.eval_on_selector_all("#cmap-table tbody tr", "rs => rs.filter(r => !r.hidden)"
                                                                     ".map(r => r.dataset.code)"))
    assert shown
    again, again_watch = open_page(page.url.split("/", 3)[3])
    assert again.input_value("#cmap-table-q") == letter
    assert again.input_value("#cmap-table-modality") == "audio-video"
    assert sorted(again.eval_on_selector_all("#cmap-table tbody tr", "rs => rs.filter(r => !r.hidden)"
                                                                     ".map(r => r.dataset.code)")) == shown
    watch.assert_clean()
    again_watch.assert_clean()


def test_the_downloads_follow_the_date(open_page: Opener, policy: Policy) -> None:
    for day in (dt.date(2020, 4, 1), dt.date(2024, 6, 1), dt.date(2026, 1, 5)):
        page, watch = open_page(f"table.html?date={day}")
        assert page.inner_text(".cmap-download-date") == str(day)
        href = page.get_attribute("a[data-cmap-download=csv]", "href")
        assert href is not None
        resp = page.request.get(page.url.rsplit("/", 1)[0] + "/" + href)
        assert resp.status == 200
        got = sorted({r["Procedure Code"] for r in csv.DictReader(io.StringIO(resp.body().decode("utf-8-sig")))})
        assert got == sorted({i.split("@")[0] for i in in_force_ids(policy, day)}), day
        for fmt in ("xlsx", "json"):
            other = page.get_attribute(f"a[data-cmap-download={fmt}]", "href")
            assert other is not None and other == href.removesuffix(".csv") + "." + fmt
        watch.assert_clean()


def test_a_code_pages_two_dates_stay_in_step(open_page: Opener) -> None:
    page, watch = open_page("codes/97153.html?date=2024-06-01")
    page.wait_for_selector("form[data-cmap-check]:not([hidden])")
    assert page.input_value("#check-date") == "2024-06-01"
    page.fill(".cmap-status input[type=date]", "2021-06-01")
    page.dispatch_event(".cmap-status input[type=date]", "change")
    assert page.input_value("#check-date") == "2021-06-01"
    page.fill("#check-date", "2026-01-05")
    page.click("form[data-cmap-check] button[type=submit]")
    page.wait_for_selector(".cmap-answer")
    assert page.input_value(".cmap-status input[type=date]") == "2026-01-05"
    assert page.get_attribute(".cmap-status", "data-date") == "2026-01-05"
    watch.assert_clean()


# --- 4, 7. a shared link, the first phone screen ---------------------------------------------------------

def test_a_shared_link_lands_on_the_answer_on_a_phone(open_page: Opener) -> None:
    for path in ("index.html?code=97153&date=2026-01-05&mod=93", "codes/T1016.html?date=2026-01-05&mod=93"):
        page, watch = open_page(path, PHONE)
        page.wait_for_selector(".cmap-answer")
        page.wait_for_timeout(200)
        top = page.eval_on_selector(".cmap-answer-verdict", "e => e.getBoundingClientRect().top")
        assert 0 <= top < PHONE["height"] / 2, f"{path}: the answer is {top}px down the screen"
        watch.assert_clean()


def test_the_checker_is_on_the_first_phone_screen(open_page: Opener) -> None:
    page, watch = open_page("index.html", PHONE)
    page.wait_for_selector("form[data-cmap-check]:not([hidden])")
    for field in ("#check-code", "#check-date"):
        bottom = page.eval_on_selector(field, "e => e.getBoundingClientRect().bottom")
        assert bottom <= PHONE["height"], f"{field} ends {bottom}px down"
    watch.assert_clean()


# --- 5. dates ---------------------------------------------------------------------------------------------

def _submit(page: Any, code: str, date: str) -> dict[str, str]:
    page.fill("#check-code", code)
    page.fill("#check-date", date)
    page.click("form[data-cmap-check] button[type=submit]")
    page.wait_for_function("document.querySelector('#check-status').textContent.length > 0")
    errors: dict[str, str] = dict(page.eval_on_selector_all(
        "[data-cmap-error]", "ps => ps.filter(p => !p.hidden).map(p => [p.dataset.cmapError, p.textContent])"))
    return errors


def test_an_impossible_date_is_named_and_the_typed_text_kept(open_page: Opener, policy: Policy) -> None:
    page, watch = open_page("index.html")
    page.wait_for_selector("form[data-cmap-check]:not([hidden])")
    assert _submit(page, "T1016", "2026-02-30") == {
        "date": "'2026-02-30' is not a real calendar date: February 2026 has 28 days"}
    assert page.input_value("#check-date") == "2026-02-30"
    assert page.get_attribute("#check-date", "aria-invalid") == "true"
    assert _submit(page, "T1016", "02/29/2025") == {
        "date": "'02/29/2025' is not a real calendar date: February 2025 has 28 days"}
    assert page.input_value("#check-date") == "02/29/2025"
    assert _submit(page, "T1016", "2024-13-01") == {"date": "'2024-13-01' is not a real calendar date: there is "
                                                            "no month 13"}
    assert _submit(page, "", "") == {"code": "missing: enter the procedure code",
                                     "date": "missing: enter the date of service"}
    assert _submit(page, "T1016", "") == {"date": "missing: enter the date of service"}
    # a real day typed as a biller types it is read as that day
    assert _submit(page, "T1016", "02/29/2024") == {}
    assert page.inner_text(".cmap-answer-line").startswith("Claim line: T1016 on 2024-02-29")
    watch.assert_clean()


# --- 6. plain words ---------------------------------------------------------------------------------------

# What a reader sees first: the answer without its folded parts and without the print-only heading.
FIRST_READING = """a => { const c = a.cloneNode(true);
  c.querySelectorAll('details, .cmap-record-head').forEach(d => d.remove());
  return c.innerText; }"""


@pytest.mark.parametrize("query, step", [
    ("code=97153&date=2026-01-05&mod=93", "Bill 95 or GT if the visit was by audio-video"),
    ("code=T1016&date=2026-01-05", "tick the modifier you will bill (93, 95, FQ, GQ or GT)"),
    ("code=99213&date=2026-01-05&mod=95", "Look the code up on the official CMAP Telehealth Table"),
    ("code=T1016&date=2026-01-05&mod=93&pos=11", "Bill the line as checked"),
])
def test_answers_are_in_plain_words_with_a_next_step(open_page: Opener, policy: Policy, query: str,
                                                     step: str) -> None:
    page, watch = open_page("index.html?" + query)
    page.wait_for_selector(".cmap-answer")
    first = page.eval_on_selector(".cmap-answer", FIRST_READING)
    assert "What to do next:" in first and step in " ".join(first.split()), first
    assert not re.search(r"\b[A-Z]+_[A-Z_]+\b", first), "a reason constant in the first reading"
    assert "@" not in first and "policy/" not in first and "cmap-policy" not in first
    assert "cmap-policy" not in page.inner_text(".cmap-check-title")
    outcome = page.get_attribute(".cmap-answer", "data-outcome")
    details = page.locator(".cmap-integrators")
    assert details.count() == 1 and details.get_attribute("open") is None
    assert "cmap-policy eval" in details.inner_text() or "cmap-policy eval" in details.text_content()
    attestations = page.locator("[data-attestation]")
    if attestations.count():
        assert attestations.first.is_visible() == (outcome == "payable")
    watch.assert_clean()


# --- 9, 10, 11, 12. phones, accessibility, the changelog, the form and search ----------------------------

def test_timelines_are_text_on_a_phone(open_page: Opener, policy: Policy) -> None:
    for code in ("97153", "T1016"):
        page, watch = open_page(f"codes/{code}.html", PHONE)
        assert page.is_hidden("svg.cmap-timeline")
        items = page.locator(".cmap-timeline-text li")
        assert items.count() == len(spans(policy, code))
        assert items.first.is_visible()
        size = page.eval_on_selector(".cmap-timeline-text li", "e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 12
        laptop, laptop_watch = open_page(f"codes/{code}.html", LAPTOP)
        assert laptop.is_visible("svg.cmap-timeline") and laptop.is_hidden(".cmap-timeline-text")
        watch.assert_clean()
        laptop_watch.assert_clean()


def test_the_changelog_is_named_folded_and_short(open_page: Opener, policy: Policy) -> None:
    from cmap_policy.authoring.changelog import change_report, release_name

    report = change_report(policy)
    for viewport, tallest in ((LAPTOP, 4_000), (PHONE, 6_000)):
        page, watch = open_page("changelog.html", viewport)
        names = page.eval_on_selector_all("details.cmap-release > summary strong", "ss => ss.map(s => s.textContent)")
        assert names == [release_name(r) for r in reversed(report)]
        assert "Important Message:" not in page.inner_text("article")
        assert page.eval_on_selector_all("details.cmap-release", "ds => ds.filter(d => d.open).length") == 0
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < tallest, f"the changelog is {height}px tall at {viewport['width']}px"
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        watch.assert_clean()
    # A link to a release opens it.
    page, watch = open_page("changelog.html#pb-2023-38")
    assert page.get_attribute("details#pb-2023-38", "open") is not None
    watch.assert_clean()


def test_the_claim_type_is_not_cut_off(open_page: Opener) -> None:
    page, watch = open_page("index.html", LAPTOP)
    page.wait_for_selector("form[data-cmap-check]:not([hidden])")
    room = page.evaluate("""() => { const s = document.querySelector('#check-ct'); const st = getComputedStyle(s);
      const c = document.createElement('canvas').getContext('2d'); c.font = st.fontSize + ' ' + st.fontFamily;
      const widest = Math.max(...[...s.options].map(o => c.measureText(o.text).width));
      return s.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) - 20 - widest; }""")
    assert room >= 0, f"the claim type's longest name is {-room}px wider than its box"
    watch.assert_clean()


def test_site_search_offers_the_billers_pages_only(open_page: Opener, site: BuiltSite) -> None:
    page, watch = open_page("index.html")
    index = json.loads(page.request.get(page.url.rsplit("/", 1)[0] + "/search/search_index.json").text())
    pages = {d["location"].split("#")[0] for d in index["docs"]}
    assert "table.html" in pages and "codes/97153.html" in pages and "reasons.html" in pages
    engineering = {"performance.html", "spark.html", "testing.html", "architecture.html", "site.html"}
    assert not pages & engineering
    assert not [p for p in pages if p.startswith("authors/")]
    watch.assert_clean()


# --- a whole claim at once ------------------------------------------------------------------------------

def _claim_file(path: Any, n: int) -> None:
    """``n`` claim lines as a biller's export holds them: codes on the table and off it, dates of every year
    the table has and a few impossible ones, modifiers the program knows, others and too many, places of
    service, and a few lines that cannot be read at all (a bad code, a bad modifier)."""
    import random

    rnd = random.Random(28)
    codes = ["T1016", "97153", "97156", "90791", "H0031", "90846", "99213", "G2012", "h2014", "12"]
    mods = ["", "93", "95", "GT", "FQ", "GQ", "G0", "FR", "25", "95 93", "GT;25", "XYZ", "93 95 GT FQ 25"]
    lines = ["line_id,code,date,modifiers,pos,claim_type,rcc"]
    for i in range(n):
        day = rnd.randint(1, 31) if rnd.random() < 0.995 else 32
        rcc = rnd.choice(["", "", "0900", "900"])
        lines.append(f"L{i},{rnd.choice(codes)},{rnd.randint(2019, 2027):04d}-{rnd.randint(1, 12):02d}-{day:02d},"
                     f"\"{rnd.choice(mods)}\",{rnd.choice(['', '11', '02', '10', '2', '12'])},"
                     f"{rnd.choice(['professional', 'professional', 'institutional'])},{rcc}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _cli_decisions(path: Any) -> tuple[dict[int, tuple[str, str]], int]:
    import subprocess
    import sys

    out = path.with_name(path.stem + "-decisions.csv")
    proc = subprocess.run([sys.executable, "-m", "cmap_policy", "eval", str(path), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr
    rows = {int(r["line"]): (r["outcome"], r["reasons"]) for r in csv.DictReader(out.open(encoding="utf-8"))}
    errors = out.with_name(out.stem + ".errors.jsonl")
    return rows, len(errors.read_text(encoding="utf-8").splitlines()) if errors.exists() else 0


def _page_decisions(page: Any) -> tuple[dict[int, tuple[str, str]], int, dict[str, int]]:
    page.wait_for_function("document.querySelector('form[data-cmap-claims]').cmapResult", timeout=300_000)
    result = page.evaluate("document.querySelector('form[data-cmap-claims]').cmapResult")
    rows = {int(r["line"]): (r["outcome"], r["reasons"]) for r in csv.DictReader(io.StringIO(result["csv"]))}
    return rows, len(result["errors"]), result["counts"]


def test_a_100000_line_claim_file_is_decided_in_the_page_as_the_command_line_decides_it(
        open_page: Opener, tmp_path: Any) -> None:
    path = tmp_path / "claims.csv"
    _claim_file(path, 100_000)
    want, want_errors = _cli_decisions(path)
    page, watch = open_page("claims.html")
    page.wait_for_selector("form[data-cmap-claims]:not([hidden])")
    page.set_input_files("#claims-file", str(path))
    got, errors, counts = _page_decisions(page)
    assert got == want, "the page decided some line otherwise than cmap-policy eval"
    assert errors == want_errors and len(got) + errors == 100_000
    outcomes: dict[str, int] = {}
    for outcome, _ in want.values():
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert {k: v for k, v in counts.items() if v} == outcomes
    # the summary the biller reads says the same counts
    shown = dict(page.eval_on_selector_all(".cmap-claims-summary tbody tr",
                                           "rs => rs.map(r => [r.dataset.outcome, +r.cells[1].textContent])"))
    assert {k: v for k, v in shown.items() if k != "error" and v} == outcomes and shown["error"] == errors
    # decided by a worker, and the file went nowhere: every request was a GET of the site's own files
    assert any(u.endswith("cmap-claims-worker.js") for u in watch.requests)
    assert page.get_attribute(".cmap-claims-download", "download") == "decisions.csv"
    watch.assert_clean()


def test_pasted_lines_and_an_837_file(open_page: Opener, tmp_path: Any) -> None:
    from .site_support import ROOT

    examples = ROOT / "examples"
    want, want_errors = _cli_decisions_copy(examples / "claims.jsonl", tmp_path)
    page, watch = open_page("claims.html")
    page.wait_for_selector("form[data-cmap-claims]:not([hidden])")
    page.fill("#claims-text", (examples / "claims.jsonl").read_text(encoding="utf-8"))
    page.click("form[data-cmap-claims] button[type=submit]")
    got, errors, _ = _page_decisions(page)
    assert got == want and errors == want_errors
    # an 837 is the command line's to read: the page says so rather than guess
    page.evaluate("document.querySelector('form[data-cmap-claims]').cmapResult = null")
    page.set_input_files("#claims-file", str(examples / "claims.837"))
    page.wait_for_function("document.querySelector('.cmap-claims-status').textContent.includes('cmap-policy eval')")
    assert "837" in page.inner_text(".cmap-claims-status")
    watch.assert_clean()


def _cli_decisions_copy(source: Any, tmp_path: Any) -> tuple[dict[int, tuple[str, str]], int]:
    copy = tmp_path / source.name
    copy.write_bytes(source.read_bytes())
    return _cli_decisions(copy)
