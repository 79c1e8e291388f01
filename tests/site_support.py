"""Shared by the site tests: one strict build per session, reading the rendered rows, and the row property."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cmap_policy.interpreter import evaluate
from cmap_policy.load.loader import load_policy
from cmap_policy.model import ClaimLine, Period, Policy

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@dataclass(frozen=True)
class BuiltSite:
    path: Path
    today: dt.date
    seconds: float
    output: str


_built: dict[str, BuiltSite] = {}


def build_site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    """``mkdocs build --strict`` of the repository's site into a temporary folder, once per session."""
    if "site" in _built:
        return _built["site"]
    out = tmp_path_factory.mktemp("site")
    today = dt.date.today()
    env = {**os.environ, "CMAP_SITE_DATE": today.isoformat(), "NO_MKDOCS_2_WARNING": "1"}
    env.pop("CMAP_SITE_POLICY", None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    _built["site"] = BuiltSite(out, today, seconds, proc.stdout + proc.stderr)
    return _built["site"]


class _RowParser(HTMLParser):
    """The data- attributes of every row of the table with the given id."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.inside = False
        self.rows: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id") == self.table_id:
            self.inside = True
        elif tag == "tr" and self.inside and "data-period" in a:
            self.rows.append({k.removeprefix("data-"): v for k, v in a.items() if k.startswith("data-")})

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False


def rendered_rows(html: str, table_id: str) -> list[dict[str, str]]:
    parser = _RowParser(table_id)
    parser.feed(html)
    return parser.rows


def in_force_ids(policy: Policy, day: dt.date) -> set[str]:
    return {p.id for cv in policy.views[policy.latest.id].values() for p in cv.periods if p.covers(day)}


def all_ids(policy: Policy) -> set[str]:
    return {p.id for cv in policy.views[policy.latest.id].values() for p in cv.periods}


def _find_period(policy: Policy, period_id: str) -> Period:
    code = period_id.split("@", 1)[0]
    return next(p for p in policy.views[policy.latest.id][code].periods if p.id == period_id)


def _conforming(policy: Policy, row: dict[str, str], day: dt.date) -> list[ClaimLine]:
    """Lines that meet what the rendered row says (modalities, RCCs) and the period's limits.

    Written here from the row's attributes rather than borrowed from the site's own example finder, so
    the property checks the page against the interpreter, not the site against itself.
    """
    period = _find_period(policy, row["period"])
    fields: dict[str, object] = {}
    for lim in period.limits:
        if lim.kind == "age":
            fields["member_age"] = lim.min_age if lim.min_age is not None else 0
        elif lim.kind == "provider-type":
            fields["provider_type"] = lim.provider_types[0]
        elif lim.kind == "established-patient":
            fields["established_patient"] = True
        elif lim.kind == "units-per-day":
            fields["units"] = 1
    modalities = [m for m in row["modalities"].split() if m != "not-permitted"] or ["audio-video"]
    lines = []
    for modality in modalities:
        modifier = next(m.code for m in policy.program.modifiers.values() if m.modality == modality)
        base = dataclasses.replace(ClaimLine(row["code"], day, modifiers=(modifier,), pos="11"), **fields)
        lines.append(base)
        lines += [dataclasses.replace(base, claim_type="institutional", rcc=rcc) for rcc in row["rccs"].split()]
    return lines


def row_property_failures(policy: Policy, row: dict[str, str]) -> list[str]:
    """Inside the row's dates a conforming line is payable (or not permitted, for such a row); just
    outside, this row does not decide it, and with no other row there it is outside the effective dates."""
    failures = []
    effective = dt.date.fromisoformat(row["effective"])
    end = dt.date.fromisoformat(row["end"]) if row["end"] else None
    inside = [effective] + ([end] if end else [effective + dt.timedelta(days=400)])
    outside = [effective - dt.timedelta(days=1)] + ([end + dt.timedelta(days=1)] if end else [])
    view = policy.views[policy.latest.id][row["code"]]
    for day in inside:
        for line in _conforming(policy, row, day):
            d = evaluate(policy, line)
            got = (d.period.id if d.period else None, d.outcome.value, d.reason_codes)
            if row["status"] == "permitted":
                ok = d.payable and d.period is not None and d.period.id == row["period"]
            else:
                ok = not d.payable and "NOT_PERMITTED_VIA_TELEHEALTH" in d.reason_codes
            if not ok:
                failures.append(f"{row['period']} inside on {day}: {line} -> {got}")
    for day in outside:
        other = any(p.covers(day) for p in view.periods)
        for line in _conforming(policy, row, day):
            d = evaluate(policy, line)
            got = (d.period.id if d.period else None, d.outcome.value, d.reason_codes)
            if d.period is not None and d.period.id == row["period"]:
                failures.append(f"{row['period']} decided {line} outside its dates on {day}: {got}")
            if not other and (d.payable or "OUTSIDE_EFFECTIVE_DATES" not in d.reason_codes):
                failures.append(f"{row['period']} outside on {day} with no other row: {line} -> {got}")
    return failures


def bundled_policy() -> Policy:
    return load_policy()
