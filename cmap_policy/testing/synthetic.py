"""``synthetic_policy``: large, realistic, deterministic policies that are plainly not CMAP.

The batch engine and the benchmarks need policies of hundreds of codes, shaped
like the real table: several periods per code, ended rows, audio-only on some
codes, revenue center codes and limits on some, rows listed as not permitted,
and a release history. Everything is named SYNTHETIC (program, sources,
releases, categories, descriptions) so that no reader can mistake it for the
CMAP policy.

The program is built here from scratch rather than copied from the bundled
policy, so that a change to the bundled data never changes a synthetic policy
(benchmarks compare like with like across commits).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from .trees import PolicyTree

PROGRAM_ID = "SYNTHETIC"
SYNTHETIC_URL = "https://example.invalid/synthetic-policy"  # never a real address: nothing here is a real source
COVERS_FROM = "2000-01-01"  # every SYNTHETIC release holds the whole table for dates of service from here
RELEASE_DATES = (
    dt.date(2020, 1, 1),
    dt.date(2021, 4, 1),
    dt.date(2022, 7, 1),
    dt.date(2023, 10, 1),
    dt.date(2025, 1, 1),
    dt.date(2026, 1, 1),
)
RCCS = ("0510", "0513", "0900", "0914", "0915", "0916", "0918")
PROVIDER_TYPES = ("clinic", "physician", "fqhc", "behavioral-health-agency")
CATEGORIES = (
    ("synthetic-behavioral", "SYNTHETIC behavioral health"),
    ("synthetic-medical", "SYNTHETIC medical visits"),
    ("synthetic-therapy", "SYNTHETIC therapies"),
    ("synthetic-case-management", "SYNTHETIC case management"),
)
_SERVICES = ("assessment", "therapy session", "group session", "consultation", "case review", "check-in",
             "skills training", "family session", "evaluation", "follow-up visit")


def _release_id(i: int) -> str:
    return f"SYNTHETIC-R{i + 1}"


def _table_source(i: int) -> str:
    return f"SYNTHETIC-TABLE-R{i + 1}"


def _cite(source: str, section: str = "") -> dict[str, str]:
    out = {"source": source}
    if section:
        out["section"] = section
    return out


def _program() -> dict[str, Any]:
    general = "SYNTHETIC-GUIDANCE"
    sources: list[dict[str, Any]] = [
        {"id": general, "title": "SYNTHETIC program guidance (generated; not a CMAP document)",
         "url": SYNTHETIC_URL, "kind": "code-list", "secondary": False,
         "publisher": "SYNTHETIC", "note": "Made-up rules for tests and benchmarks."},
        {"id": "SYNTHETIC-READING", "title": "SYNTHETIC third-party reading (generated; not a CMAP document)",
         "url": SYNTHETIC_URL, "kind": "secondary-reading",
         "secondary": True, "publisher": "SYNTHETIC",
         "note": "Stands in for a secondary source, so that tools show secondary rows."},
    ]
    for i, day in enumerate(RELEASE_DATES):
        sources.append({"id": _table_source(i), "title": f"SYNTHETIC telehealth table, release {i + 1} "
                        "(generated; not a CMAP document)", "url": SYNTHETIC_URL,
                        "kind": "code-list", "secondary": False, "publisher": "SYNTHETIC",
                        "published": day.isoformat()})
    return {
        "$schema": "../schema/program.schema.json",
        "program": {
            "id": PROGRAM_ID,
            "name": "SYNTHETIC telehealth program (generated for tests and benchmarks; not CMAP)",
            "plans": ["SYNTHETIC plan A", "SYNTHETIC plan B"],
            "authority": "None: this SYNTHETIC policy is generated for tests and benchmarks. It is not the CMAP "
                         "policy and decides nothing about real claims.",
            "citation": _cite(general),
            "official_table": _cite(_table_source(len(RELEASE_DATES) - 1)),
        },
        "sources": sources,
        "statutes": [{"id": "SYNTHETIC-STATUTE", "citation": "SYNTHETIC statute (made up)",
                      "requirement": "Telehealth is paid as in person for the listed codes.", "source": general}],
        "modalities": [
            {"id": "audio-video", "name": "audio-video", "description": "Synchronous audio and video.",
             "coverage": "all-listed-codes", "citation": _cite(general)},
            {"id": "audio-only", "name": "audio-only", "description": "Synchronous audio only, where a row says so.",
             "coverage": "where-dss-specifies", "citation": _cite(general)},
            {"id": "asynchronous", "name": "asynchronous", "description": "Store and forward, where a row says so.",
             "coverage": "not-covered", "citation": _cite(general)},
        ],
        "modifiers": [
            {"code": code, "meaning": meaning, "modality": modality, "claim_types": ["institutional", "professional"],
             "citation": _cite(general, f"modifier {code}")}
            for code, meaning, modality in (
                ("95", "Synchronous audio-video.", "audio-video"),
                ("GT", "Interactive audio-video (older modifier).", "audio-video"),
                ("93", "Audio only.", "audio-only"),
                ("FQ", "Audio only (clinics).", "audio-only"),
                ("GQ", "Asynchronous.", "asynchronous"),
                ("G0", "Telehealth for an acute stroke; says nothing of the modality.", None),
            )
        ] + [{"code": "FR", "meaning": "A supervisor was present by video (not how the member was seen).",
              "modality": None, "marks_telehealth": False, "claim_types": ["institutional", "professional"],
              "citation": _cite(general, "modifier FR")}],
        "places_of_service": [
            {"code": "02", "name": "telehealth other than in the patient's home", "marks_telehealth": True,
             "note": "SYNTHETIC rule: bill the in-person place of service.",
             "guidance": [{"kind": "deny", "text": "SYNTHETIC: not accepted; bill the in-person place of service.",
                           "effective": RELEASE_DATES[0].isoformat(), "citation": _cite(general, "places of service")}],
             "citation": _cite(general, "places of service")},
            {"code": "10", "name": "telehealth in the patient's home", "marks_telehealth": True,
             "effective": RELEASE_DATES[1].isoformat(),
             "guidance": [{"kind": "warn", "text": "SYNTHETIC: add the modifier of the modality used.",
                           "effective": RELEASE_DATES[2].isoformat(), "citation": _cite(general, "places of service")}],
             "citation": _cite(general, "places of service")},
        ],
        "claim_types": [
            {"id": "professional", "name": "Professional", "transaction": "X12 837P / CMS-1500"},
            {"id": "institutional", "name": "Institutional", "transaction": "X12 837I / UB-04"},
        ],
        "categories": [{"id": cid, "name": name} for cid, name in CATEGORIES],
        "attestations": [
            {"id": "SYNTHETIC_CONSENT", "text": "SYNTHETIC: the member consented to telehealth.",
             "effective": RELEASE_DATES[0].isoformat(), "citation": _cite(general, "consent")},
            {"id": "SYNTHETIC_AUDIO_ONLY", "text": "SYNTHETIC: audio-only only when video is not possible.",
             "effective": RELEASE_DATES[2].isoformat(), "citation": _cite(general, "audio-only"),
             "modalities": ["audio-only"]},
        ],
    }


def _releases() -> dict[str, Any]:
    rels = []
    for i, day in enumerate(RELEASE_DATES):
        rels.append({"id": _release_id(i), "published": (day - dt.timedelta(days=14)).isoformat(),
                     "effective": day.isoformat(), "implements": [_table_source(i)],
                     "summary": f"SYNTHETIC release {i + 1} of a generated telehealth table (not CMAP).",
                     # every SYNTHETIC release is a whole table, as an import of an official spreadsheet would be
                     "coverage": "complete", "covers_from": COVERS_FROM})
    return {"$schema": "../schema/releases.schema.json", "releases": rels}


def _codes(rng: random.Random, n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        if rng.random() < 0.65:
            out.add(f"{rng.randrange(10000, 100000)}")
        else:
            out.add(f"{rng.choice('ABCDEFGHJKLMNPQRSTV')}{rng.randrange(0, 10000):04d}")
    return sorted(out)


def _limits(rng: random.Random, modalities: list[str]) -> list[dict[str, Any]]:
    kind = rng.choice(("age", "provider-type", "established-patient", "units-per-day"))
    lim: dict[str, Any] = {"kind": kind}
    if kind == "age":
        lo = rng.choice((0, 3, 6, 12, 18))
        lim.update(min_age=lo, max_age=lo + rng.choice((2, 5, 13, 47)),
                   guideline=f"SYNTHETIC: members aged {lo} and over, up to the maximum age.")
    elif kind == "provider-type":
        lim.update(provider_types=sorted(rng.sample(PROVIDER_TYPES, rng.randint(1, 2))),
                   guideline="SYNTHETIC: only the listed provider types.")
    elif kind == "established-patient":
        lim["guideline"] = "SYNTHETIC: established patients only."
        if "audio-only" in modalities:
            lim["modalities"] = ["audio-only"]
            lim["guideline"] = "SYNTHETIC: audio-only for established patients only."
    else:
        lim.update(max_units=rng.choice((1, 2, 4, 8)), guideline="SYNTHETIC: a daily unit limit.")
    return [lim]


def _period(rng: random.Random, code: str, release: int, start: dt.date) -> dict[str, Any]:
    permitted = rng.random() >= 0.08
    modalities: list[str] = []
    if permitted:
        modalities = ["audio-video"]
        if rng.random() < 0.35:
            modalities.append("audio-only")
        if rng.random() < 0.03:
            modalities.append("asynchronous")
        modalities.sort()
    if not permitted:
        guideline = "SYNTHETIC: not permitted via telehealth; bill in person only."
    elif "audio-only" in modalities:
        guideline = "SYNTHETIC: audio-video or audio-only."
    else:
        guideline = "SYNTHETIC: audio-video only."
    secondary = rng.random() < 0.1
    p: dict[str, Any] = {
        "effective": start.isoformat(),
        "status": "permitted" if permitted else "not-permitted",
        "modalities": modalities,
    }
    if permitted and rng.random() < 0.2:
        p["revenue_center_codes"] = sorted(rng.sample(RCCS, rng.randint(1, 3)))
    p["guideline"] = guideline
    if permitted and rng.random() < 0.15:
        p["limits"] = _limits(rng, modalities)
    p["citation"] = _cite("SYNTHETIC-READING" if secondary else _table_source(release), f"row {code}")
    p["introduced_in"] = _release_id(release)
    if rng.random() < 0.1:
        p["dates_note"] = "SYNTHETIC: generated dates."
    return p


def _code_doc(rng: random.Random, code: str) -> dict[str, Any]:
    k = len(RELEASE_DATES)
    n = rng.choices((1, 2, 3, 4), weights=(40, 30, 20, 10))[0]
    intros = sorted(rng.sample(range(k), n))
    starts = [RELEASE_DATES[r] + dt.timedelta(days=rng.choice((0, 0, 0, 14, 45, 90))) for r in intros]
    periods = [_period(rng, code, r, s) for r, s in zip(intros, starts, strict=True)]
    for i, p in enumerate(periods):
        if i + 1 < n:
            # The next row's release ends this one: right before the next row starts, or earlier (a gap).
            end = starts[i + 1] - dt.timedelta(days=1)
            if rng.random() < 0.25:
                end -= dt.timedelta(days=rng.randint(1, 120))
            p["end"] = max(end, starts[i]).isoformat()
            p["ended_in"] = _release_id(intros[i + 1])
        elif rng.random() < 0.3:
            # The last row ends: dropped from a later table (the day before it), or announced with an end.
            if intros[i] + 1 < k:
                later = rng.randrange(intros[i] + 1, k)
                p["end"] = max(RELEASE_DATES[later] - dt.timedelta(days=1), starts[i]).isoformat()
                p["ended_in"] = _release_id(later)
            else:
                p["end"] = (starts[i] + dt.timedelta(days=365)).isoformat()
                p["ended_in"] = _release_id(intros[i])
    doc: dict[str, Any] = {
        "$schema": "../../schema/code.schema.json",
        "code": code,
        "system": "CPT" if code[0].isdigit() else "HCPCS",
        "description": f"SYNTHETIC {rng.choice(_SERVICES)} {code} (generated; not a real code description)",
        "category": rng.choice(CATEGORIES)[0],
        "periods": periods,
    }
    return doc


def synthetic_policy(n_codes: int = 500, seed: int = 0) -> PolicyTree:
    """A SYNTHETIC policy tree of ``n_codes`` codes over six releases; the same seed gives the same tree.

    It loads with ``load_policy`` once written with ``write_tree``. Roughly: 1 to 4
    periods per code, a third of the rows with audio-only, a fifth with revenue
    center codes, one in seven with a limit, one in twelve not permitted, and a
    tenth citing a secondary source.
    """
    if n_codes < 1:
        raise ValueError("n_codes must be at least 1")
    rng = random.Random(f"cmap-policy synthetic {seed}")  # a string seed is hashed the same on every platform
    codes = _codes(rng, n_codes)
    return PolicyTree(_program(), _releases(), {c: _code_doc(rng, c) for c in codes})
