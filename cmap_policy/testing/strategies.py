"""Hypothesis strategies: generated (never CMAP) policy trees and claim lines, and hostile input.

Generated trees reuse the bundled program (modalities, modifiers, places of
service) and make up releases and codes, with periods that never overlap in any
release, so that every generated tree loads.

The hostile strategies (``hostile_values``, ``hostile_records``, ``hostile_jsonl``,
``hostile_csv``, ``hostile_json_fragment``) make what the readers must survive:
deep nesting, huge integers, control and surrogate characters, byte-order marks,
CRLF, NUL bytes and bytes that are not UTF-8.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import strategies as st

from .trees import PolicyTree, bundled_tree

DAY0 = dt.date(2019, 1, 1)
SPAN_DAYS = 9 * 365
MODALITIES = ("audio-video", "audio-only", "asynchronous")
OTHER_MODIFIERS = ("25", "59", "HO", "U1")
PROVIDER_TYPES = ("clinic", "physician", "fqhc")
RCCS = ("0513", "0900", "0914", "0915")
GENERATED_SOURCE = {
    "id": "GENERATED",
    "title": "Generated policy for tests (not the CMAP policy)",
    "url": "https://example.invalid/generated-policy",
    "kind": "code-list",
    "secondary": True,
}


def _iso(day: int) -> str:
    return (DAY0 + dt.timedelta(days=day)).isoformat()


@st.composite
def releases(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 4))
    days = sorted(draw(st.lists(st.integers(0, SPAN_DAYS), min_size=n, max_size=n)))
    out = []
    for i, d in enumerate(days):
        rel: dict[str, Any] = {"id": f"GEN-R{i + 1}", "published": _iso(d), "effective": _iso(d),
                               "implements": ["GENERATED"], "summary": f"Generated release {i + 1}",
                               "coverage": draw(st.sampled_from(["partial", "partial", "complete"]))}
        if rel["coverage"] == "complete" and draw(st.booleans()):
            rel["covers_from"] = _iso(draw(st.integers(0, d)))
        out.append(rel)
    return out


@st.composite
def limits(draw: st.DrawFn, modalities: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for kind in draw(st.lists(st.sampled_from(["age", "provider-type", "established-patient", "units-per-day"]),
                              unique=True, max_size=2)):
        lim: dict[str, Any] = {"kind": kind, "guideline": f"Generated {kind} limit."}
        if kind == "age":
            lo = draw(st.integers(0, 30))
            lim.update({"min_age": lo, "max_age": lo + draw(st.integers(0, 60))})
        elif kind == "provider-type":
            lim["provider_types"] = draw(st.lists(st.sampled_from(PROVIDER_TYPES), min_size=1, unique=True))
        elif kind == "units-per-day":
            lim["max_units"] = draw(st.integers(1, 8))
        restrict: bool = draw(st.booleans())
        if modalities and restrict:
            lim["modalities"] = draw(st.lists(st.sampled_from(modalities), min_size=1, unique=True))
        out.append(lim)
    return out


@st.composite
def code_doc(draw: st.DrawFn, code: str, n_releases: int) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    # 2n sorted distinct day numbers give n disjoint [start, end] spans.
    cuts = sorted(draw(st.lists(st.integers(0, SPAN_DAYS), min_size=2 * n, max_size=2 * n, unique=True)))
    intros = sorted(draw(st.lists(st.integers(0, n_releases - 1), min_size=n, max_size=n)))
    last_open = draw(st.booleans())
    periods = []
    for i in range(n):
        status = draw(st.sampled_from(["permitted", "permitted", "permitted", "not-permitted"]))
        mods = [] if status == "not-permitted" else draw(
            st.lists(st.sampled_from(MODALITIES[:2] if draw(st.integers(0, 9)) else MODALITIES), min_size=1,
                     unique=True))
        p: dict[str, Any] = {
            "effective": _iso(cuts[2 * i]),
            "status": status,
            "modalities": mods,
            "guideline": "Generated row.",
            "citation": {"source": "GENERATED"},
            "introduced_in": f"GEN-R{intros[i] + 1}",
        }
        if i < n - 1 or not last_open:
            # an end must be published no later than every later period's introduction
            latest = intros[i + 1] if i + 1 < n else n_releases - 1
            p["end"] = _iso(cuts[2 * i + 1])
            p["ended_in"] = f"GEN-R{draw(st.integers(intros[i], latest)) + 1}"
            if draw(st.integers(0, 3)) == 0:
                p["removed"] = True
        if status == "permitted" and draw(st.booleans()):
            p["revenue_center_codes"] = draw(st.lists(st.sampled_from(RCCS), min_size=1, unique=True))
        if status == "permitted":
            lims = draw(limits(mods))
            if lims:
                p["limits"] = lims
            silent = [m for m in MODALITIES[:2] if m not in mods]
            if silent and draw(st.integers(0, 3)) == 0:
                p["undetermined_modalities"] = silent
        if draw(st.integers(0, 3)) == 0:
            p["start_known"] = False
        periods.append(p)
    system = "CPT" if code[0].isdigit() else "HCPCS"
    return {"$schema": "../../schema/code.schema.json", "code": code, "system": system,
            "description": f"Generated code {code}", "category": "behavioral-health", "periods": periods}


CODE_POOL = ("90791", "90834", "97153", "97156", "99213", "H0031", "H2014", "T1016", "G2012", "S9484")


@st.composite
def policy_trees(draw: st.DrawFn, max_codes: int = 6) -> PolicyTree:
    """A generated policy tree: the bundled program with a GENERATED source, made-up releases and codes."""
    base = bundled_tree()
    program = base.program
    program["sources"] = [*program["sources"], dict(GENERATED_SOURCE)]
    # the program's dated rules vary too: when a modifier or place of service exists, and its guidance
    for mod in program["modifiers"]:
        if draw(st.integers(0, 3)) == 0:
            mod["effective"] = _iso(draw(st.integers(0, SPAN_DAYS)))
        elif "effective" in mod and draw(st.booleans()):
            del mod["effective"]
    for pos in program["places_of_service"]:
        if draw(st.booleans()):
            pos["guidance"] = [{"kind": draw(st.sampled_from(["warn", "deny"])), "text": "Generated guidance.",
                                "effective": _iso(draw(st.integers(0, SPAN_DAYS))),
                                "citation": {"source": "GENERATED"}}]
    rels = draw(releases())
    codes = draw(st.lists(st.sampled_from(CODE_POOL), min_size=1, max_size=max_codes, unique=True))
    docs = {c: draw(code_doc(c, len(rels))) for c in codes}
    return PolicyTree(program, {"$schema": "../schema/releases.schema.json", "releases": rels}, docs)


def _boundary_dates(tree: PolicyTree) -> list[str]:
    out = {DAY0.isoformat()}
    for doc in tree.codes.values():
        for p in doc["periods"]:
            for key in ("effective", "end"):
                if key in p:
                    d = dt.date.fromisoformat(p[key])
                    out.update(x.isoformat() for x in (d - dt.timedelta(days=1), d, d + dt.timedelta(days=1)))
    return sorted(out)


@st.composite
def claim_records(draw: st.DrawFn, tree: PolicyTree | None = None) -> dict[str, Any]:
    """A claim line as a record (the shape ``parse_line`` reads), near the tree's interesting dates."""
    codes = list(tree.codes) if tree is not None else []
    code = draw(st.sampled_from([*codes, *CODE_POOL]) if codes else st.sampled_from(CODE_POOL))
    if tree is not None and draw(st.booleans()):
        date = draw(st.sampled_from(_boundary_dates(tree)))
    else:
        date = _iso(draw(st.integers(0, SPAN_DAYS)))
    th = ["95", "GT", "93", "FQ", "GQ", "FR", "G0"]
    rec: dict[str, Any] = {
        "code": code,
        "date": date,
        "modifiers": draw(st.lists(st.sampled_from(th + list(OTHER_MODIFIERS)), max_size=3, unique=True)),
        "claim_type": draw(st.sampled_from(["professional", "institutional"])),
    }
    if draw(st.booleans()):
        rec["pos"] = draw(st.sampled_from(["02", "10", "11", "12", "22"]))
    if draw(st.booleans()):
        rec["rcc"] = draw(st.sampled_from([*RCCS, "0100"]))
    if draw(st.integers(0, 4)) == 0:
        rec["modality"] = draw(st.sampled_from(MODALITIES))
    if draw(st.booleans()):
        rec["member_age"] = draw(st.integers(0, 100))
    if draw(st.booleans()):
        rec["provider_type"] = draw(st.sampled_from([*PROVIDER_TYPES, "dentist"]))
    if draw(st.booleans()):
        rec["units"] = draw(st.integers(0, 12))
    if draw(st.booleans()):
        rec["established_patient"] = draw(st.booleans())
    return rec


# --- hostile values -----------------------------------------------------------------------------------------------
#
# What an attacker (or a broken exporter) puts in a claim file or a policy file: values nested thousands
# deep, integers of thousands of digits, control characters (the ASCII separators \x1c-\x1f count as blanks
# to str.strip but not to int()), lone surrogates, NUL bytes, byte-order marks, carriage returns, bytes that
# are not UTF-8. The readers must turn each into a claim line or a located error, never an exception.

BOM = "\ufeff"
CONTROL = "".join(chr(c) for c in [*range(0x00, 0x20), 0x7F, 0x85, 0xA0, 0x2028, 0x2029, 0x3000])
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


def hostile_text(max_size: int = 12) -> st.SearchStrategy[str]:
    """Text of control characters, lone surrogates, a BOM, CRLF and NUL, mixed with digits and letters."""
    pieces = st.sampled_from([*CONTROL, BOM, "\r\n", "\r", "\x00", '"', ",", "\\", "9", "T1016", "95", "2026-01-05",
                              " ", "é", "\U0001F600"])
    return st.lists(st.one_of(pieces, SURROGATES, st.characters()), max_size=max_size).map("".join)


def deep_json_text(min_depth: int = 60, max_depth: int = 5000) -> st.SearchStrategy[str]:
    """JSON text nested ``min_depth`` to ``max_depth`` levels deep (lists, objects or both)."""
    @st.composite
    def build(draw: st.DrawFn) -> str:
        depth = draw(st.integers(min_depth, max_depth))
        kind = draw(st.sampled_from(["list", "object", "mixed"]))
        opens = {"list": "[", "object": '{"a":'}
        if kind == "mixed":
            return '{"a":[' * (depth // 2) + "0" + "]}" * (depth // 2)
        close = "]" if kind == "list" else "}"
        return opens[kind] * depth + "0" + close * depth
    return build()


def huge_number_text() -> st.SearchStrategy[str]:
    """A JSON number (or the digits of one) of 4,000 to 6,000 digits: past CPython's 4,300-digit conversion limit."""
    return st.tuples(st.sampled_from(["", "-"]), st.integers(4000, 6000), st.sampled_from(["", ".5", "e3"])).map(
        lambda t: t[0] + "9" * t[1] + t[2])


def deep_value(depth: int) -> Any:
    """A Python value nested ``depth`` deep, built without recursion."""
    value: Any = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def hostile_values() -> st.SearchStrategy[Any]:
    """Python values a record may hold (what an API caller or a JSON parser hands over)."""
    return st.one_of(
        hostile_text(),
        st.integers(4000, 6000).map(lambda n: 10 ** n),
        huge_number_text(),
        st.integers(60, 5000).map(deep_value),
        st.floats(allow_nan=True, allow_infinity=True),
        st.binary(max_size=8),
        st.lists(hostile_text(4), max_size=3),
        st.dictionaries(hostile_text(4), hostile_text(4), max_size=2),
        st.none(), st.booleans(),
        st.sampled_from(["T1016", "2026-01-05", "95", "11", "27", " 27 ", "27\x1c", "0900", "institutional"]),
    )


FIELD_NAMES = ("code", "date", "modifiers", "pos", "claim_type", "rcc", "modality", "member_age", "provider_type",
               "units", "established_patient", "line_id", "claim_id")


@st.composite
def hostile_records(draw: st.DrawFn) -> dict[Any, Any]:
    """A claim line as a record with hostile values in some fields (and sometimes a hostile key)."""
    record: dict[Any, Any] = {"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]}
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=3, unique=True)):
        record[name] = draw(hostile_values())
    if draw(st.integers(0, 5)) == 0:
        record[draw(hostile_text(6))] = "x"
    return record


@st.composite
def hostile_json_fragment(draw: st.DrawFn) -> str:
    """JSON text for one value, hostile: deep, a huge number, escapes of lone surrogates, NUL and controls."""
    return draw(st.one_of(
        deep_json_text(),
        huge_number_text(),
        hostile_text().map(lambda t: json.dumps(t)),  # escapes, \ud800 among them
        st.sampled_from(['"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"27\\u001c"', "NaN", "-Infinity", "1e99999",
                         '"\\ufeffT1016"']),
    ))


@st.composite
def hostile_jsonl(draw: st.DrawFn) -> bytes:
    """A JSON Lines file: good lines and hostile ones (hostile values, broken JSON, bytes that are not UTF-8, a BOM,
    CRLF endings, NUL bytes, blank lines)."""
    good = '{"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]}'
    lines: list[bytes] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["good", "value", "value", "broken", "bytes", "blank"]))
        if kind == "good":
            line = good.encode()
        elif kind == "value":
            field = draw(st.sampled_from(FIELD_NAMES))
            line = ('{"code": "T1016", "date": "2026-01-05", "' + field + '": '
                    + draw(hostile_json_fragment()) + "}").encode("utf-8", "surrogatepass")
        elif kind == "broken":
            line = good[:draw(st.integers(0, len(good) - 1))].encode()
        elif kind == "bytes":
            line = draw(st.binary(max_size=12))
        else:
            line = draw(st.sampled_from([b"", b" ", b"\t", b"\r", b"\x0b"]))
        lines.append(line.replace(b"\n", b" "))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = ending.join(lines) + draw(st.sampled_from([ending, b""]))
    return (b"\xef\xbb\xbf" if draw(st.integers(0, 4)) == 0 else b"") + data


@st.composite
def hostile_csv(draw: st.DrawFn) -> bytes:
    """A CSV file: a header (sometimes broken) and good and hostile lines (quotes left open, quotes as characters,
    stray carriage returns, blank lines, huge numbers, control characters, bytes that are not UTF-8)."""
    header = draw(st.sampled_from([b"code,date,modifiers,member_age,line_id", b"Code, Date ,modifiers,age,line_id",
                                   b'"code","date","modifiers","units","line_id"', b"code,date,code",
                                   b"code,date," + b"x" * 131_100, b"\xffcode,date"]))
    cells = st.one_of(st.sampled_from(["T1016", "2026-01-05", "93", "95 GT", "27", "", " "]),
                      hostile_text(6).map(lambda t: t.replace("\n", " ")),
                      huge_number_text(),
                      st.sampled_from(['"a', 'a"b', '"a""b"', '"a"x', '"', '""', "\r", "\x00", "\x1c"]))
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        values = draw(st.lists(cells, min_size=4, max_size=6))
        rows.append(",".join(values).encode("utf-8", "surrogatepass"))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(rows)))
        rows.insert(at, draw(st.binary(max_size=10)).replace(b"\n", b""))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = ending.join([header, *rows]) + draw(st.sampled_from([ending, b""]))
    return (b"\xef\xbb\xbf" if draw(st.integers(0, 4)) == 0 else b"") + data
