"""Read JSON files so that any value can be traced back to its line and column.

Every file is read through ``guard``: only a regular file inside the tree, within the size limit, and
parsed within the nesting and number limits, so that a hostile file is a located problem, never a
hang, a traceback or a read of something outside the tree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json_source_map

from .. import guard
from ..errors import FileRefusedError, Problem


@dataclass
class JsonDoc:
    path: str  # as shown to the user
    text: str
    data: Any
    _map: dict[str, Any] | None = field(default=None, repr=False)

    def position(self, pointer: str) -> tuple[int | None, int | None]:
        """1-based line and column of the value at ``pointer`` (or of its nearest parent)."""
        if self._map is None:
            try:
                self._map = json_source_map.calculate(self.text)
            except Exception:  # the map is a nicety: never fail a report over it (the file still has a line 1)
                self._map = {}
        ptr = pointer
        while True:
            entry = self._map.get(ptr)
            if entry is not None:
                start = entry.key_start if entry.key_start is not None else entry.value_start
                return start.line + 1, start.column + 1
            if not ptr:
                return 1, 1
            ptr = ptr.rsplit("/", 1)[0]

    def problem(self, pointer: str, message: str, rule: str, hint: str = "") -> Problem:
        line, col = self.position(pointer)
        return Problem(self.path, pointer, message, rule, hint, line, col)


def pointer_of(parts: Any) -> str:
    out = ""
    for p in parts:
        out += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return out


def _line_col(raw: bytes, at: int) -> tuple[int, int]:
    """1-based line and column of byte ``at`` (the column counts bytes: the line may not decode)."""
    line_start = raw.rfind(b"\n", 0, at) + 1
    return raw.count(b"\n", 0, at) + 1, at - line_start + 1


def read_json(path: Path, shown: str, root: Path) -> JsonDoc | Problem:
    """The JSON document at ``path`` (a file of the tree at ``root``), or the one problem that stops it."""
    try:
        raw = guard.read_tree_file(path, root)
    except FileRefusedError as exc:
        return Problem(shown, "", str(exc), "io", "a policy tree holds regular JSON files, inside the tree")
    except FileNotFoundError:
        return Problem(shown, "", "the file is missing", "io")
    except OSError as exc:
        return Problem(shown, "", f"cannot read the file: {exc.strerror}", "io")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        return Problem(shown, "", f"the file is not UTF-8 (byte {exc.start + 1})", "encoding",
                       "save the file as UTF-8", line, col)
    if not text.strip():
        return Problem(shown, "", "the file is empty", "json", "a policy file holds one JSON object", 1, 1)
    try:
        data = guard.loads(text)
    except json.JSONDecodeError as exc:
        hint = ("a policy file has no reason to nest this deep or hold such a number"
                if isinstance(exc, guard.JsonLimitError) else
                "check for a missing comma, quote or bracket near this place")
        return Problem(shown, "", guard.describe(exc), "json", hint, exc.lineno, exc.colno)
    doc = JsonDoc(shown, text, data)
    if guard.may_hold_surrogates(text):
        pointer = guard.lone_surrogate(data)
        if pointer is not None:
            return doc.problem(pointer, "a lone surrogate escape (such as \\ud800) is not a character", "encoding",
                               "write the character itself, or both halves of its surrogate pair")
    return doc
