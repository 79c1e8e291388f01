"""One claim line's result, and the one function that decides a line into it.

Every entry point that decides lines one at a time (``eval_lines``, the service's ``Decider``, a decision
log's replay, the authors' spec runner) hands ``decide_record`` what it has: a record as a client sent it (a
mapping of the line's fields), a line already read, or the error its reader found. So a line is read by
``lines.parse_line``, decided by ``interpreter.evaluate`` and wrapped in a ``LineResult`` in one place, and
its error keeps the same message, field and line number whichever road brought it. The batch engine decides
columns instead and writes the same answers (``engines/slots.Answer``). This module imports nothing
heavier than the interpreter: a one-line ``eval`` runs through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import LineError
from .interpreter import evaluate
from .lines import parse_at
from .model import ClaimLine, Decision, Policy


@dataclass(frozen=True, slots=True)
class LineResult:
    """One input line and what became of it: a decision, or the error that kept it from one."""

    number: int
    line: ClaimLine | None
    decision: Decision | None
    error: LineError | None

    def line_fields(self) -> dict[str, Any]:
        """The part of ``as_dict`` that names the line (number, ids, code, date), without the decision.

        The decision service sends this part per line and the decision's part from a cache of its JSON.
        """
        out: dict[str, Any] = {"line": self.number}
        if self.line is not None:
            if self.line.claim_id is not None:
                out["claim_id"] = self.line.claim_id
            if self.line.line_id is not None:
                out["line_id"] = self.line.line_id
            out["code"] = self.line.code
            out["date"] = self.line.date.isoformat()
        return out

    def as_dict(self) -> dict[str, Any]:
        """What ``cmap-policy eval`` prints for the line: its fields, then the decision or the error."""
        out = self.line_fields()
        if self.decision is not None:
            out.update(self.decision.as_dict())
        if self.error is not None:
            out["error"] = self.error.message
            out["field"] = self.error.field
        return out


def decide_record(record: object, number: int, policy: Policy, release: str | None = None) -> LineResult:
    """Line ``number`` decided under ``policy`` as of ``release`` (None: its latest).

    ``record`` is a ``ClaimLine`` already read, the ``LineError`` its reader found (kept as it is: the reader
    has numbered it), or anything else, read here by ``lines.parse_line`` as a client's record of the line's
    fields (a value that is not a mapping is that line's error, numbered ``number``).
    """
    line = record if isinstance(record, (ClaimLine, LineError)) else parse_at(record, policy.program, number)
    if isinstance(line, LineError):
        return LineResult(number, None, None, line)
    return LineResult(number, line, evaluate(policy, line, release=release), None)


def decision_of(line: ClaimLine, number: int, policy: Policy, release: str | None = None) -> Decision:
    """The decision of a line already read (which always gets one), by ``decide_record``."""
    decision = decide_record(line, number, policy, release).decision
    assert decision is not None  # only a line that does not read has no decision
    return decision
