"""A claim line in, the JSON ``cmap-policy eval`` prints for it out, plus a ``decision_id``.

A line is read and decided by ``results.decide_record``, as every other road decides one, and there is one
definition of a decision's JSON: ``results.LineResult.as_dict``. The service sends the same object,
built in two parts so that a busy service does not rebuild what it has already built: the line's own
fields (``LineResult.line_fields``), and the decision's (``Decision.as_dict``), serialised once per
decision. The interpreter keeps one ``Decision`` object per slot (release, code, period, modifiers, ...),
so a handful of decisions serve most traffic, and each one's JSON is kept here beside it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

from ..caches import Cache
from ..guard import MAX_JSON_DEPTH, describe, loads
from ..model import Decision, Policy
from ..results import LineResult, decide_record

_KEEP = 100_000  # decisions whose JSON is kept; the interpreter's own cache holds 200,000 slots

# A decision id: this process's random prefix and a counter, in hexadecimal. Unique across restarts (the prefix
# is 64 random bits) and cheap on the request path, where a uuid4 per decision would cost more than the decision.
PREFIX = secrets.token_hex(8)


class _Counter:
    """The next decision number; a batch takes a run of them at once."""

    def __init__(self) -> None:
        self._next = 1
        self._lock = threading.Lock()

    def take(self, n: int) -> int:
        with self._lock:
            first = self._next
            self._next += n
            return first


_NUMBERS = _Counter()


def new_decision_id() -> str:
    return f"{PREFIX}-{_NUMBERS.take(1):x}"


def reserve_decision_numbers(n: int) -> int:
    """The first of ``n`` decision numbers that no other decision of this process gets (ids: ``PREFIX-hex``)."""
    return _NUMBERS.take(n)


def read_json(data: bytes) -> Any:
    """A JSON document, read by the rules of ``guard.loads`` (``ValueError`` naming what is wrong, where).

    orjson reads what it can, which is most bodies and twice as fast; it refuses what the guard also
    refuses (integers past 64 bits, which include every one over the guard's digits) but also some of what the
    guard takes (NaN, numbers past 64 bits), and it nests deeper than the guard allows. So a body with
    more brackets than the guard's depth, or one orjson refuses, is read by ``guard.loads`` itself.
    """
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the body is not UTF-8 text (byte {exc.start + 1}, {exc.reason})") from None
    try:
        return loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{describe(exc)} (line {exc.lineno}, column {exc.colno})") from None


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
        result = decide_record(record, number, self.policy, release)
        if result.decision is None:
            return Answer(result, None, orjson.dumps(result.as_dict()), record, started, time.perf_counter() - t0)
        decision_id = new_decision_id()
        head = orjson.dumps(result.line_fields())
        body = b"".join((head[:-1], b',"decision_id":"', decision_id.encode(), b'",',
                         self.decision_json(result.decision), b"}"))
        return Answer(result, decision_id, body, record, started, time.perf_counter() - t0)
