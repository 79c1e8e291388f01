"""A claim line in, the JSON ``cmap-policy eval`` prints for it out, plus a ``decision_id``.

There is one definition of a decision's JSON: ``api.LineResult.as_dict``. The service sends the same object,
built in two parts so that a busy service does not rebuild what it has already built: the line's own
fields (``LineResult.line_fields``), and the decision's (``Decision.as_dict``), serialised once per
decision. The interpreter keeps one ``Decision`` object per slot (release, code, period, modifiers, ...),
so a handful of decisions serve most traffic, and each one's JSON is kept here beside it.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..api import LineResult
from ..caches import Cache
from ..errors import LineError
from ..interpreter import evaluate
from ..lines import json_error, parse_at
from ..model import Decision, Policy

# A decision id: this process's random prefix and a counter. Unique across restarts (the prefix is 64 random
# bits) and cheap on the request path, where a uuid4 per decision would cost more than the decision.
_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def new_decision_id() -> str:
    return f"{_PREFIX}-{next(_COUNTER):x}"


@dataclass(frozen=True, slots=True)
class Answer:
    """One line's answer: what the client gets (``body``), and what the decision log keeps."""

    result: LineResult
    decision_id: str | None  # None when the line could not be decided (``result.error`` says why)
    body: bytes  # the JSON object
    record: Any  # the line as the client sent it
    started: float  # time.time() when the line was read
    seconds: float  # time taken to read and decide it


class Decider:
    """The decisions of one loaded policy, as JSON. Made once per policy; a reload makes a new one."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.program = policy.program
        self.release_ids = frozenset(r.id for r in policy.releases)
        self._json: Cache[int, tuple[Decision, bytes]] = Cache("service.decision_json")

    def decision_json(self, decision: Decision) -> bytes:
        """``Decision.as_dict`` as JSON members without the braces, made once per decision object."""
        hit = self._json.get(id(decision))
        if hit is not None and hit[0] is decision:
            return hit[1]
        members = orjson.dumps(decision.as_dict())[1:-1]
        # the decision is kept with its JSON, so its id cannot be reused while the entry lives
        self._json.put(id(decision), (decision, members))
        return members

    def answer(self, record: Any, number: int, release: str | None) -> Answer:
        """Read and decide one line (a mapping of its fields); a malformed line is answered with its error."""
        started = time.time()
        t0 = time.perf_counter()
        parsed = parse_at(record, self.program, number)
        return self._answer(parsed, number, release, record, started, t0)

    def _answer(self, parsed: Any, number: int, release: str | None, record: Any, started: float,
                t0: float) -> Answer:
        if isinstance(parsed, LineError):
            result = LineResult(number, None, None, parsed)
            return Answer(result, None, orjson.dumps(result.as_dict()), record, started, time.perf_counter() - t0)
        decision = evaluate(self.policy, parsed, release=release)
        result = LineResult(number, parsed, decision, None)
        decision_id = new_decision_id()
        head = orjson.dumps(result.line_fields())
        body = b"".join((head[:-1], b',"decision_id":"', decision_id.encode(), b'",', self.decision_json(decision),
                         b"}"))
        return Answer(result, decision_id, body, record, started, time.perf_counter() - t0)

    def answer_text(self, text: bytes, number: int, release: str | None) -> Answer:
        """One line of JSON Lines: parsed here, so that a line that is not JSON gets its error in place."""
        started = time.time()
        t0 = time.perf_counter()
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError:
            # read again as `eval` reads it: the same message, and what only the standard parser takes (NaN)
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                return self._answer(json_error(exc, number), number, release, None, started, t0)
            except UnicodeDecodeError:
                return self._answer(LineError("the line is not UTF-8 text", line=number), number, release, None,
                                    started, t0)
        return self._answer(parse_at(record, self.program, number), number, release, record, started, t0)


def jsonl_lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, text) of each non-blank line of a JSON Lines body; blank lines are not claim lines."""
    for number, text in enumerate(body.split(b"\n"), 1):
        if text.strip():
            yield number, text
