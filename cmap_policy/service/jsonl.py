"""JSON Lines from bytes in pieces cut anywhere, in batches: the service's reader of a request body.

A stand-in with the interface of the bulk columnar reader ``engines.files.jsonl_batches``: each line goes
through ``lines.read_jsonl`` (``guard.physical_lines``, ``lines.jsonl_line``: the hostile-input guard and
the very reading ``cmap-policy eval`` does), so the lines, their numbers and their errors are the
interpreter's; the checked lines come as ``checks.LINE_COLUMNS`` (``Batch.lines``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from ..engines.files import BATCH_ROWS, Batch, lines_table
from ..errors import LineError
from ..lines import read_jsonl
from ..model import ClaimLine, Program


class _Pieces(io.RawIOBase):
    """Bytes in pieces as a binary stream (for ``io.BufferedReader``), a piece held at a time."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._piece = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._piece:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._piece = memoryview(nxt)
        n = min(len(buffer), len(self._piece))
        buffer[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        return n


def jsonl_batches(chunks: Iterable[bytes], program: Program, *, first_line: int = 1,
                  batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """Batches of checked lines (``Batch.lines``) and the errors of the others, numbered from ``first_line``."""
    good: list[tuple[int, ClaimLine]] = []
    errors: list[LineError] = []
    offset = first_line - 1
    for number, item in read_jsonl(io.BufferedReader(_Pieces(chunks), 1 << 20), program):
        if isinstance(item, LineError):
            errors.append(item.at(number + offset) if offset or item.line is None else item)
        else:
            good.append((number + offset, item))
        if len(good) + len(errors) >= batch_rows:
            yield Batch(lines=lines_table(good, None), errors=list(errors))  # type: ignore[arg-type]
            good.clear()
            errors.clear()
    if good or errors:
        yield Batch(lines=lines_table(good, None), errors=errors)  # type: ignore[arg-type]
