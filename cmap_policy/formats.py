"""What format a claim file, a request body or standard input is in, and what each output can be.

One module answers "which format is this?" for every entry point: the command line decides a run's formats
here once (from ``--input-format``, the file's suffix, or its first bytes) and passes them down; the batch
engine, the interpreter's readers and the decision service only ever receive a format, never guess one. A
format is one of ``INPUTS``; an output is one of ``OUTPUTS`` (what the batch engine writes) or, for the
interpreter line by line, the JSON of ``--format``.

Why here and not in each reader: the same file used to be called JSON by one reader and "cannot tell the
format" by another, and standard input was guessed by rules of its own. Nothing here imports pyarrow or numpy,
so a one-line ``eval`` stays quick to start.
"""

from __future__ import annotations

import os
from pathlib import Path

# every format a claim file can be in: a JSON document (an array of lines, or one line), JSON Lines, CSV,
# Parquet, Arrow IPC (file or stream), X12 837
INPUTS = ("json", "jsonl", "csv", "parquet", "arrow", "x12")
# formats read as text a line at a time (the interpreter reads them from a stream); the others need the whole
# file (a Parquet footer, an Arrow schema, an X12 envelope) and are read from a path
STREAMED = ("json", "jsonl", "csv")
# formats told by a magic number at their first byte
BINARY = ("parquet", "arrow")
# what the batch engine writes, by the output's suffix
OUTPUTS = ("csv", "jsonl", "parquet", "arrow")

SUFFIXES: dict[str, str] = {
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".arrow": "arrow", ".arrows": "arrow", ".feather": "arrow", ".ipc": "arrow",
    ".837": "x12", ".x12": "x12", ".edi": "x12",
}
# the suffix each output format is written with when a name must be made for it
SUFFIX_OF = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "arrow": ".arrow", "json": ".json"}

MEDIA_TYPES: dict[str, str] = {
    "application/json": "json",
    "application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet", "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow", "application/vnd.apache.arrow.file": "arrow",
    "application/edi-x12": "x12",
}
MEDIA_TYPE_OF = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv",
                 "parquet": "application/vnd.apache.parquet", "arrow": "application/vnd.apache.arrow.stream",
                 "x12": "application/edi-x12"}

SNIFF_BYTES = 4096  # what is read of a file or stream to tell its format
_BLANKS = b"\xef\xbb\xbf \t\r\n"  # a byte-order mark and blank lines may come before the first line
_PARQUET_MAGIC = b"PAR1"
_ARROW_FILE_MAGIC = b"ARROW1"
_ARROW_STREAM_START = b"\xff\xff\xff\xff"  # an IPC stream's first message begins with the continuation marker


class FormatError(ValueError):
    """A format that cannot be told, or that cannot be used where it was asked for: a usage error."""


def by_suffix(path: str | Path) -> str | None:
    """The format ``path``'s suffix names, or None."""
    return SUFFIXES.get(Path(str(path)).suffix.lower())


def by_media_type(content_type: str | None) -> str | None:
    """The format a ``Content-Type`` or ``Accept`` value names (parameters aside), or None."""
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def sniff(head: bytes) -> str | None:
    """The format the first bytes of a file or stream show, or None when they show nothing (empty, or blank).

    Binary formats by their magic numbers; X12 by its ISA segment; ``[`` a JSON document, and ``{`` JSON
    Lines (the readers tell a JSON document spread over lines from JSON Lines by reading on:
    ``lines.read_lines``); anything else CSV.
    """
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_ARROW_FILE_MAGIC) or head.startswith(_ARROW_STREAM_START):
        return "arrow"
    text = head.lstrip(_BLANKS)
    if not text:
        return None
    if text.startswith(b"ISA"):
        return "x12"
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    return "csv"


def head_of(path: str | Path) -> bytes:
    """The first bytes of a file (empty when it cannot be read: the reader then says why)."""
    try:
        with open(path, "rb") as f:
            return f.read(SNIFF_BYTES)
    except OSError:
        return b""


def of_file(path: str | Path, given: str | None = None) -> str | None:
    """The format of the claims file at ``path``: ``given`` when a user named one, else its suffix, else what its
    first bytes show (None for an empty file of no known suffix)."""
    if given is not None:
        return checked_input(given)
    return by_suffix(path) or sniff(head_of(path))


def checked_input(fmt: str) -> str:
    if fmt not in INPUTS:
        raise FormatError(f"unknown input format {fmt!r} (known: {', '.join(INPUTS)})")
    return fmt


def output_of(path: str | Path) -> str | None:
    """The format the batch engine writes to ``path``, by its suffix, or None when the suffix names none."""
    fmt = by_suffix(path)
    return fmt if fmt in OUTPUTS else None


def errors_path_for(output: str | Path) -> Path:
    """Where a run that writes ``output`` writes its errors when not told: beside it, ``NAME.errors.jsonl``."""
    out = Path(output)
    name = out.name
    suffix = out.suffix
    if SUFFIXES.get(suffix.lower()) in OUTPUTS:
        name = name[: -len(suffix)]
    return out.with_name(name + ".errors.jsonl")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (the same inode when both exist, else the same resolved path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def refuse_overlap(inputs: dict[str, str | Path | None], outputs: dict[str, str | Path | None]) -> None:
    """Raise ``FormatError`` when an output would overwrite an input or another output: checked before anything
    is opened for writing, so that a run can never destroy the file it reads. Names are the options' (``INPUT``,
    ``-o``, ``--errors``) and ``-`` (standard input or output) is never a file."""
    real = {k: v for k, v in outputs.items() if v not in (None, "-")}
    for out_name, out in real.items():
        assert out is not None
        for in_name, src in inputs.items():
            if src not in (None, "-") and same_file(src, out):
                raise FormatError(f"{out_name} {out} is the input file ({in_name}): writing it would destroy the "
                                  "lines before they are read; name another file")
    names = list(real)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa_, pb_ = real[a], real[b]
            assert pa_ is not None and pb_ is not None
            if same_file(pa_, pb_):
                raise FormatError(f"{a} and {b} are the same file ({pa_}): decisions and errors need files of "
                                  "their own")


def temporary_beside(path: Path) -> Path:
    """A name beside ``path`` to write it under until it is whole (then renamed: ``os.replace`` is atomic on one
    file system), so that a run that fails leaves no half file under the name asked for."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")
