"""``load_policy``: parse, schema-check, meaning-check and index a policy tree."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import PolicyError, Problem
from ..guard import tree_files
from ..model import (
    Attestation,
    Category,
    Citation,
    ClaimType,
    Code,
    CodeView,
    EraRule,
    Guidance,
    Limit,
    Modality,
    Modifier,
    Period,
    PlaceOfService,
    Policy,
    Program,
    Release,
    Source,
    StartCorrection,
    Statute,
    Undecidable,
)
from ..resources import policy_dir, schema_dir
from . import schema, semantics
from .canonical import content_hash, normalize
from .jsonfile import JsonDoc, read_json


def _shown(path: Path, root: Path) -> str:
    try:
        return str(Path(root.name) / path.relative_to(root))
    except ValueError:
        return str(path)


def _read(path: Path, root: Path, kind: str, problems: list[Problem]) -> JsonDoc | None:
    shown = _shown(path, root)
    if not path.exists() and not path.is_symlink():  # a link that leads nowhere is read_json's to report
        problems.append(Problem(shown, "", "the file is missing", "io", f"every policy tree has {path.name}"))
        return None
    doc = read_json(path, shown, root)
    if isinstance(doc, Problem):
        problems.append(doc)
        return None
    found = schema.check(doc, kind)
    problems.extend(found)
    return None if found else doc


def read_tree(root: Path) -> tuple[JsonDoc | None, JsonDoc | None, list[tuple[Path, JsonDoc]], list[Problem]]:
    problems: list[Problem] = []
    program = _read(root / "program.json", root, "program", problems)
    releases = _read(root / "releases.json", root, "releases", problems)
    codes: list[tuple[Path, JsonDoc]] = []
    code_dir = root / "codes"
    if not code_dir.is_dir():
        problems.append(Problem(_shown(code_dir, root), "", "the codes folder is missing", "io",
                                "code files live in codes/<CODE>.json"))
    else:
        for path in tree_files(code_dir, "*.json"):
            doc = _read(path, root, "code", problems)
            if doc is not None:
                codes.append((path, doc))
    return program, releases, codes, problems


def _cite(raw: dict[str, Any], sources: dict[str, Source]) -> Citation:
    return Citation(sources[raw["source"]], raw.get("section", ""), raw.get("note", ""))


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _program(data: dict[str, Any]) -> Program:
    sources = {
        s["id"]: Source(s["id"], s["title"], s["url"], s["kind"], s["secondary"], s.get("publisher", ""),
                        s.get("published", ""), s.get("note", ""))
        for s in data["sources"]
    }
    prog = data["program"]
    return Program(
        id=prog["id"],
        name=prog["name"],
        plans=tuple(prog["plans"]),
        authority=prog["authority"],
        sources=MappingProxyType(sources),
        statutes=tuple(Statute(s["id"], s["citation"], s["requirement"], sources[s["source"]])
                       for s in data["statutes"]),
        modalities=MappingProxyType({m["id"]: Modality(m["id"], m["name"], m["description"], m["coverage"],
                                                       _cite(m["citation"], sources)) for m in data["modalities"]}),
        # sorted: messages list modifiers and claim types, and must not depend on the order in the file
        modifiers=MappingProxyType({m["code"]: Modifier(m["code"], m["meaning"], m["modality"],
                                                        tuple(sorted(m["claim_types"])), _cite(m["citation"], sources),
                                                        m.get("note", ""), m.get("marks_telehealth", True),
                                                        _date(m.get("effective")), _date(m.get("end")))
                                    for m in sorted(data["modifiers"], key=lambda m: m["code"])}),
        places_of_service=MappingProxyType({p["code"]: PlaceOfService(
            p["code"], p["name"], p["marks_telehealth"], _cite(p["citation"], sources), p.get("note", ""),
            _date(p.get("effective")), _date(p.get("end")),
            tuple(sorted((_guidance(g, sources) for g in p.get("guidance", ())),
                         key=lambda g: (g.effective or dt.date.min, g.kind, g.text))))
            for p in sorted(data["places_of_service"], key=lambda p: p["code"])}),
        claim_types=MappingProxyType({c["id"]: ClaimType(c["id"], c["name"], c["transaction"])
                                      for c in data["claim_types"]}),
        categories=MappingProxyType({c["id"]: Category(c["id"], c["name"]) for c in data["categories"]}),
        attestations=tuple(Attestation(a["id"], a["text"], _cite(a["citation"], sources),
                                       dt.date.fromisoformat(a["effective"]), _date(a.get("end")),
                                       tuple(sorted(a.get("modalities", ()))))
                           for a in sorted(data["attestations"], key=lambda a: a["id"])),
        official_table=_cite(prog["official_table"], sources) if "official_table" in prog else None,
        citation=_cite(prog["citation"], sources) if "citation" in prog else None,
        # in date order: ``show`` and the site list them as a timeline
        era_rules=tuple(sorted((_era_rule(r, sources) for r in data.get("era_rules", ())),
                               key=lambda r: (r.effective or dt.date.min, r.end or dt.date.max, r.id))),
        undecidable=tuple(Undecidable(u["id"], u["what"], u["why"], _cite(u["citation"], sources)
                                      if "citation" in u else None) for u in data.get("undecidable", ())),
    )


def _era_rule(raw: dict[str, Any], sources: dict[str, Source]) -> EraRule:
    return EraRule(raw["id"], raw["verdict"], raw["text"], _cite(raw["citation"], sources),
                   tuple(sorted(raw["modalities"])), _date(raw.get("effective")), _date(raw.get("end")),
                   raw.get("category"), tuple(_limit(lim, sources) for lim in raw.get("limits", ())))


def _guidance(raw: dict[str, Any], sources: dict[str, Source]) -> Guidance:
    return Guidance(raw["kind"], raw["text"], _cite(raw["citation"], sources), _date(raw.get("effective")),
                    _date(raw.get("end")), raw.get("start_known", True))


def _limit(raw: dict[str, Any], sources: dict[str, Source]) -> Limit:
    return Limit(
        kind=raw["kind"],
        guideline=raw["guideline"],
        citation=_cite(raw["citation"], sources) if "citation" in raw else None,
        modalities=tuple(sorted(raw.get("modalities", ()))),
        min_age=raw.get("min_age"),
        max_age=raw.get("max_age"),
        provider_types=tuple(sorted(raw.get("provider_types", ()))),
        max_units=raw.get("max_units"),
    )


def _code(data: dict[str, Any], file: str, sources: dict[str, Source]) -> Code:
    periods = tuple(
        Period(
            code=data["code"],
            effective=dt.date.fromisoformat(p["effective"]),
            end=_date(p.get("end")),
            permitted=p["status"] == "permitted",
            modalities=tuple(sorted(p["modalities"])),
            revenue_center_codes=tuple(sorted(p.get("revenue_center_codes", ()))),
            # in the canonical order (the hash's): to_confirm lists limits, and must not follow the file's order
            limits=tuple(_limit(x, sources) for x in normalize(p.get("limits", []))),
            guideline=p["guideline"],
            citation=_cite(p["citation"], sources),
            introduced_in=p["introduced_in"],
            ended_in=p.get("ended_in"),
            dates_note=p.get("dates_note", ""),
            start_known=p.get("start_known", True),
            undetermined_modalities=tuple(sorted(p.get("undetermined_modalities", ()))),
            removed=p.get("removed", False),
        )
        for p in sorted(data["periods"], key=lambda p: p["effective"])
    )
    return Code(data["code"], data["system"], data["description"], data["category"], periods, file,
                data.get("note", ""))


def _views(releases: tuple[Release, ...], codes: dict[str, Code]) -> dict[str, MappingProxyType[str, CodeView]]:
    ordinal = {r.id: r.ordinal for r in releases}
    # A start a later release dated was unknown before it: earlier views keep the row as that release found it.
    corrected = {(c.code, c.introduced_in, c.now): (c.was, r.ordinal) for r in releases for c in r.corrections}
    views: dict[str, MappingProxyType[str, CodeView]] = {}
    for rel in releases:
        table: dict[str, CodeView] = {}
        for code in codes.values():
            visible = []
            for p in code.periods:
                if ordinal[p.introduced_in] > rel.ordinal:
                    continue
                if p.ended_in is not None and ordinal[p.ended_in] > rel.ordinal:
                    p = replace(p, end=None, ended_in=None, removed=False)
                was = corrected.get((p.code, p.introduced_in, p.effective))
                if was is not None and was[1] > rel.ordinal:
                    p = replace(p, effective=was[0], start_known=False)
                visible.append(p)
            if visible:
                table[code.code] = CodeView(code, tuple(visible), tuple(p.effective.toordinal() for p in visible))
        views[rel.id] = MappingProxyType(table)
    return views


def load_policy(path: str | Path | None = None) -> Policy:
    """Load the policy tree at ``path`` (default: the bundled CMAP policy).

    Raises ``PolicyError`` listing every problem found, each with file, line,
    JSON pointer, message and hint.
    """
    root = Path(path) if path is not None else policy_dir()
    if not root.is_dir():
        raise PolicyError([Problem(str(root), "", "no policy folder here", "io",
                                   "pass the folder that holds program.json, releases.json and codes/")])
    from . import cache

    key = cache.fingerprint(root, schema_dir())
    entry = cache.load(key) if key is not None else None
    if entry is not None:  # the same bytes passed every check before: build the Policy, skip the checks
        try:
            return build(root, *from_data(entry), known_hash=entry["hash"])
        except Exception:  # an entry of another shape (damaged, or from another version): load from the files
            pass
    program_doc, releases_doc, code_docs = check_tree(root)
    policy = build(root, program_doc, releases_doc, code_docs)
    if key is not None:
        cache.store(key, policy.documents, policy.hash)
    return policy


def load_checked(root: Path) -> Policy:
    """Load and check the tree at ``root`` from its files, never from the cache (``PolicyError`` if it fails)."""
    return build(root, *check_tree(root))


Checked = tuple[JsonDoc, JsonDoc, list[tuple[Path, JsonDoc]]]


def check_tree(root: Path) -> Checked:
    """The documents of the tree at ``root`` once they pass every check (``PolicyError`` lists every problem):
    what ``build`` makes a Policy of, and what the cache keeps (as JSON: data, never code)."""
    program_doc, releases_doc, code_docs, problems = read_tree(root)
    if program_doc is not None:
        problems.extend(semantics.check_program(program_doc))
    if program_doc is None or releases_doc is None:
        raise PolicyError(problems)
    pdata = program_doc.data
    sources_known = frozenset(s["id"] for s in pdata["sources"])
    problems.extend(semantics.check_releases(releases_doc, sources_known))
    known = _known(pdata, releases_doc.data)
    problems.extend(semantics.check_citations(program_doc, pdata, known))
    seen_codes: dict[str, str] = {}
    for p, doc in code_docs:
        problems.extend(semantics.check_code(doc, p.stem, known))
        code = doc.data["code"]
        if code in seen_codes:
            problems.append(doc.problem("/code", f"duplicate code {code!r}: also in {seen_codes[code]}",
                                        "meaning:duplicate", "keep one file per code"))
        seen_codes.setdefault(code, doc.path)
    if problems:
        raise PolicyError(problems)
    return program_doc, releases_doc, code_docs


def as_data(checked: Checked) -> dict[str, Any]:
    """Checked documents as plain JSON data: what the cache keeps, and what the Spark engine ships to its
    workers. Data, never code: ``from_data`` gives the documents back, ``build`` makes a Policy of them."""
    program_doc, releases_doc, code_docs = checked
    return {"program": program_doc.data, "releases": releases_doc.data,
            "codes": [[doc.path, doc.data] for _, doc in code_docs]}


def from_data(data: Mapping[str, Any]) -> Checked:
    """The documents ``as_data`` gave, as ``check_tree`` gave them (without their text: a problem is never
    reported from them, they passed every check)."""
    codes = [(Path(shown), JsonDoc(shown, "", doc)) for shown, doc in data["codes"]]
    return JsonDoc("program.json", "", data["program"]), JsonDoc("releases.json", "", data["releases"]), codes


def build(root: Path, program_doc: JsonDoc, releases_doc: JsonDoc, code_docs: list[tuple[Path, JsonDoc]],
          known_hash: str | None = None) -> Policy:
    """The Policy of documents that passed ``check_tree`` (here, or in an earlier run: from the cache, with
    their hash)."""
    pdata = program_doc.data
    program = _program(pdata)
    releases = tuple(
        Release(r["id"], dt.date.fromisoformat(r["published"]), dt.date.fromisoformat(r["effective"]),
                tuple(program.sources[s] for s in r["implements"]), r["summary"], i, r["coverage"],
                (_date(r.get("covers_from")) or dt.date.fromisoformat(r["effective"]))
                if r["coverage"] == "complete" else None, r.get("dates_known", True),
                tuple(StartCorrection(c["code"], dt.date.fromisoformat(c["was"]), dt.date.fromisoformat(c["now"]),
                                      c["introduced_in"]) for c in r.get("corrections", ())),
                tuple(r.get("notice_paragraphs", ())))
        for i, r in enumerate(releases_doc.data["releases"])
    )
    sources = dict(program.sources)
    codes = {doc.data["code"]: _code(doc.data, doc.path, sources) for _, doc in code_docs}
    digest = known_hash or content_hash({"program": pdata, "releases": releases_doc.data,
                                         **{f"code:{c}": doc.data for c, doc in ((d.data["code"], d)
                                                                                 for _, d in code_docs)}})
    return Policy(
        root=str(root),
        program=program,
        releases=releases,
        codes=MappingProxyType(dict(sorted(codes.items()))),
        hash=digest,
        views=MappingProxyType(_views(releases, codes)),
        complete_from=MappingProxyType(_complete_from(releases)),
        documents=MappingProxyType(as_data((program_doc, releases_doc, code_docs))),
    )


def _complete_from(releases: tuple[Release, ...]) -> dict[str, dt.date | None]:
    """For each release, where the whole table is known in its view: the latest complete release's covers_from."""
    out: dict[str, dt.date | None] = {}
    start: dt.date | None = None
    for rel in releases:
        if rel.complete:
            start = rel.covers_from
        out[rel.id] = start
    return out


def _known(pdata: dict[str, Any], rdata: dict[str, Any]) -> semantics.Known:
    return semantics.Known(
        sources=frozenset(s["id"] for s in pdata["sources"]),
        modalities=frozenset(m["id"] for m in pdata["modalities"]),
        modifiers=frozenset(m["code"] for m in pdata["modifiers"]),
        places_of_service=frozenset(p["code"] for p in pdata["places_of_service"]),
        categories=frozenset(c["id"] for c in pdata["categories"]),
        releases={r["id"]: i for i, r in enumerate(rdata["releases"])},
    )
