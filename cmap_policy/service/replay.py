"""Re-decide the lines of a decision log against another policy and report every decision that changes.

The audit question: "what would the new table have done to last month's traffic". Each record's input line
is read again by ``lines.parse_line`` and decided by ``interpreter.evaluate`` against the other policy
(its latest release, or the one asked for); a decision changes when its outcome, its reason codes or its
matched period differ from the logged ones. A record whose input had fields masked (``--log-mask``) is
replayed without them and says so, since a masked field the rules read can change the decision by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LineError
from ..interpreter import evaluate
from ..lines import parse_line
from ..model import ClaimLine, Policy, Program
from .log import read_records


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


def _compared(outcome: Any, reasons: Any, period: Any, release: Any, policy_hash: Any) -> dict[str, Any]:
    return {"outcome": outcome, "reasons": list(reasons), "period": period, "release": release,
            "policy_hash": policy_hash}


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
        decision = evaluate(policy, item.line, release=release)
        tally.replayed += 1
        tally.releases.add(decision.release)
        after = _compared(decision.outcome.value, decision.reason_codes, decision.period.id if decision.period
                          else None, decision.release, decision.policy_hash)
        before = _compared(record.get("outcome"), record.get("reasons") or [], record.get("period"),
                           record.get("release"), record.get("policy_hash"))
        if [before[k] for k in ("outcome", "reasons", "period")] != [after[k] for k in
                                                                      ("outcome", "reasons", "period")]:
            tally.changed += 1
            yield Change(item.file, item.number, record.get("decision_id"), record["input"], before, after,
                         tuple(record.get("masked") or ()))
