"""The hash chain of the decision log: every record names the SHA-256 of the record before it.

A record's hash is the SHA-256 of its line (its bytes, without the newline). Each record carries ``seq``
(one more than the record before, across files and restarts) and ``prev`` (the hash of the record before;
64 zeros for the first record of a new log). Every file starts with a ``{"log": "start"}`` record, which
names the file holding the record before it (after a rotation, FILE.1) or says it resumed after a restart,
and, when a power cut had left a torn last line, how many bytes were dropped and their hash.

A record removed, inserted, changed or moved breaks the chain at that place, and ``verify`` says which of
the four it was. What a chain cannot show by itself is a cut at the end (the last records removed whole,
or the last one rewritten): a power cut leaves that too. ``verify(head=...)`` closes that gap when the
last hash is known from elsewhere (the service reports it in /health and in its own log when it stops).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import InputError

GENESIS = "0" * 64
LINK_BYTES = len(b'{"seq":,"prev":"",') + 64 + 20  # what ``link`` adds to a record at most (seq of 20 digits)
MAX_RECORD_BYTES = 16 << 20  # a record holds one claim line of at most a few MB; a longer line is not a record
_TAIL_BYTES = 32 << 20  # how far back from the end a restart looks for the last whole record


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


@dataclass
class Chain:
    """The writer's end of the chain: the hash of the last record and the ``seq`` of the next."""

    last_hash: str = GENESIS
    seq: int = 1
    head: tuple[int, str] = (0, GENESIS)  # (seq, hash) of the last record, read whole by other threads

    def link(self, body: bytes) -> bytes:
        """A record (a JSON object's bytes, with no newline) with ``seq`` and ``prev`` put first, as one line
        (newline included); the chain moves on. Spliced, not parsed again: the writer calls it per record."""
        prefix = b'{"seq":%d,"prev":"%s"' % (self.seq, self.last_hash.encode("ascii"))
        line = prefix + (b"," + body[1:] if body.strip() != b"{}" else b"}")
        self.last_hash = line_hash(line)
        self.head = (self.seq, self.last_hash)
        self.seq += 1
        return line + b"\n"


@dataclass(frozen=True, slots=True)
class Resumed:
    """Where a restarted writer picks the chain up, and the torn tail it cut off (if any)."""

    chain: Chain
    previous: str | None  # the file that held the record before the next one, or None for a new log
    dropped: dict[str, Any] | None = None


def _last_whole_line(path: Path) -> tuple[bytes | None, int, bytes]:
    """(the last whole line or None, the size of the file up to its end, the torn tail after it)."""
    with open(path, "rb") as stream:
        size = stream.seek(0, os.SEEK_END)
        start = max(0, size - _TAIL_BYTES)
        stream.seek(start)
        tail = stream.read()
    end = tail.rfind(b"\n")
    if end < 0:
        return None, start, tail
    torn = tail[end + 1:]
    begin = tail.rfind(b"\n", 0, end) + 1
    if begin == 0 and start > 0:
        raise InputError(f"{path}: the last record is longer than {_TAIL_BYTES:,} bytes: not a decision log")
    return tail[begin:end], start + end + 1, torn


def resume(path: Path, rotated: Path) -> Resumed:
    """The chain at the end of the log ``path`` (or of ``rotated``, FILE.1, when ``path`` is new or empty).

    A torn last line (a power cut mid-write) is cut off ``path``, and reported, so that the next record
    follows a whole one; the start record written next says what was dropped.
    """
    for candidate in (path, rotated):
        if not candidate.is_file() or candidate.stat().st_size == 0:
            continue
        line, whole, torn = _last_whole_line(candidate)
        dropped = None
        if torn and candidate == path:
            os.truncate(path, whole)
            dropped = {"bytes": len(torn), "sha256": line_hash(torn)}
        if line is None:
            continue
        try:
            seq = json.loads(line).get("seq")
        except (ValueError, AttributeError):
            seq = None
        next_seq = seq + 1 if isinstance(seq, int) and not isinstance(seq, bool) else 1
        return Resumed(Chain(line_hash(line), next_seq, (next_seq - 1, line_hash(line))), candidate.name, dropped)
    return Resumed(Chain(), None)


# --- verification ---

@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a log, as the verifier needs it."""

    file: str
    line: int
    hash: str
    prev: str | None = None
    seq: int | None = None
    start: bool = False
    previous: str | None = None  # a start record's file before it
    torn: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # removed, inserted, changed, reordered, torn
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.message}"


@dataclass
class Report:
    records: int = 0
    files: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    head: Entry | None = None

    @property
    def tampered(self) -> bool:
        return any(f.kind != "torn" for f in self.findings)

    @property
    def torn(self) -> bool:
        return any(f.kind == "torn" for f in self.findings)


def lines(stream: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """(a line with its newline, if it has one; whether it was longer than MAX_RECORD_BYTES and skipped)."""
    while True:
        raw = stream.readline(MAX_RECORD_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(MAX_RECORD_BYTES)
            yield b"", True
            continue
        yield raw, False


def _entry(name: str, number: int, raw: bytes) -> Entry:
    body = raw[:-1] if raw.endswith(b"\n") else raw
    digest = line_hash(body)
    if not raw.endswith(b"\n"):
        return Entry(name, number, digest, torn=True)
    try:
        record = json.loads(body)
    except (ValueError, RecursionError):
        return Entry(name, number, digest, error="the line is not a JSON record")
    if not isinstance(record, dict) or not isinstance(record.get("prev"), str):
        return Entry(name, number, digest, error="the line is not a record of the chain (no 'prev')")
    seq = record.get("seq")
    start = record.get("log") == "start"
    previous = record.get("previous")
    return Entry(name, number, digest, record["prev"], seq if isinstance(seq, int) else None, start,
                 previous if isinstance(previous, str) else None)


def read_entries(paths: Iterable[Path]) -> list[Entry]:
    entries: list[Entry] = []
    for path in paths:
        try:
            stream = open(path, "rb")  # noqa: SIM115 (closed below)
        except OSError as err:
            raise InputError(f"cannot read {path}: {err.strerror}") from None
        with stream:
            for number, (raw, too_long) in enumerate(lines(stream), 1):
                if too_long:
                    entries.append(Entry(str(path), number, "", error=f"a line longer than {MAX_RECORD_BYTES:,} "
                                         "bytes: not a record"))
                else:
                    entries.append(_entry(str(path), number, raw))
    return entries


def _where(e: Entry) -> str:
    return f"{e.file}:{e.line}"


def _classify(entries: list[Entry], i: int, p: int, positions: dict[str, list[int]], seq_ok: bool,
              head: str | None) -> Finding:
    """Why the chain breaks between the whole records ``p`` and ``i`` (``entries[i].prev`` is not ``p``'s hash)."""
    e, before = entries[i], entries[p]
    copies = [j for j in positions.get(e.hash, ()) if j != i]
    if copies:
        return Finding("inserted", e.file, e.line, f"a copy of the record at {_where(entries[copies[0]])}")
    after = next((j for j in range(i + 1, len(entries)) if not entries[j].torn and entries[j].error is None), None)
    if e.prev == before.prev:  # two records claim the same predecessor: the one nothing follows was inserted
        if (entries[after].prev if after is not None else head) == e.hash:
            return Finding("inserted", before.file, before.line, f"not part of the chain: {_where(e)} follows the "
                           "record before this one directly")
        return Finding("inserted", e.file, e.line, f"not part of the chain: {_where(before)} already follows the "
                       "record this one names")
    moved_from = next(iter(positions.get(e.prev or "", ())), None)
    if moved_from is not None and moved_from != p:
        return Finding("reordered", e.file, e.line, f"the record follows {_where(entries[moved_from])} in the "
                       f"chain, not {_where(before)}")
    if seq_ok and e.seq is not None and before.seq is not None and e.seq <= before.seq:
        return Finding("reordered", e.file, e.line, f"seq {e.seq} comes after seq {before.seq} "
                       f"({_where(before)}): the record was written before the one it follows here")
    if after is not None and entries[after].prev == before.hash:
        return Finding("inserted", e.file, e.line, f"not part of the chain: {_where(entries[after])} follows "
                       f"{_where(before)} directly")
    if seq_ok and e.seq is not None and before.seq is not None and e.seq > before.seq + 1:
        gone = e.seq - before.seq - 1
        return Finding("removed", e.file, e.line, f"{gone} record(s) (seq {before.seq + 1} to {e.seq - 1}) removed "
                       f"between {_where(before)} and this one")
    if after is not None and entries[after].prev != e.hash:  # both of its links broken: this record was changed
        return Finding("changed", e.file, e.line, f"neither the link to {_where(before)} nor the one from "
                       f"{_where(entries[after])} holds: the record was changed after it was written")
    return Finding("changed", before.file, before.line, f"the record's hash is not the one {_where(e)} names: it "
                   "was changed after it was written")


def _begin(e: Entry) -> tuple[Finding | None, str | None]:
    """The first whole record of the series: a finding if it cannot be the beginning, and a note."""
    if not e.start:
        return Finding("removed", e.file, e.line, "the series does not begin with a log's start record: records "
                       "before this one were removed, or the file holding them was not given"), None
    if e.previous is None:
        if e.prev != "0" * 64:
            return Finding("changed", e.file, e.line, "a new log's start record links to a record before it"), None
        return None, None
    return None, f"{e.file} starts from {e.previous} (not given): its last hash is {e.prev}"


def verify(paths: list[Path], head: str | None = None) -> Report:
    """Check the chain over ``paths`` (rotated files oldest first): every finding, in order, and the head."""
    entries = read_entries(paths)
    report = Report(records=sum(1 for e in entries if not e.torn and e.error is None), files=len(paths))
    positions: dict[str, list[int]] = {}  # a record's hash -> where it is (twice or more: a copy)
    for i, e in enumerate(entries):
        if not e.torn and e.error is None:
            positions.setdefault(e.hash, []).append(i)
    p: int | None = None  # the last whole record
    seq_ok = True  # whether record p's seq follows the record before it
    for i, e in enumerate(entries):
        if e.torn:
            last = i == len(entries) - 1 or entries[i + 1].file != e.file
            report.findings.append(Finding("torn", e.file, e.line, "the last line is incomplete, as a power cut or a "
                                           "crash mid-write leaves it: not a whole record (not tampering)"
                                           if last else "an incomplete line"))
            continue
        if e.error is not None:
            report.findings.append(Finding("changed", e.file, e.line, e.error))
            continue
        if p is None:
            finding, note = _begin(e)
            if finding is not None:
                report.findings.append(finding)
            if note is not None:
                report.notes.append(note)
        elif e.prev != entries[p].hash:
            finding = _classify(entries, i, p, positions, seq_ok, head)
            if not any((f.file, f.line, f.kind) == (finding.file, finding.line, finding.kind) for f in report.findings):
                report.findings.append(finding)  # a record changed breaks two links: it is named once
        elif i > 0 and entries[i - 1].file != e.file and not e.start:
            report.findings.append(Finding("removed", e.file, e.line, "the file does not begin with a start record"))
        seq_ok = p is None or e.seq is None or entries[p].seq is None or e.seq == entries[p].seq + 1  # type: ignore[operator]
        p = i
    report.head = entries[p] if p is not None else None
    if head is not None and (report.head is None or report.head.hash != head):
        at = report.head or (entries[-1] if entries else Entry(str(paths[-1]) if paths else "-", 0, ""))
        report.findings.append(Finding("changed", at.file, at.line, f"the last record's hash is not the head given "
                                       f"({head[:16]}…): records after it were removed, or it was changed"))
    return report
