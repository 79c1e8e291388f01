"""FAQs authored as data beside the policy: ``policy/faq/<id>.json``, checked by schema and by meaning.

The meaning checks are what a schema cannot say: the citation names a source of program.json, the
release is one of releases.json, and every related code is a code of the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import PolicyError, Problem
from ..guard import tree_files
from ..model import Citation, Policy
from . import schema
from .jsonfile import JsonDoc, read_json


@dataclass(frozen=True, slots=True)
class Faq:
    id: str
    question: str
    answer: str
    citation: Citation
    release: str
    codes: tuple[str, ...]
    file: str


def faq_dir(policy: Policy) -> Path:
    return Path(policy.root) / "faq"


def _shown(path: Path, policy: Policy) -> str:
    root = Path(policy.root)
    return str(Path(root.name) / path.relative_to(root))


def _meaning(doc: JsonDoc, stem: str, policy: Policy) -> list[Problem]:
    data = doc.data
    problems = []
    if data["id"] != stem:
        problems.append(doc.problem("/id", f"the id {data['id']!r} does not match the file name {stem!r}",
                                    "meaning:file-name", f"rename the file to {data['id']}.json or fix the id"))
    source = data["citation"]["source"]
    if source not in policy.program.sources:
        problems.append(doc.problem("/citation/source", f"unknown source id {source!r}", "meaning:unknown-source",
                                    "use one of the source ids in program.json"))
    known_releases = [r.id for r in policy.releases]
    if data["release"] not in known_releases:
        problems.append(doc.problem("/release", f"unknown release {data['release']!r}", "meaning:unknown-release",
                                    f"use one of {', '.join(known_releases)}"))
    for i, code in enumerate(data.get("codes", [])):
        if code not in policy.codes:
            problems.append(doc.problem(f"/codes/{i}", f"{code!r} is not a code of the telehealth table",
                                        "meaning:unknown-code", "relate the FAQ to codes under policy/codes/"))
    return problems


def check_faqs(policy: Policy) -> tuple[list[Faq], list[Problem]]:
    """Every FAQ of the policy that passes the checks, and every problem found (empty when all pass)."""
    faqs: list[Faq] = []
    problems: list[Problem] = []
    folder = faq_dir(policy)
    if not folder.is_dir():
        return faqs, problems
    for path in tree_files(folder, "*.json"):
        doc = read_json(path, _shown(path, policy), Path(policy.root))
        if isinstance(doc, Problem):
            problems.append(doc)
            continue
        found = schema.check(doc, "faq")
        if not found:
            found = _meaning(doc, path.stem, policy)
        problems.extend(found)
        if found:
            continue
        d = doc.data
        c = d["citation"]
        faqs.append(Faq(d["id"], d["question"], d["answer"],
                        Citation(policy.program.sources[c["source"]], c.get("section", ""), c.get("note", "")),
                        d["release"], tuple(d.get("codes", ())), doc.path))
    ordinal = {r.id: r.ordinal for r in policy.releases}
    faqs.sort(key=lambda f: (-ordinal[f.release], f.id))
    return faqs, problems


def load_faqs(policy: Policy) -> list[Faq]:
    """The policy's FAQs, newest release first; ``PolicyError`` lists every problem if any file is wrong."""
    faqs, problems = check_faqs(policy)
    if problems:
        raise PolicyError(problems)
    return faqs
