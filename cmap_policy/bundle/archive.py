"""A bundle file: a gzipped tar of named members, written reproducibly and read as hostile input.

Written: members sorted by name, regular files only, owner, group and times zeroed, so that the same tree
and key give the same bytes. Read: a bundle can come from anyone, so the reader keeps to ``guard``'s rules
and more, and says which member it refuses and why:

- the file itself is a regular file of at most ``MAX_BUNDLE_BYTES`` (read as ``guard.read_regular`` reads);
- everything decompressed, tar headers included, is counted, and reading stops past ``MAX_UNPACKED_BYTES``
  (a gzip bomb is refused, not inflated);
- a member is a regular file: a symbolic or hard link, a device or a FIFO is refused (folders are skipped);
- a member's name is a plain relative path of ``[A-Za-z0-9._-]`` parts: no ``..``, no leading ``/``, no
  empty part, no backslash; a name given twice is refused;
- a member holds at most ``guard.MAX_TREE_FILE_BYTES``, and there are at most ``MAX_MEMBERS``.

Nothing is written to disk here: members are returned as bytes, and verified before anything parses them.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path

from .. import guard
from ..errors import BundleError, FileRefusedError

MAX_BUNDLE_BYTES = 64 << 20  # the bundled policy makes a bundle of well under 1 MB
MAX_UNPACKED_BYTES = 256 << 20
MAX_MEMBERS = 20_000
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*|\.signatures\.json")


def write(path: Path, members: Mapping[str, bytes]) -> None:
    """Write ``members`` as a reproducible tar.gz at ``path``, atomically (a reader never sees half a bundle)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            data = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(buffer.getvalue())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Counted(io.RawIOBase):
    """A decompressed stream that stops with an error past ``limit`` bytes."""

    def __init__(self, inner: gzip.GzipFile, limit: int) -> None:
        self._inner = inner
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(min(len(buffer), self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise BundleError(f"unpacks to more than {MAX_UNPACKED_BYTES:,} bytes: refused (a bundle of the "
                              "whole policy unpacks to a few MB)")
        buffer[: len(data)] = data
        return len(data)


def _refusal(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` is refused, or None when it may be read."""
    if member.issym() or member.islnk():
        return f"a {'symbolic' if member.issym() else 'hard'} link (to {member.linkname[:200]!r}): a bundle holds " \
               "only regular files"
    if not member.isfile() and not member.isdir():
        return "not a regular file (a device, a FIFO or another special member): a bundle holds only regular files"
    name = member.name.removesuffix("/") if member.isdir() else member.name
    if not _NAME.fullmatch(name) or any(part in (".", "..") for part in name.split("/")):
        return "a path that is not plain and relative (an absolute path, '..', a backslash or an unusual " \
               "character): it could lead outside the bundle"
    if member.isfile() and member.size > guard.MAX_TREE_FILE_BYTES:
        return guard.too_large(member.size, guard.MAX_TREE_FILE_BYTES, "a member of a bundle")
    return None


def _shown(name: str) -> str:
    return name if len(name) <= 200 else name[:200] + "…"


def read(path: Path) -> dict[str, bytes]:
    """The members of the bundle at ``path`` by name; ``BundleError`` naming the first member refused."""
    where = str(path)
    try:
        raw = guard.read_regular(path.resolve(strict=True), MAX_BUNDLE_BYTES, "a bundle")
    except FileRefusedError as err:
        raise BundleError(str(err), where) from None
    except OSError as err:
        raise BundleError(f"cannot read the bundle: {err.strerror}", where) from None
    members: dict[str, bytes] = {}
    try:
        stream = io.BufferedReader(_Counted(gzip.GzipFile(fileobj=io.BytesIO(raw)), MAX_UNPACKED_BYTES))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                why = _refusal(member)
                if why is not None:
                    raise BundleError(why, _shown(member.name))
                if member.isdir():
                    continue
                if member.name in members:
                    raise BundleError("the bundle holds this name twice", _shown(member.name))
                if len(members) >= MAX_MEMBERS:
                    raise BundleError(f"more than {MAX_MEMBERS:,} members: refused", where)
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file
                members[member.name] = extracted.read()
    except BundleError as err:
        if err.member is None:
            raise BundleError(err.message, where) from None
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise BundleError(f"not a gzipped tar file, or a damaged one ({str(err)[:200]})", where) from None
    return members
