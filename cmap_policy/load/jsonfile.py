"""Read JSON files so that any value can be traced back to its line and column."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json_source_map

from ..errors import Problem


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
            except Exception:  # the map is a nicety: never fail a report over it
                self._map = {}
        ptr = pointer
        while True:
            entry = self._map.get(ptr)
            if entry is not None:
                start = entry.key_start if entry.key_start is not None else entry.value_start
                return start.line + 1, start.column + 1
            if not ptr:
                return None, None
            ptr = ptr.rsplit("/", 1)[0]

    def problem(self, pointer: str, message: str, rule: str, hint: str = "") -> Problem:
        line, col = self.position(pointer)
        return Problem(self.path, pointer, message, rule, hint, line, col)


def pointer_of(parts: Any) -> str:
    out = ""
    for p in parts:
        out += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return out


def read_json(path: Path, shown: str) -> JsonDoc | Problem:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Problem(shown, "", f"cannot read the file: {exc.strerror}", "io")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(shown, "", f"the file is not UTF-8 (byte {exc.start})", "encoding",
                       "save the file as UTF-8")
    if not text.strip():
        return Problem(shown, "", "the file is empty", "json", "a policy file holds one JSON object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Problem(shown, "", f"not valid JSON: {exc.msg}", "json",
                       "check for a missing comma, quote or bracket near this place", exc.lineno, exc.colno)
    return JsonDoc(shown, text, data)
