"""Every cache the package keeps between calls, in one place: one bound each, one rule, one way to clear them.

Why one place: the caches sit in different layers (field names in ``lines``, decisions in ``interpreter``,
the diff's line fronts, Spark's engines, the service's JSON of a decision), and each used to pick its own limit
and its own way of making room. A test, a benchmark or a long-running process that wants a fresh start had to
know them all. Here each has a name and a bound in ``BOUNDS``, and ``clear_all`` empties every live one.

The rule when a cache is full: it starts afresh (it is emptied, then takes the new entry). Dropping only the
oldest entry looks kinder but costs more: a dict finds its oldest live entry by walking past every one deleted
before it, which makes a busy, full cache quadratic; and a least-recently-used order would put bookkeeping on
every hit, which is the path that must stay fast. What is cached is always cheap to make again.

A cache holds values only (decisions, field names, built engines): nothing read from one is ever run.
"""

from __future__ import annotations

import weakref
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

# name -> the most entries the cache holds
BOUNDS: dict[str, int] = {
    # a key of a claim record, as given -> its field name: a stream repeats a dozen keys millions of times,
    # and hostile input may bring a new key on every line
    "lines.field_names": 4_096,
    # the interpreter's memo of each policy in use (a service holds one or two; a test suite loads many)
    "interpreter.policies": 8,
    # a policy's decisions, one per slot (``timeline.Slots``)
    "interpreter.decisions": 200_000,
    # the diff's classes of line fronts, per pair of programs
    "diff.fronts": 64,
    # a Spark worker's batch engines, by policy tree, hash and release
    "spark.engines": 4,
    # the service's JSON of a decision, per decision object (fewer than the interpreter's decisions)
    "service.decision_json": 100_000,
    # the decision log's summary of a decision, per decision object (likewise)
    "log.decision_summaries": 100_000,
}

# every live cache, by its id (a cache is a dict, so it cannot be a member of a set itself)
_LIVE: weakref.WeakValueDictionary[int, Cache[object, object]] = weakref.WeakValueDictionary()


class Cache(dict[K, V]):
    """A dict with a bound (``BOUNDS[name]``) that ``put`` keeps, and that ``clear_all`` reaches.

    Reading is the plain dict's (``get``, ``in``, ``[]``): a hit costs what a dict look-up costs.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in BOUNDS:
            raise KeyError(f"no cache named {name!r}: name it, with its bound, in caches.BOUNDS")
        self.name = name
        self.bound = BOUNDS[name]
        _LIVE[id(self)] = self  # type: ignore[assignment]

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` under ``key`` (starting afresh first if the cache is full); return ``value``."""
        if len(self) >= self.bound and key not in self:
            self.clear()
        self[key] = value
        return value


def clear_all() -> None:
    """Empty every live cache (a fresh start for a test or a benchmark; nothing else depends on one)."""
    for cache in list(_LIVE.values()):
        cache.clear()


def sizes() -> dict[str, int]:
    """Entries held now, by cache name (caches of one name, one per policy say, added up)."""
    out = dict.fromkeys(BOUNDS, 0)
    for cache in list(_LIVE.values()):
        out[cache.name] += len(cache)
    return out
