"""The decision log and the access log: JSON Lines written by a thread, off the request path.

A handler puts each decision's record on a queue before it answers (so an answered decision is never
missing from the log) and goes on; a writer thread turns records into JSON, writes them in batches and
flushes whenever the queue runs dry. ``close`` drains the queue, flushes and syncs the file: uvicorn calls
it (through the app's lifespan) after the in-flight requests of a SIGTERM have finished.

The decision log rotates by size, like logrotate's ``size`` and Python's ``RotatingFileHandler``: when the
next record would take the file past ``max_bytes``, FILE becomes FILE.1 (FILE.1 becomes FILE.2, ...) and
a new FILE starts; ``backups`` old files are kept. ``--log-mask FIELD`` drops a field of the input line
from every record (the record lists what was dropped), for fields an operator must not store.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from ..caches import Cache
from ..errors import InputError
from ..lines import canonical_field
from ..model import Decision
from . import chain
from .decisions import Answer

_STOP = object()
_BATCH = 4096  # records written between two looks at the queue
FSYNC_MODES = ("never", "interval", "always")
DEFAULT_FSYNC_INTERVAL_MS = 100  # `interval`: at most this long between a record's write and its fsync

Done = Callable[[str | None], None]  # told, from the writer thread, when records are durable (or the error)


class _Waiter:
    __slots__ = ("done",)

    def __init__(self, done: Done) -> None:
        self.done = done


def iso_time(seconds: float) -> str:
    """A UTC timestamp with milliseconds, as the records carry it."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLinesWriter:
    """A thread that renders queued items to JSON Lines in a file (rotated by size) or a stream.

    ``fsync`` says when the file is synced to the disk: ``never`` (at close only; the OS writes it back in
    its own time), ``interval`` (a group commit at most ``interval`` seconds after a write) or ``always``
    (after every group of records written, before any waiter of that group is told). ``start`` renders the
    first record of each file the writer opens, given the name of the file before it (after a rotation) or
    None (when the writer opens its file at start-up). ``link`` turns each rendered record into the line
    written, once the file it goes to is chosen (after any rotation): the decision log's hash chain.
    """

    def __init__(self, render: Callable[[Any], bytes], *, path: Path | None = None, stream: IO[bytes] | None = None,
                 max_bytes: int = 0, backups: int = 5, name: str = "jsonl-writer", fsync: str = "never",
                 interval: float = DEFAULT_FSYNC_INTERVAL_MS / 1000,
                 start: Callable[[str | None], bytes] | None = None,
                 link: Callable[[bytes], bytes] | None = None) -> None:
        if (path is None) == (stream is None):
            raise ValueError("give a path or a stream")
        if fsync not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_MODES)}")
        self._render = render
        self.path = path
        self.max_bytes = max_bytes
        self.backups = max(1, backups)
        self.fsync = fsync
        self.interval = interval
        self._start = start
        self._link = link
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.written = 0  # records written (read by the metrics)
        self.rotations = 0
        self.syncs = 0
        self.error: str | None = None  # the last write error, reported by /health
        self.failures = 0  # write and sync errors so far: a waiter is told of one in its own group only
        self._own = stream is None
        self._file: IO[bytes] = stream if stream is not None else self._open(None)
        self._size = self._file.tell() if self._own else 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _open(self, previous: str | None) -> IO[bytes]:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(self.path, "ab")  # noqa: SIM115 (kept open; closed by close or _rotate)
        if self._start is not None:
            stream.write(self._start(previous))
            stream.flush()
        if self.fsync != "never":  # the new file's name and first record survive a power cut
            os.fsync(stream.fileno())
            _sync_folder(self.path.parent)
        return stream

    def put(self, item: Any) -> None:
        """Queue one item; it is written after every item queued before it."""
        self._queue.put(item)

    def put_many(self, items: list[Any], done: Done | None = None) -> None:
        """Queue many items at once (a chunk of a batch), in order; ``done`` is told once they are durable
        as the fsync mode makes them (written to the OS for never and interval, synced for always)."""
        self._queue.put(items)
        if done is not None:
            self._queue.put(_Waiter(done))

    def backlog(self) -> int:
        return self._queue.qsize()

    def _next(self, dirty: bool, synced_at: float) -> Any:
        """The next queued item; with unsynced data in interval mode, a wait no longer than the interval."""
        if self.fsync == "interval" and dirty:
            try:
                return self._queue.get(timeout=max(0.0, synced_at + self.interval - time.monotonic()))
            except queue.Empty:
                return None
        return self._queue.get()

    def _run(self) -> None:
        stop = False
        dirty = False
        synced_at = time.monotonic()
        while not stop:
            first = self._next(dirty, synced_at)
            items = [] if first is None else [first]
            try:
                while items and len(items) < _BATCH:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            waiters: list[_Waiter] = []
            failures = self.failures
            for item in items:
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Waiter):
                    waiters.append(item)
                elif isinstance(item, list):
                    for one in item:
                        self._write(self._render(one))
                else:
                    self._write(self._render(item))
            dirty = dirty or bool(items)
            try:
                self._file.flush()
                if self._own and dirty and (self.fsync == "always" or (
                        self.fsync == "interval" and time.monotonic() - synced_at >= self.interval)):
                    os.fsync(self._file.fileno())
                    self.syncs += 1
                    dirty = False
                    synced_at = time.monotonic()
            except OSError as err:
                self._failed(err)
            for waiter in waiters:
                waiter.done(self.error if self.failures != failures else None)

    def _failed(self, err: OSError) -> None:
        self.error = str(err)
        self.failures += 1

    def _write(self, data: bytes) -> None:
        try:
            size = len(data) + (chain.LINK_BYTES if self._link is not None else 0)
            if self._own and self.max_bytes and self._size and self._size + size > self.max_bytes:
                self._rotate()
            if self._link is not None:
                data = self._link(data)
            self._file.write(data)
            self._size += len(data)
            self.written += 1
        except OSError as err:
            self._failed(err)

    def _rotate(self) -> None:
        assert self.path is not None
        if self.fsync != "never":
            self._file.flush()
            os.fsync(self._file.fileno())
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        rotated = self.path.with_name(f"{self.path.name}.1")
        os.replace(self.path, rotated)
        self._file = self._open(rotated.name)
        self._size = self._file.tell()
        self.rotations += 1

    def close(self) -> None:
        """Write everything queued, flush, sync and close (the stream given is flushed, not closed)."""
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        self._thread.join()
        try:
            self._file.flush()
            if self._own:
                os.fsync(self._file.fileno())
                self._file.close()
        except OSError as err:
            self.error = str(err)


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so that a file created or renamed in it is still there after a power cut."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the file's own fsync still holds
        pass
    finally:
        os.close(fd)


class DecisionLog:
    """One JSON Lines record per decision: what was asked, what was decided, against which policy.

    The records form a hash chain (``chain``): the writer thread links each record to the one before as it
    renders it, so records queued from many requests, one at a time or a batch at once, are chained in the
    order they are written.
    """

    def __init__(self, path: Path, *, mask: Collection[str] = (), max_bytes: int = 100 * 1024 * 1024,
                 backups: int = 5, fsync: str = "never",
                 fsync_interval: float = DEFAULT_FSYNC_INTERVAL_MS / 1000) -> None:
        self.mask = frozenset(mask)
        self.resumed = chain.resume(path, path.with_name(f"{path.name}.1"))
        self.chain = self.resumed.chain
        self.writer = JsonLinesWriter(self._render, path=path, max_bytes=max_bytes, backups=backups,
                                      name="decision-log", fsync=fsync, interval=fsync_interval, start=self._start,
                                      link=self.chain.link)
        # made once per decision and once per request's start, not once per record: a batch's lines share a
        # few decisions and one start time (read and written by the writer thread only)
        self._summaries: Cache[int, tuple[Decision, dict[str, Any]]] = Cache("log.decision_summaries")
        self._time: tuple[float, str] = (-1.0, "")

    def head(self) -> dict[str, Any]:
        """The last record written: its ``seq`` and hash (for ``cmap-policy log verify --head``)."""
        seq, last_hash = self.chain.head
        return {"seq": seq, "hash": last_hash}

    def _start(self, previous: str | None) -> bytes:
        record: dict[str, Any] = {"log": "start", "time": iso_time(time.time()),
                                  "previous": previous if previous is not None else self.resumed.previous}
        if previous is None and self.resumed.dropped is not None:
            record["dropped_torn_tail"] = self.resumed.dropped
        return self.chain.link(orjson.dumps(record))

    def record(self, answer: Answer, source: str, key_id: str | None = None) -> None:
        """Queue the record of a decided line (an undecided line is not a decision and is not logged)."""
        if answer.decision_id is not None:
            self.writer.put((answer, source, key_id))

    def record_many(self, answers: list[Answer], source: str, key_id: str | None = None,
                    done: Done | None = None) -> None:
        self.writer.put_many([(a, source, key_id) for a in answers if a.decision_id is not None], done)

    def _render(self, item: tuple[Answer, str, str | None]) -> bytes:
        answer, source, key_id = item
        decision = answer.result.decision
        assert decision is not None
        held = self._summaries.get(id(decision))
        if held is None or held[0] is not decision:  # the decision is held, so its id is not reused meanwhile
            held = self._summaries.put(id(decision), (decision, decision.summary().as_dict()))
        if self._time[0] != answer.started:
            self._time = (answer.started, iso_time(answer.started))
        record: dict[str, Any] = {
            "decision_id": answer.decision_id,
            "time": self._time[1],
            "source": source,
            "input": answer.record,
            **held[1],  # what replay reads back and compares
            "latency_ms": round(answer.seconds * 1000, 4),
        }
        if key_id is not None:
            record["key_id"] = key_id
        if self.mask and isinstance(answer.record, dict):
            kept = {k: v for k, v in answer.record.items() if canonical_field(k) not in self.mask}
            if len(kept) != len(answer.record):
                record["input"] = kept
                record["masked"] = sorted(canonical_field(k) for k in answer.record if k not in kept)
        return orjson.dumps(record)  # linked into the chain by the writer, once it has chosen the file

    def close(self) -> None:
        self.writer.close()


class AccessLog:
    """One JSON line per request (method, path, status, time taken, bytes sent) on standard error."""

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.writer = JsonLinesWriter(lambda rec: orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE),
                                      stream=stream if stream is not None else sys.stderr.buffer, name="access-log")

    def request(self, record: dict[str, Any]) -> None:
        self.writer.put(record)

    def close(self) -> None:
        self.writer.close()


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) for each decision record of a log; a line that is not one gives its error.

    The chain's own records (each file's start record) are not decisions and are passed over; a torn last
    line (a power cut mid-write) is reported as torn, and every whole record before it is read.
    """
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    with stream:
        for number, (text, too_long) in enumerate(chain.lines(stream), 1):
            if too_long:
                yield number, f"a line longer than {chain.MAX_RECORD_BYTES:,} bytes: not a decision record"
                continue
            if not text.endswith(b"\n"):
                yield number, "torn: the last line is incomplete (a power cut or a crash mid-write); not replayed"
                continue
            if not text.strip():
                continue
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg}"
                continue
            if isinstance(record, dict) and "log" in record and "input" not in record:
                continue  # a record of the chain itself (a file's start), not a decision
            if not isinstance(record, dict) or not isinstance(record.get("input"), dict):
                yield number, "not a decision record (an object with an input line)"
                continue
            yield number, record


class JsonFormatter(logging.Formatter):
    """The server's own messages (start, stop, reloads, errors) as JSON lines, like the access log."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": iso_time(record.created), "level": record.levelname.lower(),
                               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()
