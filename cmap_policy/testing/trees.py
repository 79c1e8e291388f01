"""A policy tree as plain data (program, releases, code documents), to build, change and write."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..resources import policy_dir


@dataclass
class PolicyTree:
    program: dict[str, Any]
    releases: dict[str, Any]
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def copy(self) -> PolicyTree:
        return copy.deepcopy(self)


def read_tree(root: str | Path) -> PolicyTree:
    root = Path(root)
    codes = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((root / "codes").glob("*.json"))}
    return PolicyTree(json.loads((root / "program.json").read_text(encoding="utf-8")),
                      json.loads((root / "releases.json").read_text(encoding="utf-8")), codes)


def bundled_tree() -> PolicyTree:
    return read_tree(policy_dir())


def write_tree(tree: PolicyTree, root: str | Path) -> Path:
    """Write ``tree`` under ``root`` (created if needed) as a loadable policy folder."""
    root = Path(root)
    (root / "codes").mkdir(parents=True, exist_ok=True)

    def dump(path: Path, doc: dict[str, Any]) -> None:
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    dump(root / "program.json", tree.program)
    dump(root / "releases.json", tree.releases)
    for code, doc in tree.codes.items():
        dump(root / "codes" / f"{code}.json", doc)
    return root
