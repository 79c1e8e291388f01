"""A cache of checked policies, so that a one-line ``cmap-policy eval`` skips the schema and meaning checks.

``load_policy`` checks every file against the schemas and the meaning checks, which takes most of a cold
start. What passed the checks is kept here as JSON: the documents of the tree exactly as checked, and the
policy hash. A warm load parses that JSON and builds the ``Policy`` from it (``loader.build``, a few
milliseconds), with no schema and no meaning check.

Why JSON and not a pickle: an entry is data, never code. A pickle runs whatever its bytes name when it
is loaded, and the key of an entry can be computed from public inputs, so anyone who could write an
entry could have run a command in the next ``eval``. A JSON entry can at worst hold a wrong policy, and
only someone who can already write the user's files can plant one: the folder must belong to the user
and be writable by no one else (else the cache is not used at all), and an entry must be a regular file
of the user's (links are not followed).

The key is a fingerprint of everything the load reads: the bytes of every policy and schema file, their
names, the policy folder's path (rule references name it), the source of the modules that check and
build a Policy (so a changed check is never skipped) and the Python version. Any change to any of them
is a different key, so a stale entry is never used.

The cache lives in ``$CMAP_POLICY_CACHE_DIR``, else ``$XDG_CACHE_HOME/cmap-policy``, else
``~/.cache/cmap-policy``. ``CMAP_POLICY_CACHE=0`` turns it off. Any failure to read or write the cache (no
home, a read-only disk, a damaged entry, a folder someone else could write) falls back to a normal load,
silently: the cache can only make a load faster.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import guard
from ..errors import FileRefusedError

FORMAT = 2  # bump when the shape of an entry changes (2: JSON documents; 1 was a pickle, never read now)
KEEP = 256  # entries kept; test suites load hundreds of generated policies
SUFFIX = ".json"
MAX_ENTRY_BYTES = 64 << 20


def code_files() -> list[Path]:
    """The source files that decide whether a tree loads and what the loaded Policy holds.

    Every module of this package (the loader and its checks) and the modules the Policy is made of,
    found from the module objects themselves: a module that moves is followed, never lost, and a file
    that cannot be read makes the key None (no cache) rather than a stale hit.
    """
    from .. import errors, model, resources

    here = Path(__file__).parent
    return [*sorted(here.glob("*.py")), *(Path(m.__file__ or "") for m in (model, errors, resources, guard))]


def _code_version() -> bytes:
    """The source of the modules that check and build a Policy: a new version of any is a new key."""
    return b"".join(path.read_bytes() for path in code_files())


def cache_dir() -> Path | None:
    if os.environ.get("CMAP_POLICY_CACHE", "1") == "0":
        return None
    explicit = os.environ.get("CMAP_POLICY_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cmap-policy"


def fingerprint(root: Path, schema_root: Path) -> str | None:
    """The key of the policy at ``root``: None when a file cannot be read (the load will say why).

    The files are read as the loader reads them (``guard.read_tree_file``), so a FIFO or a link out of the
    tree is refused here too, never opened.
    """
    h = hashlib.sha256()
    h.update(f"{FORMAT}\0{sys.version_info[:2]}\0{root}\0{root.resolve()}\0".encode())
    try:
        h.update(_code_version())
        files = [root / "program.json", root / "releases.json", *guard.tree_files(root / "codes", "*.json")]
        for path in files:
            h.update(path.name.encode() + b"\0" + guard.read_tree_file(path, root) + b"\0")
        for path in sorted(schema_root.glob("*.schema.json")):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except (OSError, FileRefusedError):
        return None
    return h.hexdigest()


def _own_folder(folder: Path) -> bool:
    """True when ``folder`` is a folder of this user's that no one else can write to."""
    try:
        st = folder.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return not hasattr(os, "geteuid") or st.st_uid == os.geteuid()


def _usable_folder(create: bool) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    if create and not folder.exists():
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None
    return folder if _own_folder(folder) else None


def load(key: str) -> dict[str, Any] | None:
    """The entry stored under ``key`` (``loader.from_data`` gives what ``loader.build`` makes a Policy of), or None."""
    folder = _usable_folder(create=False)
    if folder is None:
        return None
    path = folder / f"{key}{SUFFIX}"
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # no entry (the usual miss), or a link where an entry should be
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES
                or (hasattr(os, "geteuid") and st.st_uid != os.geteuid())):
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            entry = json.loads(f.read())
        os.utime(path)  # recently used entries are the ones kept
    except Exception:  # unreadable or damaged: load from the files
        return None
    finally:
        os.close(fd)
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
        return None
    return entry


def store(key: str, documents: Mapping[str, Any], digest: str) -> None:
    """Keep ``documents`` (``loader.as_data`` of a checked tree) under ``key``, with the policy's hash."""
    folder = _usable_folder(create=True)
    if folder is None:
        return
    try:
        entry = {"format": FORMAT, "key": key, "hash": digest, **documents}
        data = json.dumps(entry, separators=(",", ":")).encode()
        import tempfile  # only a run that stores an entry needs it

        # write then rename, so that a reader never sees half an entry; mkstemp makes it 0600
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / f"{key}{SUFFIX}")
        entries = list(folder.glob(f"*{SUFFIX}"))
        if len(entries) > 2 * KEEP:
            entries.sort(key=lambda p: p.stat().st_mtime)
            for old in entries[:-KEEP]:
                old.unlink(missing_ok=True)
    except Exception:  # an unwritable cache only costs the next run the checks
        return
