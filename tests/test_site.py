"""The site: a strict build, what its pages say checked against the policy and the interpreter, the FAQs."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shlex
import shutil
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cmap_policy.cli import main
from cmap_policy.load.faq import check_faqs, load_faqs
from cmap_policy.load.loader import load_policy
from cmap_policy.model import Policy
from cmap_policy.reasons import REASONS
from cmap_policy.resources import policy_dir, schema_dir
from cmap_policy.site import contributing_page, generate_pages, repo_links, site_nav
from cmap_policy.site.schema_pages import every_property_documented, load_schemas
from cmap_policy.site.table import TableOptions, all_rows, href, table_html
from cmap_policy.testing.strategies import policy_trees
from cmap_policy.testing.trees import write_tree

from .site_support import (
    BuiltSite,
    all_ids,
    build_site,
    in_force_ids,
    rendered_rows,
    row_property_failures,
)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    return build_site(tmp_path_factory)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


def _html(site: BuiltSite, page: str) -> str:
    return (site.path / page).read_text(encoding="utf-8")


def _pages(site: BuiltSite) -> list[Path]:
    return sorted(p for p in site.path.rglob("*.html") if "assets" not in p.parts)


# --- the build -------------------------------------------------------------------------------------------

def test_strict_build_makes_every_generated_page(site: BuiltSite, policy: Policy) -> None:
    expected = ["index.html", "table.html", "history.html", "changelog.html", "modifiers.html", "reasons.html",
                "faq.html", "sources.html", "downloads.html", "authors/cli.html", "authors/contributing.html",
                "authors/schema/index.html"]
    expected += [f"codes/{c}.html" for c in policy.views[policy.latest.id]]
    expected += [f"authors/schema/{name}.html" for name in load_schemas(schema_dir())]
    missing = [p for p in expected if not (site.path / p).is_file()]
    assert not missing, missing
    assert site.seconds < 120, f"the build took {site.seconds:.1f} s"


def test_every_page_states_release_date_and_policy_hash(site: BuiltSite, policy: Policy) -> None:
    rel = policy.latest
    pages = _pages(site)
    assert len(pages) > 20
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert f'data-policy-hash="{policy.hash}"' in text, page
        assert f"release <strong>{rel.id}</strong> (published {rel.published})" in text, page
        assert policy.hash[:12] in text, page


_EXTERNAL_LOAD = re.compile(r"""<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)


def test_no_page_loads_anything_from_elsewhere(site: BuiltSite) -> None:
    # Links to elsewhere are fine (a reader may follow them); loading a script, style, font or image is not.
    for page in _pages(site):
        text = page.read_text(encoding="utf-8")
        assert not _EXTERNAL_LOAD.search(text), (page, _EXTERNAL_LOAD.search(text))
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page
    for css in site.path.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        assert not re.search(r"""@import\s+(url\()?["']?https?:""", text), css
        assert not re.search(r"""url\(["']?(https?:)?//""", text), css


def test_vendored_tablesort_keeps_its_licence(site: BuiltSite) -> None:
    vendored = site.path / "assets" / "vendor" / "tablesort"
    assert "tablesort v5.6.0" in (vendored / "tablesort.min.js").read_text(encoding="utf-8")[:200]
    assert "Permission is hereby granted" in (vendored / "LICENCE").read_text(encoding="utf-8")
    assert 'src="assets/vendor/tablesort/tablesort.min.js"' in _html(site, "table.html")


# --- the table and the history ---------------------------------------------------------------------------

def test_table_renders_every_row_and_shows_those_in_force_on_the_build_date(site: BuiltSite, policy: Policy) -> None:
    # Every row is in the page, so that the reader's date can show any day's table; without a script, the
    # rows in force on the build date are the ones shown.
    rows = rendered_rows(_html(site, "table.html"), "cmap-table")
    expected = in_force_ids(policy, site.today)
    assert {r["period"] for r in rows} == all_ids(policy)
    shown = [r for r in rows if not r["hidden"]]
    assert [r["period"] for r in shown] == sorted(expected, key=lambda i: i.split("@")[0])
    assert len({r["code"] for r in shown}) == len(shown), "one row per code in force"
    n = len(expected)
    assert f'<strong class="cmap-count-n">{n}</strong> of <span class="cmap-count-m">{n}</span> codes' in \
        _html(site, "table.html")


def test_history_renders_every_row_with_its_end(site: BuiltSite, policy: Policy) -> None:
    rows = rendered_rows(_html(site, "history.html"), "cmap-history")
    assert {r["period"] for r in rows} == all_ids(policy)
    ended = [r for r in rows if r["end"]]
    assert ended, "the bundled policy has ended rows"
    for r in ended:
        assert dt.date.fromisoformat(r["end"]) >= dt.date.fromisoformat(r["effective"])
    assert "Ends on" in _html(site, "history.html")


def test_rendered_rows_state_the_policy_facts(site: BuiltSite, policy: Policy) -> None:
    for r in rendered_rows(_html(site, "history.html"), "cmap-history"):
        code = policy.codes[r["code"]]
        period = next(p for p in code.periods if p.id == r["period"])
        assert r["system"] == code.system
        assert r["category"] == code.category
        assert r["status"] == ("permitted" if period.permitted else "not-permitted")
        assert set(r["modalities"].split()) - {"not-permitted"} == set(period.modalities)
        assert r["rccs"].split() == list(period.revenue_center_codes)
        assert r["source-kind"] == ("official" if period.citation.source.kind == "official-table"
                                    else "secondary" if period.secondary else "primary")


def test_property_every_rendered_row_agrees_with_the_interpreter(site: BuiltSite, policy: Policy) -> None:
    rows = (rendered_rows(_html(site, "table.html"), "cmap-table")
            + rendered_rows(_html(site, "history.html"), "cmap-history"))
    assert rows
    failures = [f for r in rows for f in row_property_failures(policy, r)]
    assert not failures, "\n".join(failures)


@settings(max_examples=25, deadline=None)
@given(tree=policy_trees(), today=st.dates(dt.date(2019, 1, 1), dt.date(2028, 12, 31)))
def test_property_holds_for_generated_policies(tmp_path_factory: pytest.TempPathFactory, tree: object,
                                               today: dt.date) -> None:
    root = write_tree(tree, tmp_path_factory.mktemp("tree"))  # type: ignore[arg-type]
    pol = load_policy(root)
    opts = TableOptions("t", "history.md", "rows", history=True)
    rows = rendered_rows(table_html(pol, all_rows(pol), opts, today), "t")
    assert {r["period"] for r in rows} == all_ids(pol)
    failures = [f for r in rows for f in row_property_failures(pol, r)]
    assert not failures, "\n".join(failures)


# --- code pages, examples, reasons -----------------------------------------------------------------------

def _eval_commands(html: str) -> list[str]:
    """The `cmap-policy eval` commands shown in code blocks, with the highlighter's markup removed."""
    import html as html_lib

    blocks = [html_lib.unescape(re.sub(r"<[^>]+>", "", b)).strip()
              for b in re.findall(r"<pre[^>]*>(?:<span></span>)?<code>(.*?)</code>", html, re.S)]
    return [b for b in blocks if b.startswith("cmap-policy eval ")]


def _run_eval(command: str) -> dict[str, object]:
    args = shlex.split(command)[2:]
    result = CliRunner().invoke(main, ["eval", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    decisions = json.loads(result.output)
    assert len(decisions) == 1
    out: dict[str, object] = decisions[0]
    return out


def test_code_page_examples_decide_as_the_page_says(site: BuiltSite, policy: Policy) -> None:
    for code in policy.views[policy.latest.id]:
        html = _html(site, f"codes/{code}.html")
        commands = _eval_commands(html)
        assert commands, f"{code}: no example line"
        first = _run_eval(commands[0])
        current = next((p for p in policy.codes[code].periods if p.covers(site.today)), None)
        if current is not None and current.permitted:
            assert first["outcome"] == "payable", (code, first)
            assert "A line for today that the engine decides as payable" in html
        else:
            assert first["outcome"] != "payable", (code, first)
            reason = first["reasons"][0]["code"]  # type: ignore[index]
            assert reason in html, (code, reason)
            if any(p.permitted for p in policy.codes[code].periods):
                assert len(commands) == 2 and _run_eval(commands[1])["outcome"] == "payable", code


def test_code_page_has_timeline_history_and_releases(site: BuiltSite, policy: Policy) -> None:
    for code, cv in policy.views[policy.latest.id].items():
        html = _html(site, f"codes/{code}.html")
        assert html.count('class="cmap-timeline"') == 1, code
        assert html.count("<rect ") >= len(cv.periods), code
        for p in cv.periods:
            assert str(p.effective) in html
            assert f'changelog.html#{p.introduced_in.lower()}' in html, (code, p.id)
            if p.ended_in:
                assert f'changelog.html#{p.ended_in.lower()}' in html, (code, p.id)


def test_reason_page_examples_get_their_reason(site: BuiltSite) -> None:
    html = _html(site, "reasons.html")
    for code, rt in REASONS.items():
        assert f'id="{code.lower()}"' in html, code
        if rt.carc:
            assert f"CARC <strong>{rt.carc}</strong>" in html, code
    sections = re.split(r'<h2 id="', html)[1:]
    checked = 0
    for section in sections:
        reason = section.split('"', 1)[0].upper()
        commands = _eval_commands(section)
        if reason in REASONS and commands:
            decision = _run_eval(commands[0])
            assert reason in [r["code"] for r in decision["reasons"]], (reason, decision)  # type: ignore[attr-defined]
            checked += 1
    assert checked >= 8, f"only {checked} reasons have an example"


def test_changelog_has_a_section_per_release(site: BuiltSite, policy: Policy) -> None:
    html = _html(site, "changelog.html")
    for rel in policy.releases:
        assert f'id="{rel.id.lower()}"' in html, rel.id
        assert rel.summary[:40] in html.replace("&#x27;", "'").replace("&#39;", "'"), rel.id
    assert html.index(f'id="{policy.releases[-1].id.lower()}"') < html.index(f'id="{policy.releases[0].id.lower()}"')


def test_modifiers_page_lists_every_modifier_and_place_of_service(site: BuiltSite, policy: Policy) -> None:
    html = _html(site, "modifiers.html")
    for m in policy.program.modifiers.values():
        assert f"<strong>{m.code}</strong>" in html, m.code
    for pos in policy.program.places_of_service.values():
        assert f"<strong>{pos.code}</strong>" in html, pos.code


# --- downloads -------------------------------------------------------------------------------------------

def test_downloads_hold_the_rows_in_force(site: BuiltSite, policy: Policy) -> None:
    n = len(in_force_ids(policy, site.today))
    codes = sorted({i.split("@")[0] for i in in_force_ids(policy, site.today)})
    folder = site.path / "downloads"
    text = (folder / "cmap-telehealth-table.csv").read_bytes().decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == n
    assert codes == sorted(r[next(k for k in r if "code" in k.lower())] for r in table)
    doc = json.loads((folder / "cmap-telehealth-table.json").read_text(encoding="utf-8"))
    assert policy.hash in json.dumps(doc)
    from openpyxl import load_workbook

    wb = load_workbook(folder / "cmap-telehealth-table.xlsx", read_only=True)
    ws = wb.worksheets[0]
    values = [row for row in ws.iter_rows(values_only=True) if any(v is not None for v in row)]
    assert len(values) >= n + 1
    flat = {str(v) for row in values for v in row}
    assert set(codes) <= flat


# --- FAQs ------------------------------------------------------------------------------------------------

def test_bundled_faqs_pass_schema_and_meaning_checks(policy: Policy) -> None:
    faqs, problems = check_faqs(policy)
    assert not problems, "\n".join(map(str, problems))
    assert len(faqs) >= 5
    releases = {r.id for r in policy.releases}
    for f in faqs:
        assert f.question.endswith("?")
        assert f.citation.source.id in policy.program.sources
        assert f.release in releases
        assert set(f.codes) <= set(policy.codes)


def test_faqs_render_and_code_pages_link_to_theirs(site: BuiltSite, policy: Policy) -> None:
    faqs = load_faqs(policy)
    faq_html = _html(site, "faq.html")
    for f in faqs:
        assert f'id="{f.id}"' in faq_html
        for code in f.codes:
            assert f'href="../faq.html#{f.id}"' in _html(site, f"codes/{code}.html"), (f.id, code)
    unrelated = [c for c in policy.codes if not any(c in f.codes for f in faqs)]
    for code in unrelated:
        assert "faq.html#" not in _html(site, f"codes/{code}.html"), code


def _broken_copy(tmp_path: Path, name: str, doc: dict[str, object]) -> Policy:
    root = tmp_path / "policy"
    shutil.copytree(policy_dir(), root)
    (root / "faq" / f"{name}.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return load_policy(root)


GOOD_FAQ: dict[str, object] = {
    "$schema": "../../schema/faq.schema.json", "id": "x-test", "question": "Is this a test?",
    "answer": "Yes, it is only a test.", "citation": {"source": "CMAP-TH-PAGE"}, "release": "PB-2023-38",
    "codes": ["T1016"],
}


@pytest.mark.parametrize(("change", "rule", "pointer"), [
    ({"codes": ["99999"]}, "meaning:unknown-code", "/codes/0"),
    ({"citation": {"source": "NOPE"}}, "meaning:unknown-source", "/citation/source"),
    ({"release": "PB-1999-01"}, "meaning:unknown-release", "/release"),
    ({"id": "other-name"}, "meaning:file-name", "/id"),
    ({"question": "Not a question"}, "schema:pattern", "/question"),
    ({"answer": None}, "schema:type", "/answer"),
    ({"extra": 1}, "schema:additionalProperties", ""),
])
def test_faq_checks_name_the_file_and_field(tmp_path: Path, change: dict[str, object], rule: str,
                                            pointer: str) -> None:
    pol = _broken_copy(tmp_path, "x-test", {**GOOD_FAQ, **change})
    faqs, problems = check_faqs(pol)
    assert [p.rule for p in problems] == [rule]
    assert problems[0].pointer == pointer
    assert problems[0].file.endswith("faq/x-test.json")
    assert problems[0].line is not None
    assert "x-test" not in {f.id for f in faqs}


def test_a_good_faq_is_accepted(tmp_path: Path) -> None:
    pol = _broken_copy(tmp_path, "x-test", GOOD_FAQ)
    faqs, problems = check_faqs(pol)
    assert not problems
    assert "x-test" in {f.id for f in faqs}


# --- authors' pages --------------------------------------------------------------------------------------

def test_every_schema_property_has_a_title_and_description() -> None:
    schemas = load_schemas(schema_dir())
    assert "faq" in schemas
    assert schemas["faq"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schemas["faq"]["$id"].endswith("/faq.schema.json")
    for name, doc in schemas.items():
        assert not every_property_documented(doc), (name, every_property_documented(doc))


def test_schema_reference_pages_show_every_title(site: BuiltSite) -> None:
    import html as html_lib

    for name, doc in load_schemas(schema_dir()).items():
        page = html_lib.unescape(_html(site, f"authors/schema/{name}.html"))
        for prop in doc.get("properties", {}).values():
            assert prop["title"] in page, (name, prop["title"])
            assert prop["description"][:50] in page, (name, prop["description"][:50])


def test_cli_reference_documents_every_command(site: BuiltSite) -> None:
    html = _html(site, "authors/cli.html")
    assert "Sentinel" not in html
    for name in main.commands:
        assert f"cmap-policy {name}" in html, name


def test_contributing_page_keeps_repository_links_working() -> None:
    text = ("# Contributing\n\nSee [the schema](schema/code.schema.json), [testing](docs/testing.md#run), "
            "[the site](https://example.org/x), [a file](policy/program.json), [`README.md`](README.md) and "
            "[here](#top).\n")
    page = contributing_page(text, docs_pages=["testing.md"], schemas=["code"])
    assert "[the schema](../authors/schema/code.md)" in page
    assert "[testing](../testing.md#run)" in page
    assert "[the site](https://example.org/x)" in page
    assert "a file (`policy/program.json`)" in page
    assert "`README.md` and" in page and "(README.md)" not in page
    assert "[here](#top)" in page
    # A docs page that does not exist stays a link, for the strict build to report.
    assert "[testing](docs/testing.md#run)" in contributing_page(text, docs_pages=[], schemas=["code"])
    assert "CONTRIBUTING.md" in contributing_page(None)


def test_hand_written_pages_name_repository_files_instead_of_linking_off_the_site() -> None:
    text = "Run [the benchmark](../benchmarks/run.py), read [testing](testing.md) and [x](https://x.org)."
    out = repo_links(text, "docs/performance.md", ["performance.md", "testing.md"])
    assert out == ("Run the benchmark (`benchmarks/run.py`), read [testing](testing.md) and [x](https://x.org).")


def test_contributing_page_renders_the_guide_when_there_is_one(site: BuiltSite) -> None:
    guide = Path(__file__).resolve().parent.parent / "CONTRIBUTING.md"
    html = _html(site, "authors/contributing.html")
    if guide.is_file():
        first = next(line for line in guide.read_text(encoding="utf-8").splitlines()
                     if line.strip() and not line.startswith("#"))
        assert re.sub(r"[`*_\[\]]", "", first)[:30].split("(")[0].strip()[:20] in re.sub(r"<[^>]+>", "", html)
    else:
        assert "CONTRIBUTING.md" in html


# --- the generator on its own ----------------------------------------------------------------------------

def test_nav_picks_up_hand_written_pages(policy: Policy) -> None:
    pages = generate_pages(policy, today=dt.date(2026, 1, 5), contributing=None)
    nav = site_nav(policy, pages, ["performance.md", "testing.md", "table.md"])
    text = json.dumps(nav)
    authors = next(item["For authors"] for item in nav if "For authors" in item)
    engineering = next(item["Engineering"] for item in authors if "Engineering" in item)
    assert engineering == ["performance.md", "testing.md"]
    assert text.count('"table.md"') == 1  # a generated page is not listed twice
    for path in pages:
        if path.endswith(".md") and path != "index.md":
            assert f'"{path}"' in text, path


def test_generate_pages_is_a_plain_function_of_the_policy_and_date(policy: Policy) -> None:
    a = generate_pages(policy, today=dt.date(2021, 6, 1))
    b = generate_pages(policy, today=dt.date(2021, 6, 1))
    assert {k: v for k, v in a.items() if k.endswith(".md")} == {k: v for k, v in b.items() if k.endswith(".md")}
    later = generate_pages(policy, today=dt.date(2026, 1, 5))
    # In mid-2021 the pandemic rows were in force; in 2026 the table of 12-26-25 is.
    for pages, day in ((a, dt.date(2021, 6, 1)), (later, dt.date(2026, 1, 5))):
        shown = [r["period"] for r in rendered_rows(str(pages["table.md"]), "cmap-table") if not r["hidden"]]
        assert set(shown) == in_force_ids(policy, day)
    assert a["table.md"] != later["table.md"]


def test_written_sources_build_the_same_site_without_the_hook(site: BuiltSite, tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    from cmap_policy.site.write import write_site_sources

    root = Path(__file__).resolve().parent.parent
    files = write_site_sources(tmp_path / "src", config=root / "mkdocs.yml", today=site.today)
    assert any(f.name == "table.md" for f in files)
    conf = yaml.safe_load((tmp_path / "src" / "mkdocs.yml").read_text(encoding="utf-8"))
    assert "hooks" not in conf and conf["nav"] and conf["extra"]["policy"]["release"]
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "out")],
                          cwd=tmp_path / "src", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pages = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.html"))
    assert pages == sorted(p.relative_to(site.path).as_posix() for p in site.path.rglob("*.html"))
    assert (tmp_path / "out" / "table.html").read_text(encoding="utf-8") == _html(site, "table.html")


@pytest.mark.parametrize(("src", "dst", "urls", "expected"), [
    ("table.md", "codes/T1016.md", False, "codes/T1016.html"),
    ("codes/T1016.md", "sources.md", False, "../sources.html"),
    ("codes/T1016.md", "index.md", False, "../index.html"),
    ("table.md", "codes/T1016.md", True, "../codes/T1016/"),
    ("index.md", "table.md", True, "table/"),
    ("codes/T1016.md", "index.md", True, "../../"),
])
def test_href_matches_mkdocs_urls(src: str, dst: str, urls: bool, expected: str) -> None:
    assert href(src, dst, urls) == expected


# --- every link, and what the pages say ------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))


def test_no_page_has_a_broken_link_or_anchor(site: BuiltSite) -> None:
    parsed: dict[Path, _Links] = {}

    def links(path: Path) -> _Links:
        if path not in parsed:
            parser = _Links()
            parser.feed(path.read_text(encoding="utf-8"))
            parsed[path] = parser
        return parsed[path]

    checked = 0
    for page in _pages(site):
        if page.name == "404.html":
            continue  # served for any missing address, so its links are absolute (from the site's root)
        for link in links(page).hrefs:
            if re.match(r"^[a-z][a-z0-9+.-]*:", link):
                continue  # another site (a source's address): the reader may follow it
            target, _, anchor = link.partition("#")
            target = target.split("?", 1)[0]
            path = (page.parent / target).resolve() if target else page
            assert path.is_file(), (page.relative_to(site.path), link)
            if anchor and path.suffix == ".html":
                assert anchor in links(path).ids, (page.relative_to(site.path), link)
            checked += 1
    assert checked > 1000


def test_table_history_and_code_pages_say_what_the_data_covers(site: BuiltSite, policy: Policy) -> None:
    table = policy.program.official_table
    page = policy.program.citation
    assert table is not None and page is not None
    for name in ["table.html", "history.html", "index.html", *(f"codes/{c}.html" for c in policy.codes)]:
        html = _html(site, name)
        banner = html[html.index('class="cmap-coverage"'):]
        banner = banner[:banner.index("</div>")]
        assert "holds only the rows public sources name" in banner, name
        assert f'href="{table.source.url}"' in banner and f'href="{page.source.url}"' in banner, name


def test_timelines_draw_gaps_as_gaps(policy: Policy) -> None:
    from cmap_policy.interpreter import spans
    from cmap_policy.site import svg

    today = dt.date(2026, 1, 5)
    span = svg.policy_span(policy, today)
    for code in policy.views[policy.latest.id]:
        drawn = svg.timeline_svg(policy, code, span, today, title=code)
        shown = [s for s in spans(policy, code) if (s.end is None or s.end >= span.start)
                 and (s.start is None or s.start < span.end)]
        unknown = [s for s in shown if s.period is None and not s.known]
        known = [s for s in shown if s.period is None and s.known]
        assert drawn.count("no public source for these dates</text>") == len(unknown), code
        assert drawn.count("not on the table</text>") == len(known), code
        assert drawn.count('class="cmap-svg-unknown"') >= len(unknown), code
    # the bundled data has gaps that no public source covers, and no gap it knows to be off the table
    assert any(s.period is None and not s.known for c in policy.codes for s in spans(policy, c))


def test_code_pages_say_what_the_sources_do_not_know(site: BuiltSite, policy: Policy) -> None:
    import html as html_lib

    unknown_start = silent = 0
    for code, cv in policy.views[policy.latest.id].items():
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", _html(site, f"codes/{code}.html")))
        for p in cv.periods:
            if not p.start_known:
                assert f"in force by {p.effective} (its real start is not known)" in text, p.id
                unknown_start += 1
            for m in p.undetermined_modalities:
                assert f"neither allow nor rule out {m}" in text, (p.id, m)
                silent += 1
    assert unknown_start and silent


def test_the_status_of_a_date_no_source_covers_is_undetermined(policy: Policy) -> None:
    pages = generate_pages(policy, today=dt.date(2024, 6, 1))
    page = str(pages["codes/97153.md"])
    assert 'class="cmap-status cmap-status-unknown"' in page
    assert "No public source for 2024-06-01: undetermined" in page
    assert "Not on the table" not in page


def test_billing_guidance_is_shown_with_its_dates(site: BuiltSite, policy: Policy) -> None:
    import html as html_lib

    text = html_lib.unescape(re.sub(r"<[^>]+>", "", _html(site, "modifiers.html")))
    guidance = [(pos, g) for pos in policy.program.places_of_service.values() for g in pos.guidance]
    assert guidance
    for pos, g in guidance:
        assert g.text in text, pos.code
        if g.effective is not None:
            when = (f"in force by {g.effective} (its real start is not known)" if not g.start_known
                    else f"from {g.effective}")
            assert when in text, pos.code
        assert ("denial" if g.kind == "deny" else "warning: the decision is unchanged") in text


def test_undetermined_has_its_own_colour_and_words_wherever_decisions_appear(site: BuiltSite,
                                                                              policy: Policy) -> None:
    from cmap_policy.site.check import OUTCOME_WORDS

    words = OUTCOME_WORDS["undetermined"]
    reasons = _html(site, "reasons.html")
    for code, rt in REASONS.items():
        section = reasons[reasons.index(f'id="{code.lower()}"'):]
        section = section[:section.index("<h2", 10)] if "<h2" in section[10:] else section
        assert f'cmap-kind-{rt.kind}"' in section, code
    assert f'<span class="cmap-outcome cmap-outcome-undetermined">{words}</span>' in reasons
    # the example lines of code pages, and the home page's list of outcomes, use the same words and class
    pages = generate_pages(policy, today=dt.date(2024, 6, 1))
    assert f'<span class="cmap-outcome cmap-outcome-undetermined">{words}</span>' in str(pages["codes/97153.md"])
    css = (site.path / "assets" / "stylesheets" / "cmap.css").read_text(encoding="utf-8")
    assert ".cmap-outcome-undetermined" in css and "--cmap-undetermined" in css


def test_every_code_that_allows_audio_only_has_an_audio_only_example(site: BuiltSite, policy: Policy) -> None:
    audio_mods = {m.code for m in policy.program.modifiers.values() if m.modality == "audio-only"}
    allows = [c for c, cv in policy.views[policy.latest.id].items()
              if any(p.permitted and "audio-only" in p.modalities for p in cv.periods)]
    assert allows, "the bundled policy has a code listed for audio-only"
    for code in allows:
        decisions = [_run_eval(c) for c in _eval_commands(_html(site, f"codes/{code}.html"))
                     if set(shlex.split(c)[shlex.split(c).index("--modifier") + 1:][:1]) & audio_mods]
        assert any(d["outcome"] == "payable" and d["modality"] == "audio-only" for d in decisions), code


def test_the_text_filter_reads_codes_and_descriptions_not_guidelines(site: BuiltSite, policy: Policy) -> None:
    for r in rendered_rows(_html(site, "history.html"), "cmap-history"):
        period = next(p for p in policy.codes[r["code"]].periods if p.id == r["period"])
        words = set(period.guideline.lower().split()) - set(r["search"].split())
        assert "telephone" not in r["search"] or "telephone" in policy.codes[r["code"]].description.lower()
        assert words, r["period"]  # some guideline words are not searchable


def test_history_downloads_hold_every_row(site: BuiltSite, policy: Policy) -> None:
    folder = site.path / "downloads"
    text = (folder / "cmap-telehealth-table-history.csv").read_bytes().decode("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(all_ids(policy))
    doc = json.loads((folder / "cmap-telehealth-table-history.json").read_text(encoding="utf-8"))
    assert policy.hash in json.dumps(doc)
    from openpyxl import load_workbook

    ws = load_workbook(folder / "cmap-telehealth-table-history.xlsx", read_only=True).worksheets[0]
    rows = [row for row in ws.iter_rows(values_only=True) if any(v is not None for v in row)]
    assert len(rows) >= len(all_ids(policy)) + 1
    for name in ("table.html", "history.html", "downloads.html"):
        assert "downloads/cmap-telehealth-table-history.xlsx" in _html(site, name), name


def test_changelog_links_every_code_to_its_page(site: BuiltSite, policy: Policy) -> None:
    html = _html(site, "changelog.html")
    for code in policy.views[policy.latest.id]:
        assert f'href="codes/{code}.html"' in html, code


def test_sources_link_to_their_real_addresses(site: BuiltSite, policy: Policy) -> None:
    html = _html(site, "sources.html")
    web = [s for s in policy.program.sources.values() if s.url.startswith(("https://", "http://"))]
    assert web
    for s in web:
        assert f'href="{html_escape(s.url)}"' in html, s.id


def test_cli_reference_shows_example_commands_as_code(site: BuiltSite) -> None:
    html = _html(site, "authors/cli.html")
    blocks = "\n".join(re.findall(r"<pre[^>]*>(?:<span></span>)?<code>(.*?)</code>", html, re.S))
    paragraphs = "\n".join(re.findall(r"<p>(.*?)</p>", html, re.S))
    for command in ("cmap-policy export --date", "cmap-policy export --history", "cmap-policy diff main",
                    "cmap-policy serve --policy", "cmap-policy test examples/"):
        assert command in re.sub(r"<[^>]+>", "", blocks), command
        assert command not in paragraphs, command


def test_schema_pages_count_in_words(site: BuiltSite) -> None:
    for name in load_schemas(schema_dir()):
        text = _html(site, f"authors/schema/{name}.html")
        assert not re.search(r"\b1 (characters|items)\b", text), name


def test_revenue_center_codes_are_explained(site: BuiltSite) -> None:
    assert '<abbr title="Revenue center codes' in _html(site, "table.html")
    modifiers = _html(site, "modifiers.html")
    assert 'id="revenue-center-codes"' in modifiers and "revenue center code" in modifiers


def test_faq_table_and_modifiers_page_name_the_same_modifiers(site: BuiltSite, policy: Policy) -> None:
    faq = next(f for f in load_faqs(policy) if f.id == "modifier-and-place-of-service")
    for modality in ("audio-video", "audio-only"):
        mods = {m.code for m in policy.program.modifiers.values()
                if m.modality == modality and m.marks_telehealth}
        assert mods and all(re.search(rf"\b{m}\b", faq.answer) for m in mods), (modality, mods)
        for page in ("table.html", "modifiers.html"):
            note = re.sub(r"<[^>]+>", "", _html(site, page))
            sentence = note[note.index("Bill with the modifier"):]
            sentence = sentence[:sentence.index("See ")]
            assert all(re.search(rf"\b{m}\b", sentence) for m in mods), (page, modality)
    # no example line bills the telehealth places of service the guidance says not to use
    for code in policy.views[policy.latest.id]:
        for command in _eval_commands(_html(site, f"codes/{code}.html")):
            assert "--pos 02" not in command and "--pos 10" not in command, command


def test_site_search_has_a_clean_entry_for_the_table(site: BuiltSite, policy: Policy) -> None:
    index = json.loads((site.path / "search" / "search_index.json").read_text(encoding="utf-8"))
    table = [d for d in index["docs"] if d["location"].split("#")[0] == "table.html"]
    assert table
    text = " ".join(d["text"] for d in table)
    assert "rows in force on the date of service" in text
    for cv in policy.views[policy.latest.id].values():
        for p in cv.periods:
            assert p.guideline[:40] not in text, p.id
    home = " ".join(d["text"] for d in index["docs"] if d["location"].split("#")[0] in ("", "index.html"))
    assert "Revenue center code" not in home  # the form's labels are not prose


def test_the_banner_names_what_a_claim_line_cannot_decide_and_the_sources_page_says_why(site: BuiltSite,
                                                                                      policy: Policy) -> None:
    items = policy.program.undecidable
    assert items and any("2020-03-13" in u.what for u in items) and any("e-consult" in u.what for u in items)
    for name in ["table.html", "index.html", "codes/T1016.html"]:
        html = _html(site, name)
        banner = html[html.index('class="cmap-coverage"'):]
        banner = banner[:banner.index("</div>")]
        for u in items:
            assert html_escape(u.what) in banner, (name, u.id)
        assert 'sources.html#undecidable">Why</a>' in banner, name
    sources = _html(site, "sources.html")
    assert 'id="undecidable"' in sources and 'id="eras"' in sources
    for rule in policy.program.era_rules:  # each era rule, by its id, with the source it cites
        row = sources[sources.index(f"<code>{rule.id}</code>"):]
        row = row[:row.index("</tr>")]
        assert f'#{rule.citation.source.id}"' in row, rule.id
