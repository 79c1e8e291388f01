"""Problems as values: every error names a place, says what is wrong and how to fix it.

Like jsonschema's ``ValidationError``, a ``Problem`` carries a path (file, line,
column and JSON pointer), a message and the rule that failed, so that tools
can sort, filter and render problems rather than parse strings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    pointer: str
    message: str
    rule: str
    hint: str = ""
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.col or 1}"
        text = f"{where}: {self.pointer or '/'}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "pointer": self.pointer,
            "message": self.message,
            "rule": self.rule,
            "hint": self.hint,
        }


class PolicyError(Exception):
    """The policy tree could not be loaded; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "invalid policy"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


class LineError(ValueError):
    """One claim line is malformed. ``field`` names the field, ``line`` the input line (1-based)."""

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.field = field
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return (", ".join(where) + ": " if where else "") + self.message

    def at(self, line: int) -> LineError:
        return LineError(self.message, field=self.field, line=line)

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "field": self.field, "error": self.message}
