"""hypothesis-jsonschema on this project's schemas, and on the Hypothesis this project pins.

Three adjustments, none of which changes which documents can be generated:

* the schemas ``$ref`` each other by relative URI, which hypothesis-jsonschema does not
  fetch, so each schema is inlined into one self-contained document first;
* hypothesis-jsonschema 0.23.1 (the latest release) drives Hypothesis's private ``many``
  helper through ``more()``/``reject()``, which Hypothesis 6.1xx replaced by an iterator, so
  a small object with the old interface is handed to it instead;
* it rebuilds (and re-canonicalises) the strategy for every property value on every draw,
  which costs about a second per policy document here, so those strategies are memoised.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, cast

import hypothesis_jsonschema._from_schema as _hjs
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as _cu
from hypothesis_jsonschema import from_schema


class _Many:
    """The ``many`` interface hypothesis-jsonschema expects: ``more()`` and ``reject()``."""

    def __init__(self, data: Any, min_size: int, max_size: float, average_size: float) -> None:
        self.data = data
        self.min_size = min_size
        self.max_size = max_size
        self.p_continue = _cu._calc_p_continue(average_size - min_size, max_size - min_size)
        self.count = 0
        self.rejections = 0
        self.force_stop = False

    def more(self) -> bool:
        if self.force_stop:
            return False
        if self.min_size == self.max_size:
            should = self.count < self.min_size
        else:
            forced = True if self.count < self.min_size else (False if self.count >= self.max_size else None)
            should = bool(self.data.draw_boolean(self.p_continue, forced=forced))
        if should:
            self.count += 1
        return should

    def reject(self) -> None:
        self.count -= 1
        self.rejections += 1
        if self.rejections > max(3, 2 * self.count):
            if self.count < self.min_size:
                self.data.mark_invalid()
            else:
                self.force_stop = True


class _Utils:
    """Hypothesis's conjecture utils as hypothesis-jsonschema sees them, with the old ``many``."""

    many = _Many

    def __getattr__(self, name: str) -> Any:
        return getattr(_cu, name)


_original_merged = _hjs.merged_as_strategies
_memo: dict[tuple[str, int, int], tuple[Any, st.SearchStrategy[Any]]] = {}


def _merged_as_strategies(schemas: list[Any], custom_formats: Any = None, alphabet: Any = None) -> Any:
    key = (json.dumps(schemas, sort_keys=True), id(custom_formats), id(alphabet))
    if key not in _memo:
        _memo[key] = ((schemas, custom_formats, alphabet),
                      _original_merged(schemas, custom_formats=custom_formats, alphabet=alphabet))
    return _memo[key][1]


def _patch() -> None:
    if not hasattr(_cu.many, "more"):
        cast(Any, _hjs).cu = _Utils()
    _hjs.merged_as_strategies = _merged_as_strategies


def _inline(node: Any, name: str, schemas: dict[str, Any], top: bool = True) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            file, _, pointer = node["$ref"].partition("#")
            target_name = file.removesuffix(".schema.json") if file else name
            target = schemas[target_name]
            for part in pointer.strip("/").split("/"):
                if part:
                    target = target[part]
            rest = {k: _inline(v, name, schemas, False) for k, v in node.items() if k != "$ref"}
            return {**_inline(target, target_name, schemas, False), **rest}
        return {k: _inline(v, name, schemas, False) for k, v in node.items()
                if not (top and k in ("$defs", "$id", "$schema"))
                and not (k in ("title", "description") and isinstance(v, str))}
    if isinstance(node, list):
        return [_inline(v, name, schemas, False) for v in node]
    return node


@cache
def _strategy(folder: str, kind: str) -> st.SearchStrategy[Any]:
    _patch()
    schemas = {p.name.removesuffix(".schema.json"): json.loads(p.read_text(encoding="utf-8"))
               for p in Path(folder).glob("*.schema.json")}
    return from_schema(_inline(schemas[kind], kind, schemas))


def from_bundled_schema(folder: Path, kind: str) -> st.SearchStrategy[Any]:
    """Documents of ``kind`` (program, releases, code...) generated from the schema in ``folder``."""
    return _strategy(str(folder), kind)
