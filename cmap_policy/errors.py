"""Problems as values, and every error ``cmap_policy`` raises, under one root.

Like jsonschema's ``ValidationError``, a ``Problem`` carries a path (file, line,
column and JSON pointer), a message and the rule that failed, so that tools
can sort, filter and render problems rather than parse strings.

Every exception the package raises on purpose is a ``CmapPolicyError``, so a caller
can catch them all in one place; each subsystem has its own subclass, all of them
here so the whole family reads at a glance::

    CmapPolicyError
    ├── PolicyError            a policy tree that does not load (``problems``)
    │   └── SpecFileError      an authors' test file that does not load
    ├── UnknownReleaseError    a release id the policy does not have (also a KeyError)
    ├── LineError              one malformed claim line (also a ValueError)
    ├── InputError             input that cannot be read as claim lines at all
    ├── FileRefusedError       a file of a tree that is not read: outside the tree, not a regular file, too large
    ├── BundleError            a signed policy bundle that is not used: unreadable, refused, or not verified
    ├── TableError             a spreadsheet that cannot be imported or exported
    ├── DiffError              a side of a diff that cannot be read
    ├── EditError              an edit command that cannot be applied
    └── FmtError               a tree the formatter cannot read
"""

from __future__ import annotations

from collections.abc import Sequence
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


class CmapPolicyError(Exception):
    """The root of every error the package raises on purpose."""


class PolicyError(CmapPolicyError):
    """The policy tree could not be loaded; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "invalid policy"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)


class SpecFileError(PolicyError):
    """A test file could not be read or makes no sense against the policy; ``problems`` locates each."""


class UnknownReleaseError(CmapPolicyError, KeyError):
    """A release id the policy does not have; the message lists the known ones."""

    def __init__(self, release: str, known: tuple[str, ...]) -> None:
        self.release = release
        self.known = known
        self.message = f"unknown release {release!r} (known: {', '.join(known)})"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


def printable(text: str) -> str:
    """``text`` with any lone surrogate (which no UTF-8 output can hold) written as a backslash escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class LineError(CmapPolicyError, ValueError):
    """One claim line is malformed. ``field`` names the field, ``line`` the input line (1-based).

    The message and the field name come from the input (a field name is whatever key the line had), so a
    lone surrogate in them is escaped here: writing the error must never fail.
    """

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None,
                 cause: LineError | None = None) -> None:
        self.message = printable(message)
        self.field = None if field is None else printable(field)
        self.line = line
        # the error of the file's header (a CSV header, a Parquet schema) that this line fails by, when it does:
        # every line of the file has it, so the command line reports the header's error once, not each line's
        self.cause = cause
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return (", ".join(where) + ": " if where else "") + self.message

    def at(self, line: int) -> LineError:
        return LineError(self.message, field=self.field, line=line, cause=self.cause)

    def caused_by(self, header: LineError) -> LineError:
        """This error, as one that ``header``'s error causes."""
        return LineError(self.message, field=self.field, line=self.line, cause=header)

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "field": self.field, "error": self.message}


class InputError(CmapPolicyError):
    """The input cannot be read as claim lines at all: an unknown format, an unreadable file."""


class FileRefusedError(CmapPolicyError):
    """A file of a policy tree (or a cache) that is not read: it leads outside the tree, is not a regular file
    (a FIFO, a device, a socket), or is larger than the limit. The message says which, never what it holds."""


class TableError(CmapPolicyError):
    """The table or the request cannot be used at all (not a row problem); the message says what to do."""


class DiffError(CmapPolicyError):
    """BASE or HEAD could not be read; the message says which and what to do."""


class EditError(CmapPolicyError):
    """The edit was refused; nothing was written. ``problems`` holds what validation found, if it ran."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        self.message = message
        self.problems = list(problems)
        super().__init__(message)

    def __str__(self) -> str:
        return "\n".join([self.message, *(str(p) for p in self.problems)])


class FmtError(CmapPolicyError):
    """A file could not be formatted; the message names the file and what to do."""


class BundleError(CmapPolicyError):
    """A policy bundle that is not used: it cannot be read, a member is refused (a link, a path outside the
    bundle, too large), the signature does not verify, or a file is missing, extra or altered. ``member``
    names the file concerned when there is one; nothing of an unverified bundle is ever parsed as policy."""

    def __init__(self, message: str, member: str | None = None) -> None:
        self.message = message
        self.member = member
        super().__init__(f"{member}: {message}" if member else message)
