"""Re-decide the lines of a decision log against another policy and report every decision that changes.

The audit question: "what would the new table have done to last month's traffic". Each record's input line
is read again by ``lines.parse_line`` and decided by ``results.decide_record`` against the other policy (its
latest release, or the one asked for); a decision changes when what it decided (the ``DECIDED_FIELDS`` of its
``model.DecisionSummary``: outcome, reason codes, matched period) differs from what the log kept. A record
whose input had fields masked (``--log-mask``) is replayed without them and says so, since a masked field the
rules read can change the decision by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LineError
from ..lines import parse_line
from ..model import DECIDED_FIELDS, SUMMARY_FIELDS, ClaimLine, DecisionSummary, Outcome, Policy, Program
from ..results import decision_of
from .log import read_records

_OUTCOMES = frozenset(o.value for o in Outcome)


@dataclass(frozen=True, slots=True)
class Change:
    file: str
    number: int
    decision_id: str | None
    input: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    masked: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = {"file": self.file, "line": self.number, "decision_id": self.decision_id, "input": self.input,
               "before": self.before, "after": self.after}
        if self.masked:
            out["masked"] = list(self.masked)
        return out


@dataclass(frozen=True, slots=True)
class Unreplayable:
    file: str
    number: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.number}: {self.message}"


@dataclass
class Tally:
    replayed: int = 0
    changed: int = 0
    unreplayable: int = 0
    releases: set[str] = field(default_factory=set)


def _logged(record: dict[str, Any]) -> dict[str, Any]:
    """The summary the log holds (``DecisionSummary.as_dict``, as the log wrote it), its values as they are: a
    log edited by hand may hold anything, and a change shows what it held."""
    out = {name: record.get(name) for name in SUMMARY_FIELDS}
    out["reasons"] = list(out["reasons"] or [])
    return out


def logged_summary(record: dict[str, Any]) -> DecisionSummary | None:
    """The summary a log record holds, when it holds one a report can count (an outcome the model knows and a
    list of reason codes); None otherwise."""
    outcome, reasons, period = record.get("outcome"), record.get("reasons"), record.get("period")
    # an outcome that is not text (a list, say) is not one, and is never looked up in the set
    if not isinstance(outcome, str) or outcome not in _OUTCOMES:
        return None
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        return None
    return DecisionSummary(outcome, tuple(reasons), period if isinstance(period, str) else None,
                   str(record.get("release")), str(record.get("policy_hash")))


@dataclass(frozen=True, slots=True)
class LoggedLine:
    """A record of a decision log whose input line reads again."""

    file: str
    number: int
    line: ClaimLine
    record: dict[str, Any]


def logged_lines(paths: Iterable[Path], program: Program, tally: Tally) -> Iterator[LoggedLine | Unreplayable]:
    """Every record of the logs, in order: its line read again by ``parse_line``, or why it cannot be."""
    for path in paths:
        for number, record in read_records(path):
            if isinstance(record, str):
                tally.unreplayable += 1
                yield Unreplayable(str(path), number, record)
                continue
            try:
                line = parse_line(record["input"], program)
            except LineError as err:
                tally.unreplayable += 1
                yield Unreplayable(str(path), number, f"the logged line no longer reads: {err}")
                continue
            yield LoggedLine(str(path), number, line, record)


def replay(paths: Iterable[Path], policy: Policy, *, release: str | None = None,
           tally: Tally | None = None) -> Iterator[Change | Unreplayable]:
    """Every changed decision and every record that cannot be replayed, in the order of the files."""
    tally = tally if tally is not None else Tally()
    for item in logged_lines(paths, policy.program, tally):
        if isinstance(item, Unreplayable):
            yield item
            continue
        record = item.record
        decision = decision_of(item.line, item.number, policy, release)
        tally.replayed += 1
        tally.releases.add(decision.release)
        after = decision.summary().as_dict()
        before = _logged(record)
        if [before[k] for k in DECIDED_FIELDS] != [after[k] for k in DECIDED_FIELDS]:
            tally.changed += 1
            yield Change(item.file, item.number, record.get("decision_id"), record["input"], before, after,
                         tuple(record.get("masked") or ()))
