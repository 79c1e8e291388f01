"""The checks of the public functions' arguments: a wrong one is named before any work starts.

A program that calls the API with an argument of the wrong kind (``progress=False``, a release given as a
number, a path given as bytes) should hear which argument is wrong and what it takes, as a ``TypeError`` or a
``ValueError``, and not meet an ``AttributeError`` deep inside a batch or a thread. Each public function calls
these first; the messages name the function, the argument and what it takes, so a caller can fix the call
from the message alone. Plain functions of plain values: this module imports nothing of the package, so any
layer may use it.
"""

from __future__ import annotations

import os
from collections.abc import Collection


def expect(function: str, name: str, value: object, types: type | tuple[type, ...], what: str) -> None:
    """Raise ``TypeError`` unless ``value`` is one of ``types`` (a bool is never taken for a number)."""
    wanted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in wanted:
        raise TypeError(f"{function}: {name} must be {what}, not a bool ({value!r})")
    if not isinstance(value, wanted):
        raise TypeError(f"{function}: {name} must be {what}, not {_kind(value)}")


def expect_path(function: str, name: str, value: object, *, optional: bool = False) -> None:
    """A file or folder's path: text or an ``os.PathLike`` (``None`` too when ``optional``)."""
    if value is None and optional:
        return
    expect(function, name, value, (str, os.PathLike), "a path (str or os.PathLike)" + (" or None" if optional else ""))


def expect_text(function: str, name: str, value: object, *, optional: bool = False) -> None:
    """Text (or ``None`` when ``optional``). What the text may say is the callee's to judge: an unknown release
    is an ``UnknownReleaseError``, a code not on the table an empty report."""
    if value is None and optional:
        return
    expect(function, name, value, str, "text" + (" or None" if optional else ""))


def expect_choice(function: str, name: str, value: object, choices: Collection[str], *,
                  optional: bool = False) -> None:
    """One of ``choices`` (or ``None`` when ``optional``): ``TypeError`` for another type, ``ValueError`` for
    other text."""
    if value is None and optional:
        return
    listed = ", ".join(repr(c) for c in choices)
    expect(function, name, value, str, f"one of {listed}" + (" or None" if optional else ""))
    if value not in choices:
        raise ValueError(f"{function}: {name} is {value!r}; it must be one of {listed}"
                         + (" or None" if optional else ""))


def expect_methods(function: str, name: str, value: object, methods: tuple[str, ...], what: str, *,
                   optional: bool = False) -> None:
    """An object with the callable ``methods`` (a stream, a progress bar), or ``None`` when ``optional``."""
    if value is None and optional:
        return
    if not all(callable(getattr(value, m, None)) for m in methods):
        raise TypeError(f"{function}: {name} must be {what} (with {', '.join(m + '()' for m in methods)})"
                        + (" or None" if optional else "") + f", not {_kind(value)}")


def expect_count(function: str, name: str, value: object, *, optional: bool = False) -> None:
    """A whole number of at least 1 (or ``None`` when ``optional``)."""
    if value is None and optional:
        return
    expect(function, name, value, int, "a whole number of at least 1" + (" or None" if optional else ""))
    assert isinstance(value, int)
    if value < 1:
        raise ValueError(f"{function}: {name} is {value}; it must be at least 1")


def _kind(value: object) -> str:
    """How a message names the wrong value: its type, and the value itself when it is short."""
    if value is None:
        return "None"
    shown = repr(value)
    kind = type(value).__name__
    return f"{kind} {shown}" if len(shown) <= 40 and not shown.startswith("<") else f"a value of type {kind}"
