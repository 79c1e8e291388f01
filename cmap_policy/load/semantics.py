"""Meaning checks: what a JSON Schema cannot say about a policy tree.

Each check returns problems located in the file and at the field that is
wrong, with a hint. They run on the raw documents after the schema checks, so
every field they read is known to have the right shape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import Problem
from .jsonfile import JsonDoc


@dataclass(frozen=True)
class Known:
    sources: frozenset[str]
    modalities: frozenset[str]
    modifiers: frozenset[str]
    places_of_service: frozenset[str]
    categories: frozenset[str]
    releases: dict[str, int]  # id -> ordinal


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _duplicates(doc: JsonDoc, items: list[dict[str, Any]], field: str, base: str, what: str) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        value = item[field]
        if value in seen:
            yield doc.problem(f"{base}/{i}/{field}", f"duplicate {what} {value!r} (first at {base}/{seen[value]})",
                              "meaning:duplicate", f"each {what} may appear once: remove or rename one")
        else:
            seen[value] = i


def check_citations(doc: JsonDoc, value: Any, known: Known, pointer: str = "") -> Iterator[Problem]:
    """Every citation (an object with a 'source' key under a 'citation' key) must name a known source."""
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{pointer}/{k}"
            if k == "citation" and isinstance(v, dict) and v.get("source") not in known.sources:
                yield doc.problem(p + "/source", f"unknown source id {v.get('source')!r}", "meaning:unknown-source",
                                  "add the source to sources in program.json, or use one of its ids")
            else:
                yield from check_citations(doc, v, known, p)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from check_citations(doc, v, known, f"{pointer}/{i}")


def _overlapping_era_rules(doc: JsonDoc, rules: list[dict[str, Any]]) -> Iterator[Problem]:
    """Two era rules for one modality on one day would give a line the same reason twice: one rule a day."""
    lo, hi = dt.date.min.isoformat(), dt.date.max.isoformat()
    for i, a in enumerate(rules):
        for b in rules[:i]:
            shared = sorted(set(a["modalities"]) & set(b["modalities"]))
            if shared and a.get("effective", lo) <= b.get("end", hi) and b.get("effective", lo) <= a.get("end", hi):
                yield doc.problem(f"/era_rules/{i}", f"era rule {a['id']!r} and {b['id']!r} both speak of "
                                  f"{', '.join(shared)} on the same dates", "meaning:era-rule-overlap",
                                  "end one rule the day before the other starts, or say both in one rule")


def check_program(doc: JsonDoc) -> Iterator[Problem]:
    data = doc.data
    yield from _duplicates(doc, data["sources"], "id", "/sources", "source id")
    yield from _duplicates(doc, data["modalities"], "id", "/modalities", "modality")
    yield from _duplicates(doc, data["modifiers"], "code", "/modifiers", "modifier")
    yield from _duplicates(doc, data["places_of_service"], "code", "/places_of_service", "place of service")
    yield from _duplicates(doc, data["claim_types"], "id", "/claim_types", "claim type")
    yield from _duplicates(doc, data["categories"], "id", "/categories", "category")
    yield from _duplicates(doc, data["attestations"], "id", "/attestations", "attestation")
    yield from _duplicates(doc, data["statutes"], "id", "/statutes", "statute")
    yield from _duplicates(doc, data.get("era_rules", []), "id", "/era_rules", "era rule")
    yield from _duplicates(doc, data.get("undecidable", []), "id", "/undecidable", "undecidable question")
    yield from _overlapping_era_rules(doc, data.get("era_rules", []))
    categories = {c["id"] for c in data["categories"]}
    for i, rule in enumerate(data.get("era_rules", [])):
        if "category" in rule and rule["category"] not in categories:
            yield doc.problem(f"/era_rules/{i}/category", f"unknown category {rule['category']!r}",
                              "meaning:unknown-category", f"use one of {', '.join(sorted(categories))}")
    modalities = {m["id"] for m in data["modalities"]}
    for i, mod in enumerate(data["modifiers"]):
        if mod["modality"] is not None and mod["modality"] not in modalities:
            yield doc.problem(f"/modifiers/{i}/modality", f"unknown modality {mod['modality']!r}",
                              "meaning:unknown-modality", f"use one of {', '.join(sorted(modalities))}")
    sources = {s["id"] for s in data["sources"]}
    for i, st in enumerate(data["statutes"]):
        if st["source"] not in sources:
            yield doc.problem(f"/statutes/{i}/source", f"unknown source id {st['source']!r}",
                              "meaning:unknown-source", "add the source to sources, or use one of its ids")
    dated = [(f"/attestations/{i}", att) for i, att in enumerate(data["attestations"])]
    dated += [(f"/modifiers/{i}", mod) for i, mod in enumerate(data["modifiers"])]
    dated += [(f"/era_rules/{i}", rule) for i, rule in enumerate(data.get("era_rules", []))]
    for i, pos in enumerate(data["places_of_service"]):
        dated.append((f"/places_of_service/{i}", pos))
        dated += [(f"/places_of_service/{i}/guidance/{j}", g) for j, g in enumerate(pos.get("guidance", []))]
    for pointer, item in dated:
        if "end" in item and "effective" in item and _d(item["end"]) < _d(item["effective"]):
            yield doc.problem(f"{pointer}/end", f"ends {item['end']}, before it takes effect on "
                              f"{item['effective']}", "meaning:end-before-effective",
                              "the end date is the last day the rule applies")
    for i, src in enumerate(data["sources"]):
        url = urlsplit(src["url"])
        if url.scheme not in ("http", "https") or not url.netloc or "." not in url.netloc:
            yield doc.problem(f"/sources/{i}/url", f"{src['url']!r} is not an http(s) address",
                              "meaning:url", "put the address where the source can be read in url; what the "
                              "source is goes in title, how it was read in note")


def check_releases(doc: JsonDoc, sources: frozenset[str]) -> Iterator[Problem]:
    rels = doc.data["releases"]
    yield from _duplicates(doc, rels, "id", "/releases", "release id")
    for i, rel in enumerate(rels):
        for j, src in enumerate(rel["implements"]):
            if src not in sources:
                yield doc.problem(f"/releases/{i}/implements/{j}", f"unknown source id {src!r}",
                                  "meaning:unknown-source", "add the source to sources in program.json")
        if i and _d(rel["published"]) < _d(rels[i - 1]["published"]):
            yield doc.problem(f"/releases/{i}/published",
                              f"release {rel['id']!r} is published {rel['published']}, before the release above it "
                              f"({rels[i - 1]['id']!r}, {rels[i - 1]['published']})", "meaning:release-order",
                              "list releases oldest first")


def _overlap_view(p: dict[str, Any], at: int, known: Known) -> tuple[dt.date, dt.date | None]:
    """The period's dates as published in the release with ordinal ``at``."""
    end = p.get("end")
    ended = p.get("ended_in")
    if end is not None and ended in known.releases and known.releases[ended] <= at:
        return _d(p["effective"]), _d(end)
    return _d(p["effective"]), None


def check_code(doc: JsonDoc, stem: str, known: Known) -> Iterator[Problem]:
    data = doc.data
    code = data["code"]
    if stem != code:
        yield doc.problem("/code", f"the file is named {stem}.json but holds code {code!r}",
                          "meaning:file-name", f"rename the file to {code}.json or fix the code")
    if data["system"] == "CPT" and not code[0].isdigit():
        yield doc.problem("/system", f"{code!r} has the shape of a HCPCS Level II code, not a CPT code",
                          "meaning:code-system", "set system to HCPCS")
    if data["system"] == "HCPCS" and code[0].isdigit():
        yield doc.problem("/system", f"{code!r} has the shape of a CPT code, not a HCPCS Level II code",
                          "meaning:code-system", "set system to CPT")
    if data["category"] not in known.categories:
        yield doc.problem("/category", f"unknown category {data['category']!r}", "meaning:unknown-category",
                          f"use one of {', '.join(sorted(known.categories))}")
    yield from check_citations(doc, data, known)
    periods = data["periods"]
    for i, p in enumerate(periods):
        base = f"/periods/{i}"
        eff = _d(p["effective"])
        if "end" in p and _d(p["end"]) < eff:
            yield doc.problem(f"{base}/end", f"the period ends {p['end']}, before it takes effect on {p['effective']}",
                              "meaning:end-before-effective", "the end date is the last date of service it covers")
        intro = p["introduced_in"]
        if intro not in known.releases:
            yield doc.problem(f"{base}/introduced_in", f"unknown release {intro!r}", "meaning:unknown-release",
                              "use a release id from releases.json, or add the release first")
        ended = p.get("ended_in")
        if ended is not None:
            if ended not in known.releases:
                yield doc.problem(f"{base}/ended_in", f"unknown release {ended!r}", "meaning:unknown-release",
                                  "use a release id from releases.json, or add the release first")
            elif intro in known.releases and known.releases[ended] < known.releases[intro]:
                yield doc.problem(f"{base}/ended_in",
                                  f"release {ended!r} ends the period, but it comes before {intro!r}, which added it",
                                  "meaning:ended-before-introduced",
                                  "a period can only be ended by the release that added it or a later one")
        for field in ("modalities", "undetermined_modalities"):
            for j, m in enumerate(p.get(field, [])):
                if m not in known.modalities:
                    yield doc.problem(f"{base}/{field}/{j}", f"unknown modality {m!r}", "meaning:unknown-modality",
                                      f"use one of {', '.join(sorted(known.modalities))}")
        for j, m in enumerate(p.get("undetermined_modalities", [])):
            if m in p["modalities"]:
                yield doc.problem(f"{base}/undetermined_modalities/{j}", f"{m!r} is both allowed and undetermined",
                                  "meaning:undetermined-modality",
                                  "a modality the sources allow goes in modalities only")
        if p.get("removed") and "end" not in p:
            yield doc.problem(f"{base}/removed", "removed says the code leaves the table when the row ends, but the "
                              "row has no end", "meaning:removed-without-end",
                              "set end and ended_in, or leave removed out")
        if p["status"] == "not-permitted" and p.get("undetermined_modalities"):
            yield doc.problem(f"{base}/undetermined_modalities", "a not-permitted period has no undetermined "
                              "modality: the code is not permitted via telehealth at all",
                              "meaning:not-permitted-modalities", "leave undetermined_modalities out")
        if p["status"] == "not-permitted" and p["modalities"]:
            yield doc.problem(f"{base}/modalities", "a not-permitted period cannot allow modalities",
                              "meaning:not-permitted-modalities", "leave modalities empty: []")
        if p["status"] == "permitted" and not p["modalities"]:
            yield doc.problem(f"{base}/modalities", "a permitted period must allow at least one modality",
                              "meaning:no-modalities", "list audio-video, audio-only or both")
        for j, lim in enumerate(p.get("limits", [])):
            lp = f"{base}/limits/{j}"
            for k, m in enumerate(lim.get("modalities", [])):
                if m not in p["modalities"]:
                    yield doc.problem(f"{lp}/modalities/{k}", f"the limit names modality {m!r}, which the period "
                                      "does not allow", "meaning:limit-modality",
                                      "name only modalities listed in the period")
            if lim.get("min_age") is not None and lim.get("max_age") is not None and lim["min_age"] > lim["max_age"]:
                yield doc.problem(f"{lp}/max_age", f"max_age {lim['max_age']} is below min_age {lim['min_age']}",
                                  "meaning:age-range", "swap the two ages")
    # At most one period may cover a date in every release: the earliest release that
    # publishes both periods is the one where they overlap most (ends only shrink later).
    for i in range(len(periods)):
        for j in range(i + 1, len(periods)):
            a, b = periods[i], periods[j]
            if a["introduced_in"] not in known.releases or b["introduced_in"] not in known.releases:
                continue
            at = max(known.releases[a["introduced_in"]], known.releases[b["introduced_in"]])
            (a0, a1), (b0, b1) = _overlap_view(a, at, known), _overlap_view(b, at, known)
            lo = max(a0, b0)
            hi = min(x for x in (a1, b1, dt.date.max) if x is not None)
            if lo <= hi:
                shown = "onwards" if hi == dt.date.max else f"to {hi}"
                yield doc.problem(f"/periods/{j}/effective",
                                  f"periods {i} ({a['effective']}) and {j} ({b['effective']}) overlap from {lo} "
                                  f"{shown}: at most one period may apply to a line",
                                  "meaning:overlap",
                                  "end the earlier period (end and ended_in) the day before the later one starts")
