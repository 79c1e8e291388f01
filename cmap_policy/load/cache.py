"""A cache of loaded policies, so that a one-line ``cmap-policy eval`` skips schema checks.

``load_policy`` checks every file against the schemas and the meaning checks,
which takes most of a cold start. The loaded ``Policy`` is immutable, so it is
kept as a pickle keyed by a fingerprint of everything the load reads: the bytes
of every policy and schema file, their names, the policy folder's path (rule
references name it), the source of the modules that check and build a Policy
(so a changed check is never skipped) and the Python version. Any change to any of
them is a different key, so a stale entry is never used.

The cache lives in ``$CMAP_POLICY_CACHE_DIR``, else ``$XDG_CACHE_HOME/cmap-policy``,
else ``~/.cache/cmap-policy``, in a folder only its owner can read or write.
``CMAP_POLICY_CACHE=0`` turns it off. Any failure to read or write the cache
(no home, a read-only disk, a damaged entry) falls back to a normal load,
silently: the cache can only make a load faster.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..model import Policy

FORMAT = 1  # bump when the pickled shape of Policy changes
KEEP = 256  # entries kept; test suites load hundreds of generated policies


def code_files() -> list[Path]:
    """The source files that decide whether a tree loads and what the loaded Policy holds.

    Every module of this package (the loader and its checks) and the modules the Policy is made of,
    found from the module objects themselves: a module that moves is followed, never lost, and a file
    that cannot be read makes the key None (no cache) rather than a stale hit.
    """
    from .. import errors, model, resources

    here = Path(__file__).parent
    return [*sorted(here.glob("*.py")), *(Path(m.__file__ or "") for m in (model, errors, resources))]


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
    """The key of the policy at ``root``: None when a file cannot be read (the load will say why)."""
    h = hashlib.sha256()
    h.update(f"{FORMAT}\0{sys.version_info[:2]}\0{root}\0{root.resolve()}\0".encode())
    try:
        h.update(_code_version())
        files = [root / "program.json", root / "releases.json", *sorted((root / "codes").glob("*.json")),
                 *sorted(schema_root.glob("*.schema.json"))]
        for path in files:
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return h.hexdigest()


def _proxy(d: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(d)


class _Pickler(pickle.Pickler):
    """Pickles the read-only mappings of a Policy (MappingProxyType) as the dicts they wrap."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is MappingProxyType:
            return _proxy, (dict(obj),)
        return NotImplemented


def load(key: str) -> Policy | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        path = folder / f"{key}.pickle"
        with open(path, "rb") as f:
            policy = pickle.load(f)
        os.utime(path)  # recently used entries are the ones kept
    except Exception:  # missing, unreadable or damaged: load from the files
        return None
    return policy if isinstance(policy, Policy) else None


def store(key: str, policy: Policy) -> None:
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        buf = io.BytesIO()
        _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(policy)
        import tempfile  # only a run that stores an entry needs it

        # write then rename, so that a reader never sees half an entry
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, folder / f"{key}.pickle")
        entries = list(folder.glob("*.pickle"))
        if len(entries) > 2 * KEEP:
            entries.sort(key=lambda p: p.stat().st_mtime)
            for old in entries[:-KEEP]:
                old.unlink(missing_ok=True)
    except Exception:  # an unwritable cache only costs the next run the checks
        return
