"""``diff``: the row and decision changes between two sides, as one value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...model import Policy
from ...resources import working_policy_dir
from .decisions import NO_DECISION_CHANGES, decision_changes
from .markdown import render_markdown
from .rows import code_changes, program_changes, release_changes, row_changes
from .sides import Side, load_folder, resolve


@dataclass
class PolicyDiff:
    """The changes from ``base`` to ``head``: releases, program entries, codes, rows and decisions."""

    base: Side
    head: Side
    releases: list[dict[str, Any]]
    program: list[dict[str, Any]]
    codes: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    decisions: list[dict[str, Any]]

    @property
    def has_decision_changes(self) -> bool:
        return bool(self.decisions)

    @property
    def is_empty(self) -> bool:
        return not (self.releases or self.program or self.codes or self.rows or self.decisions)

    def flips(self) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
        """(example line record, before, after) for every change the diff reports."""
        return [(c["example"], c["before"], c["after"]) for e in self.decisions for c in e["changes"]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base.as_dict(),
            "head": self.head.as_dict(),
            "summary": self.summary(),
            "releases": self.releases,
            "program": self.program,
            "codes": self.codes,
            "rows": self.rows,
            "decisions": self.decisions,
        }

    def summary(self) -> str:
        if not self.decisions:
            return NO_DECISION_CHANGES
        codes = {e["code"] for e in self.decisions}
        n = sum(len(e["changes"]) for e in self.decisions)
        return (f"decision changes: {n} kind(s) of line in {len(self.decisions)} range(s) of "
                f"{len(codes)} code(s)")

    def to_markdown(self) -> str:
        return render_markdown(self)


def diff_sides(base: str | Path | Policy | Side, head: str | Path | Policy | Side | None = None, *,
               policy: str | Path | None = None) -> tuple[Side, Side]:
    """BASE and HEAD read as ``diff`` reads them (the working policy loaded once, when either needs it)."""
    working: Policy | None = None
    if head is None or (isinstance(base, str) and not Path(base).is_dir()):
        folder = Path(policy) if policy is not None else working_policy_dir()
        working = load_folder(folder, "working") if folder.is_dir() else None
    return (resolve(base, policy=policy, what="BASE", working=working),
            resolve(head, policy=policy, what="HEAD", working=working))


def diff(base: str | Path | Policy | Side, head: str | Path | Policy | Side | None = None, *,
         policy: str | Path | None = None, exhaustive: bool = False) -> PolicyDiff:
    """Compare two policies: folders, git revisions of this repository, or release ids of the working policy.

    ``head`` defaults to the working tree (``policy``, default the repository's policy folder).
    """
    b, h = diff_sides(base, head, policy=policy)
    return PolicyDiff(b, h, release_changes(b, h), program_changes(b, h), code_changes(b, h), row_changes(b, h),
                      decision_changes(b, h, exhaustive=exhaustive))


