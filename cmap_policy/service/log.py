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
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import InputError
from ..lines import canonical_field
from .decisions import Answer

_STOP = object()
_BATCH = 4096  # records written between two looks at the queue


def iso_time(seconds: float) -> str:
    """A UTC timestamp with milliseconds, as the records carry it."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLinesWriter:
    """A thread that renders queued items to JSON Lines in a file (rotated by size) or a stream."""

    def __init__(self, render: Callable[[Any], bytes], *, path: Path | None = None, stream: IO[bytes] | None = None,
                 max_bytes: int = 0, backups: int = 5, name: str = "jsonl-writer") -> None:
        if (path is None) == (stream is None):
            raise ValueError("give a path or a stream")
        self._render = render
        self.path = path
        self.max_bytes = max_bytes
        self.backups = max(1, backups)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.written = 0  # records written (read by the metrics)
        self.rotations = 0
        self.error: str | None = None  # the last write error, reported by /health
        self._own = stream is None
        self._file: IO[bytes] = stream if stream is not None else self._open()
        self._size = self._file.tell() if self._own else 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _open(self) -> IO[bytes]:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, "ab")

    def put(self, item: Any) -> None:
        """Queue one item; it is written after every item queued before it."""
        self._queue.put(item)

    def put_many(self, items: list[Any]) -> None:
        """Queue many items at once (a chunk of a batch), in order."""
        self._queue.put(items)

    def backlog(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            try:
                while len(items) < _BATCH:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            for item in items:
                if item is _STOP:
                    stop = True
                elif isinstance(item, list):
                    for one in item:
                        self._write(self._render(one))
                else:
                    self._write(self._render(item))
            try:
                self._file.flush()
            except OSError as err:
                self.error = str(err)

    def _write(self, data: bytes) -> None:
        try:
            if self._own and self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._size += len(data)
            self.written += 1
        except OSError as err:
            self.error = str(err)

    def _rotate(self) -> None:
        assert self.path is not None
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._file = self._open()
        self._size = 0
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


class DecisionLog:
    """One JSON Lines record per decision: what was asked, what was decided, against which policy."""

    def __init__(self, path: Path, *, mask: Collection[str] = (), max_bytes: int = 100 * 1024 * 1024,
                 backups: int = 5) -> None:
        self.mask = frozenset(mask)
        self.writer = JsonLinesWriter(self._render, path=path, max_bytes=max_bytes, backups=backups,
                                      name="decision-log")

    def record(self, answer: Answer, source: str) -> None:
        """Queue the record of a decided line (an undecided line is not a decision and is not logged)."""
        if answer.decision_id is not None:
            self.writer.put((answer, source))

    def record_many(self, answers: list[Answer], source: str) -> None:
        self.writer.put_many([(a, source) for a in answers if a.decision_id is not None])

    def _render(self, item: tuple[Answer, str]) -> bytes:
        answer, source = item
        decision = answer.result.decision
        assert decision is not None
        record: dict[str, Any] = {
            "decision_id": answer.decision_id,
            "time": iso_time(answer.started),
            "source": source,
            "input": answer.record,
            "outcome": decision.outcome.value,
            "reasons": [r.code for r in decision.reasons],
            "period": decision.period.id if decision.period else None,
            "release": decision.release,
            "policy_hash": decision.policy_hash,
            "latency_ms": round(answer.seconds * 1000, 4),
        }
        if self.mask and isinstance(answer.record, dict):
            kept = {k: v for k, v in answer.record.items() if canonical_field(k) not in self.mask}
            if len(kept) != len(answer.record):
                record["input"] = kept
                record["masked"] = sorted(canonical_field(k) for k in answer.record if k not in kept)
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)

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
    """(line number, record) for each line of a decision log; a line that is not a record gives its error."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    with stream:
        for number, text in enumerate(stream, 1):
            if not text.strip():
                continue
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg}"
                continue
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
