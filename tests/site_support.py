"""Shared by the site tests: one strict build per session, reading the rendered rows, and the row property."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cmap_policy.interpreter import evaluate, spans
from cmap_policy.load.loader import load_policy
from cmap_policy.model import ClaimLine, Outcome, Period, Policy

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
            row = {k.removeprefix("data-"): v for k, v in a.items() if k.startswith("data-")}
            row["hidden"] = "yes" if "hidden" in a else ""
            self.rows.append(row)

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
    fields: dict[str, Any] = {}
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
        # a modifier of the modality that exists on the day; else the line states its modality
        modifier = next((m.code for m in policy.program.modifiers.values() if m.modality == modality
                         and m.marks_telehealth and m.in_effect(day) and "professional" in m.claim_types), None)
        if modifier is not None:
            base = ClaimLine(row["code"], day, modifiers=(modifier,), pos="11")
        else:
            base = ClaimLine(row["code"], day, pos="11", modality=modality)
        base = dataclasses.replace(base, **fields)
        lines.append(base)
        lines += [dataclasses.replace(base, claim_type="institutional", rcc=rcc) for rcc in row["rccs"].split()]
    return lines


def row_property_failures(policy: Policy, row: dict[str, str]) -> list[str]:
    """Inside the row's dates a conforming line is payable (or not permitted, for such a row); just
    outside, this row does not decide it, and with no other row there the line is outside the effective
    dates where the data knows the code was off the table, and undetermined where no public source covers
    the date (``timeline.spans``, which the site draws, says which)."""
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
    timeline = spans(policy, row["code"])
    for day in outside:
        other = any(p.covers(day) for p in view.periods)
        gap = next(s for s in timeline if (s.start is None or s.start <= day) and (s.end is None or day <= s.end))
        expected = "OUTSIDE_EFFECTIVE_DATES" if gap.known else "DATE_NOT_IN_DATA"
        for line in _conforming(policy, row, day):
            d = evaluate(policy, line)
            got = (d.period.id if d.period else None, d.outcome.value, d.reason_codes)
            if d.period is not None and d.period.id == row["period"]:
                failures.append(f"{row['period']} decided {line} outside its dates on {day}: {got}")
            # a line-level denial (a modifier not in its code set yet) outweighs an undetermined table
            undetermined = expected == "DATE_NOT_IN_DATA" and not any(r.kind == "deny" for r in d.reasons)
            if not other and (d.payable or expected not in d.reason_codes
                              or undetermined != (d.outcome is Outcome.UNDETERMINED)):
                failures.append(f"{row['period']} outside on {day} with no other row: {line} -> {got}, "
                                f"expected {expected}")
    return failures


def bundled_policy() -> Policy:
    return load_policy()


# --- the claim-line checker's data, read as its script reads it -------------------------------------------

def check_payloads(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The data files of the checker (``site.check.check_files``) as the values their scripts push."""
    out = {}
    head = "(window.CMAP_CHECK_DATA = window.CMAP_CHECK_DATA || []).push("
    for text in files.values():
        assert text.startswith(head) and text.endswith(");\n")
        payload = json.loads(text[len(head):-3])
        out["common" if payload["kind"] == "common" else payload["code"]] = payload
    return out


def check_answer(data: dict[str, dict[str, Any]], line: ClaimLine) -> dict[str, Any]:
    """The decision the checker's data holds for ``line``, in the shape of ``Decision.as_dict``.

    A second reader of the data, independent of the page's script, for the exhaustive test: it finds the
    cell, the front class and the answer by position, as the data's docstring describes them. The line's
    modifiers must be ones the form offers, in its order; other modifiers are ignored, as by the form.
    """
    common = data["common"]
    chunk = data.get(line.code, common["unlisted"])
    day = (line.date - dt.date(1970, 1, 1)).days
    cell = [c for c in chunk["cells"] if c[0] is None or c[0] <= day][-1]
    known = [m["code"] for m in common["modifiers"]]
    mask = sum(1 << known.index(m) for m in set(line.modifiers) if m in known)
    places = [p["code"] for p in common["places"]]
    pos = places.index(line.pos) + 1 if line.pos in places else 0
    ct = [c["id"] for c in common["claim_types"]].index(line.claim_type)
    front = (ct * (len(places) + 1) + pos) * (1 << len(known)) + mask
    width = common["front_width"]
    fmap = common["front_maps"][common["interval_fronts"][cell[1]]]
    found = cell[3][int(fmap[front * width:(front + 1) * width], 36)]
    rcc = None
    if cell[2] is not None:
        k = 0 if line.rcc is None else cell[2].index(line.rcc) + 1 if line.rcc in cell[2] else len(cell[2]) + 1
        rcc = line.rcc if k == len(cell[2]) + 1 else None
        found = found[k]
    base = common["unlisted"]

    def pooled(name: str, i: int) -> Any:
        if chunk is base:
            return base[name][i]
        return base[name][i] if i < len(base[name]) else chunk[name][i - len(base[name])]

    def fill(text: str) -> str:
        text = text.replace(common["stand_in"]["code"], line.code)
        return text if rcc is None else text.replace(common["stand_in"]["rcc"], rcc)

    d = chunk["decisions"][found]
    reasons = []
    for i in d[5:]:
        code, message, rule, cite = pooled("reasons", i)
        kind, carc = common["reason_kinds"][code]
        r: dict[str, Any] = {"code": code, "kind": kind, "message": fill(message)}
        if carc:
            r["carc"] = carc
        if rule:
            r["rule"] = fill(rule)
        if cite >= 0:
            source, section, note = pooled("citations", cite)
            title, url, secondary = common["sources"][source]
            c: dict[str, Any] = {"source": source, "title": title, "url": url, "secondary": secondary}
            if section:
                c["section"] = section
            if note:
                c["note"] = note
            r["citation"] = c
        reasons.append(r)
    return {
        "outcome": common["outcomes"][d[0]],
        "reasons": reasons,
        "period": chunk["periods"][d[1]]["id"] if d[1] >= 0 else None,
        "modality": common["modalities"][d[2]][0] if d[2] >= 0 else None,
        "attestations": [{"id": common["attestations"][i][0], "text": common["attestations"][i][1]} for i in d[3]],
        "to_confirm": [{"kind": k, "guideline": g} for k, g in d[4]],
        "release": common["release"],
        "policy_hash": common["policy_hash"],
    }
