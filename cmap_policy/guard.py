"""Hostile input: the limits, each defined once, and the readers that keep to them.

Claim files, policy trees and the spreadsheets authors import can come from anyone (a partner's
upload, a pull request that CI validates). The standard library trusts them more than it should:

- ``json.loads`` recurses once per level of nesting, so a value nested a few thousand deep is a
  ``RecursionError``; and it converts integers of any length, so one of more than 4,300 digits is a
  ``ValueError`` from deep inside the parser (CPython's guard against quadratic conversion);
- a lone surrogate (``"\\ud800"``) decodes to a ``str`` that no UTF-8 output can write;
- opening a path follows symbolic links anywhere, blocks forever on a FIFO, and reads ``/dev/zero``
  until memory runs out.

``loads``, ``read_tree_file`` and ``physical_lines`` are the readers every policy file, authors' test
file and claim line goes through, so that each of these is a located, ordinary error instead.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import FileRefusedError, LineError

MAX_JSON_DEPTH = 64  # a policy file nests 6 levels, a claim line 2
MAX_NUMBER_DIGITS = 1000  # digits in one JSON integer; no field holds more than a few
MAX_TREE_FILE_BYTES = 8 << 20  # one policy, FAQ or authors' test file; the largest bundled one is a few hundred KB

# a JSON string token (skipped whole, so that brackets and digits inside it are not counted), or a bracket;
# compiled when first needed: a one-line decision never needs them, and its start-up time counts
_STRING = r'"(?:[^"\\]++|\\.)*+"'


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile({"brackets": _STRING + r"|[\[\]{}]",
                       "surrogate": r"\\u[dD][89a-fA-F]",
                       "digits": "[0-9]{" + str(MAX_NUMBER_DIGITS + 1) + "}",
                       "long number": _STRING + "|-?[0-9]{" + str(MAX_NUMBER_DIGITS + 1) + ",}"}[name])


class JsonLimitError(json.JSONDecodeError):
    """JSON that is well formed but past a limit (nesting, digits); ``lineno`` and ``colno`` say where."""


def _too_deep_at(text: str) -> int | None:
    """The offset where the nesting first goes deeper than MAX_JSON_DEPTH, or None."""
    depth = 0
    for m in _pattern("brackets").finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return m.start()
        elif c in "]}":
            depth -= 1
    return None


class _LongNumber(Exception):
    pass


def _int(digits: str) -> int:
    if len(digits) > MAX_NUMBER_DIGITS + 1:  # +1: the sign
        raise _LongNumber
    return int(digits)


def _long_number_at(text: str) -> int:
    for m in _pattern("long number").finditer(text):
        if not m.group().startswith('"'):
            return m.start()
    return 0


def loads(text: str) -> Any:
    """``json.loads`` within the limits: ``json.JSONDecodeError`` (or its ``JsonLimitError``) otherwise.

    Nesting is measured before parsing (only when the text has enough brackets to go that deep, so a
    claim line costs a count); integers are converted by a function that stops the parser at an over-long
    one (only when the text has that many digits in a row: the plain parser is twice as fast).
    """
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        at = _too_deep_at(text)
        if at is not None:
            raise JsonLimitError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels", text, at)
    try:
        if len(text) <= MAX_NUMBER_DIGITS or _pattern("digits").search(text) is None:
            return json.loads(text)
        return json.loads(text, parse_int=_int)
    except _LongNumber:
        raise JsonLimitError(f"integer too long: more than {MAX_NUMBER_DIGITS:,} digits (the limit)", text,
                             _long_number_at(text)) from None
    except RecursionError:  # a backstop: the depth was measured above
        raise JsonLimitError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels", text, 0) from None


def describe(exc: json.JSONDecodeError) -> str:
    """What is wrong, in words: the limit passed, or why the text is not JSON."""
    return exc.msg if isinstance(exc, JsonLimitError) else f"not valid JSON: {exc.msg}"


def lone_surrogate(data: Any) -> str | None:
    """The JSON pointer of the first string (or key) holding a lone surrogate, or None; never recursive."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        pointer, value = stack.pop()
        if isinstance(value, str):
            if not _encodes(value):
                return pointer
        elif isinstance(value, dict):
            for k, v in value.items():
                here = pointer + "/" + str(k).replace("~", "~0").replace("/", "~1")
                if not _encodes(str(k)):
                    return here
                stack.append((here, v))
        elif isinstance(value, list):
            stack.extend((f"{pointer}/{i}", v) for i, v in enumerate(value))
    return None


def may_hold_surrogates(text: str) -> bool:
    """False when ``text`` (JSON) cannot decode to a lone surrogate: it has no \\uD800-\\uDFFF escape."""
    return _pattern("surrogate").search(text) is not None or not _encodes(text)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- files of a tree ---

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def inside(path: Path, root: Path) -> Path:
    """``path`` with every link resolved, if it stays inside ``root`` (resolved too); ``FileRefusedError`` if not."""
    try:
        base = root.resolve(strict=True)
        real = path.resolve(strict=True)
    except FileNotFoundError:
        if path.is_symlink():
            raise FileRefusedError("a symbolic link to nothing: not read") from None
        raise
    except RuntimeError:  # Python 3.11 reports a loop of links this way
        raise FileRefusedError("a symbolic link in a loop: not read") from None
    if real != base and base not in real.parents:
        raise FileRefusedError("a symbolic link to a file outside the policy folder: not read (a tree is read "
                               "only from inside itself)")
    return real


def read_tree_file(path: Path, root: Path, limit: int = MAX_TREE_FILE_BYTES) -> bytes:
    """The bytes of ``path``, a regular file inside ``root`` of at most ``limit`` bytes.

    Links are resolved first and the result must lie inside ``root``; then ``read_regular`` reads it.
    ``FileRefusedError`` says why a file is not read; ``OSError`` is left to the caller (a missing file,
    no permission).
    """
    return read_regular(inside(path, root), limit)


def read_regular(path: Path, limit: int, what: str = "a policy file") -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes (``what`` names it in the refusal).

    ``path`` must have its links resolved already: a link is not followed (O_NOFOLLOW), so one swapped in
    after the resolution is an error rather than a way out.
    The file is checked before it is opened (so a device is never opened) and again on the open descriptor
    (so a file swapped in between is caught), and at most ``limit + 1`` bytes are read.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise FileRefusedError(f"{_kind(mode)}, not a regular file: not read")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefusedError(f"{_kind(st.st_mode)}, not a regular file: not read")
        if st.st_size > limit:
            raise FileRefusedError(too_large(st.st_size, limit, what))
        chunks = list(_read_upto(fd, limit + 1))
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise FileRefusedError(too_large(len(data), limit, what))
    return data


def _read_upto(fd: int, n: int) -> Iterator[bytes]:
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return
        n -= len(chunk)
        yield chunk


def too_large(size: int, limit: int, what: str = "a policy file") -> str:
    return f"{size:,} bytes, more than the {limit:,} {what} may have: not read"


def tree_files(folder: Path, pattern: str, recursive: bool = False) -> list[Path]:
    """Every entry of ``folder`` matching ``pattern`` that is not a real folder, sorted: files, links,
    FIFOs and devices alike, so that the reader refuses them by name rather than skip them unseen."""
    found = folder.rglob(pattern) if recursive else folder.glob(pattern)
    return sorted(p for p in found if p.is_symlink() or not p.is_dir())


# --- lines of claim files ---
#
# Every claim reader works on bytes, one physical line at a time (a line ends at "\n"; "\r\n" is the same
# ending), and decodes each line on its own: a bad byte is that line's error and the next line is read as
# usual. No line longer than MAX_LINE_BYTES is ever held whole.

MAX_LINE_BYTES = 1_000_000  # one line of JSON Lines or CSV (its ending aside); a claim line is a few hundred
BOM = b"\xef\xbb\xbf"


class ByteSource:
    """A binary or text stream read as bytes, with what sniffing read put back in front.

    A text stream's lines are encoded back to UTF-8 (a lone surrogate with "surrogatepass", so that it
    becomes that line's decoding error rather than an exception here). If a text stream's own decoder
    fails, the source ends there and keeps the error in ``failed`` for the reader to report.
    """

    def __init__(self, stream: IO[bytes] | IO[str]) -> None:
        self._stream = stream
        self._back = b""  # bytes put back, read from _at on (an offset, not slices: the back may be 64 MB)
        self._at = 0
        self.failed: UnicodeDecodeError | None = None

    def _next(self, read: Callable[[int], bytes | str], limit: int) -> bytes:
        if self.failed is not None:
            return b""
        try:
            chunk = read(limit)
        except UnicodeDecodeError as exc:
            self.failed = exc
            return b""
        return chunk.encode("utf-8", "surrogatepass") if isinstance(chunk, str) else chunk

    def _take(self, end: int) -> bytes:
        out = self._back[self._at:end]
        self._at = end
        if self._at >= len(self._back):
            self._back, self._at = b"", 0
        return out

    def readline(self, limit: int) -> bytes:
        if self._back:
            nl = self._back.find(b"\n", self._at, self._at + limit)
            out = self._take(min(self._at + limit, len(self._back)) if nl < 0 else nl + 1)
            if out.endswith(b"\n") or len(out) >= limit or self._back:
                return out
            return out + self.readline(limit - len(out))
        return self._next(self._stream.readline, limit)

    def read(self, limit: int) -> bytes:
        out = self._take(min(self._at + limit, len(self._back))) if self._back else b""
        while len(out) < limit:
            chunk = self._next(self._stream.read, limit - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def unread(self, data: bytes) -> None:
        self._back, self._at = data + self._back[self._at:], 0


def byte_source(stream: IO[bytes] | IO[str] | ByteSource) -> ByteSource:
    """``stream`` as a ByteSource, its byte-order mark (if any) dropped."""
    if isinstance(stream, ByteSource):
        return stream
    src = ByteSource(stream)
    head = src.read(len(BOM))
    src.unread(head.removeprefix(BOM))  # a byte-order mark says UTF-8; it is not part of the first line
    return src


def physical_lines(stream: IO[bytes] | IO[str] | ByteSource) -> Iterator[tuple[int, bytes | None]]:
    """(line number, the line's bytes) for each physical line; None for a line longer than MAX_LINE_BYTES
    (not counting its line ending), which is read past in bounded chunks and never held whole."""
    src = byte_source(stream)
    number = 0
    while True:
        chunk = src.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            if src.failed is not None:  # a text stream whose own decoder failed: it cannot be read further
                raise _StreamDecodeError(number + 1, src.failed)
            return
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = src.readline(MAX_LINE_BYTES)
            yield number, None
        else:
            yield number, chunk


def stream_error(number: int, exc: UnicodeDecodeError) -> LineError:
    """The error of a text stream whose own decoder failed at line ``number``: nothing after it can be read."""
    return LineError(f"the input stream is not UTF-8 text from here on ({exc.reason}): nothing after it could be "
                     "read; pass the file's path or a binary stream to have only the bad lines reported",
                     line=number)


class _StreamDecodeError(Exception):
    def __init__(self, number: int, exc: UnicodeDecodeError) -> None:
        self.error = stream_error(number, exc)


def too_long(number: int) -> LineError:
    return LineError(f"the line is longer than {MAX_LINE_BYTES:,} bytes; a claim line is a few hundred",
                     line=number)


def decode_line(raw: bytes, number: int) -> str | LineError:
    """The text of one line, or the error naming its first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return LineError(f"the line is not UTF-8 text (byte {exc.start + 1} of the line, {exc.reason})",
                         line=number)


def guarded_lines(lines: Iterator[tuple[int, bytes | None]]) -> Iterator[tuple[int, bytes | LineError | None]]:
    """``lines``, ending in the error of a text stream that could not be decoded, if one cannot."""
    try:
        yield from lines
    except _StreamDecodeError as err:
        yield err.error.line or 0, err.error
