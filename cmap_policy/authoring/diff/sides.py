"""The two sides of a diff: a folder, a git revision or a release of the working tree, each loaded as a policy."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DiffError, PolicyError
from ...load.loader import load_policy
from ...model import Policy
from ...resources import working_policy_dir


@dataclass(frozen=True)
class Side:
    """A policy as of one of its releases, with a label for people.

    ``policy.hash`` is the whole tree's, so two releases of one tree share it; ``view_hash`` is the hash of what
    the release publishes, which tells them apart (``view_hash``).
    """

    policy: Policy
    release: str
    label: str

    @functools.cached_property
    def view_hash(self) -> str:
        return view_hash(self.policy, self.release)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "release": self.release, "policy_hash": self.policy.hash,
                "view_hash": self.view_hash}


def view_hash(policy: Policy, release: str) -> str:
    """sha256 of what ``release`` publishes: the releases up to it, and each code (its own fields, its rows) as
    that release states it. The program (program.json) is the tree's, and only in the policy hash."""
    ids = [r.id for r in policy.releases]
    upto = policy.releases[: ids.index(policy.release(release).id) + 1]
    codes = {code: {"system": view.code.system, "description": view.code.description,
                    "category": view.code.category, "note": view.code.note,
                    "periods": [p.as_dict() for p in view.periods]}
             for code, view in sorted(policy.views[release].items())}
    payload = {"releases": [dataclasses.asdict(r) for r in upto], "codes": codes}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def _repo_of(folder: Path) -> tuple[Path, str] | None:
    """(the git work tree holding ``folder``, the folder's path inside it), or None outside a repository."""
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        return None
    root = Path(top.stdout.decode().strip())
    try:
        inside = folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    return root, inside


def _is_revision(repo: Path, rev: str) -> bool:
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode == 0


def load_revision(rev: str, policy: str | Path | None = None) -> Policy:
    """The policy tree as committed in git revision ``rev`` (read with ``git show``; nothing is checked out)."""
    folder = Path(policy) if policy is not None else working_policy_dir()
    found = _repo_of(folder)
    if found is None:
        raise DiffError(f"{folder} is not inside a git repository, so {rev!r} cannot be read as a revision")
    repo, inside = found
    if not _is_revision(repo, rev):
        raise DiffError(f"{rev!r} is not a git revision of {repo.name} (try main, origin/main or a commit id)")
    listing = _git(repo, "ls-tree", "-r", "--name-only", rev, "--", f"{inside}/")
    names = [n for n in listing.stdout.decode().splitlines() if n.endswith(".json")]
    if listing.returncode != 0 or not names:
        raise DiffError(f"revision {rev!r} has no policy files under {inside}/")
    with tempfile.TemporaryDirectory(prefix="cmap-policy-") as tmp:
        root = Path(tmp) / folder.name  # the same folder name, so rule references read the same
        for name in names:
            blob = _git(repo, "show", f"{rev}:{name}")
            if blob.returncode != 0:
                raise DiffError(f"cannot read {name} at {rev!r}: {blob.stderr.decode().strip()}")
            target = root / Path(name).relative_to(inside)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.stdout)
        try:
            return load_policy(root)
        except PolicyError as err:
            raise DiffError(f"the policy at revision {rev!r} does not load: {err}") from None


def load_folder(path: Path, what: str) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as err:
        raise DiffError(f"the {what} policy at {path} does not load: {err}; run `cmap-policy validate {path}`") \
            from None


def resolve(spec: str | Path | Policy | Side | None, *, policy: str | Path | None = None, what: str = "BASE",
            working: Policy | None = None) -> Side:
    """Read BASE or HEAD: a policy folder, a release id of the working policy, or a git revision.

    ``None`` is the working tree (``policy``, default the repository's policy folder) at its latest release.
    A prefix forces the reading when a name is ambiguous: ``path:``, ``release:`` or ``rev:``.
    """
    folder = Path(policy) if policy is not None else working_policy_dir()

    def work() -> Policy:
        return working if working is not None else load_folder(folder, "working")

    if isinstance(spec, Side):
        return spec
    if isinstance(spec, Policy):
        return Side(spec, spec.latest.id, spec.root)
    if spec is None:
        pol = work()
        return Side(pol, pol.latest.id, "working tree")
    text = str(spec)
    kind, _, rest = text.partition(":")
    if kind in ("path", "release", "rev") and rest:
        text = rest
    else:
        kind = ""
    if kind == "path" or (not kind and isinstance(spec, Path)) or (not kind and Path(text).is_dir()):
        if not Path(text).is_dir():
            raise DiffError(f"{what} {text!r} is not a folder")
        pol = load_folder(Path(text), what)
        return Side(pol, pol.latest.id, text)
    if kind in ("", "release"):
        pol = work()
        if any(r.id == text for r in pol.releases):
            return Side(pol, text, f"release {text}")
        if kind == "release":
            known = ", ".join(r.id for r in pol.releases)
            raise DiffError(f"{what}: unknown release {text!r} (known: {known})")
    found = _repo_of(folder) if folder.is_dir() else None
    if kind == "rev" or (found is not None and _is_revision(found[0], text)):
        pol = load_revision(text, folder)
    else:
        known = ", ".join(r.id for r in work().releases) if folder.is_dir() else "none"
        raise DiffError(f"{what} {text!r} is not a policy folder, a release id (known: {known}) or a git revision "
                        "of this repository (such as main or origin/main)")
    return Side(pol, pol.latest.id, text)


