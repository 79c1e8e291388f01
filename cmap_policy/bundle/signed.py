"""Build, verify and load a signed policy bundle.

``build`` checks the tree (a bundle of a policy that does not load is never signed), hashes every file,
signs the manifest and writes the bundle. ``verify`` reads the bundle as hostile input, checks the
signature, then checks every member against the signed manifest: nothing is parsed as policy before all of
that has passed. ``load`` does both and then loads the verified files, checking them as any tree is checked,
and refuses a bundle whose policy hash is not the one that was signed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .. import guard
from ..errors import BundleError, FileRefusedError, PolicyError, Problem
from ..load import load_checked
from ..model import Policy
from ..resources import policy_dir
from . import archive, jws
from .keys import read_private, read_public
from .manifest import SIGNATURES, Manifest, compare, parse, sha256


@dataclass(frozen=True, slots=True)
class Verified:
    """A bundle whose signature and every file checked: its manifest, the key id that signed it, its files."""

    path: str
    manifest: Manifest
    key_id: str
    members: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class Bundle:
    """A verified bundle's policy, loaded and checked, with who signed it."""

    policy: Policy
    key_id: str
    manifest: Manifest
    path: str


def _tree_members(root: Path) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    for path in guard.tree_files(root, "*.json", recursive=True):
        name = path.relative_to(root).as_posix()
        try:
            members[name] = guard.read_tree_file(path, root)
        except FileRefusedError as err:
            raise BundleError(str(err), f"{root.name}/{name}") from None
    return members


def build(policy_path: str | Path | None, output: str | Path, key: str | Path | Ed25519PrivateKey) -> Manifest:
    """Sign the tree at ``policy_path`` (default: the bundled policy) with ``key`` and write the bundle."""
    root = Path(policy_path) if policy_path is not None else policy_dir()
    private = key if isinstance(key, Ed25519PrivateKey) else read_private(key)
    policy = load_checked(root)  # PolicyError when the tree does not load: nothing is signed
    members = _tree_members(root)
    manifest = Manifest(root.resolve().name, {n: sha256(d) for n, d in members.items()}, policy.hash,
                        tuple(r.id for r in policy.releases))
    signature = jws.sign(manifest.to_json(), private)
    members[SIGNATURES] = _signatures_json(signature)
    archive.write(Path(output), members)
    return manifest


def _signatures_json(token: str) -> bytes:
    return ('{"signatures": ["' + token + '"]}\n').encode("ascii")


def _token(members: Mapping[str, bytes], where: str) -> str:
    raw = members.get(SIGNATURES)
    if raw is None:
        raise BundleError("the bundle is not signed: it holds no .signatures.json", where)
    try:
        doc = guard.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleError(f"not JSON ({err})", SIGNATURES) from None
    tokens = doc.get("signatures") if isinstance(doc, dict) else None
    if not isinstance(tokens, list) or len(tokens) != 1 or not isinstance(tokens[0], str):
        raise BundleError('expected {"signatures": ["<one JWS>"]}', SIGNATURES)
    return tokens[0]


def verify(path: str | Path, key: str | Path | Ed25519PublicKey) -> Verified:
    """The bundle at ``path``, checked: ``BundleError`` names the first thing wrong (nothing is parsed as policy)."""
    public = key if isinstance(key, Ed25519PublicKey) else read_public(key)
    where = str(path)
    members = archive.read(Path(path))
    checked = jws.verify(_token(members, where), public, SIGNATURES)
    manifest = parse(checked.payload, SIGNATURES)
    wrong = compare(manifest, members)
    if wrong:
        name, why = wrong[0]
        more = f" (and {len(wrong) - 1} more file(s))" if len(wrong) > 1 else ""
        raise BundleError(why + more, name)
    return Verified(where, manifest, checked.key_id, {n: d for n, d in members.items() if n != SIGNATURES})


def load(path: str | Path, key: str | Path | Ed25519PublicKey) -> Bundle:
    """The policy of a verified bundle: ``BundleError`` if it does not verify, ``PolicyError`` if it does not load."""
    verified = verify(path, key)
    manifest = verified.manifest
    with tempfile.TemporaryDirectory(prefix="cmap-bundle-") as tmp:
        # the folder keeps the tree's own name, so that rule references read as they do for the tree itself
        root = Path(tmp) / manifest.root.replace("/", "_")
        for name, data in verified.members.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            policy = load_checked(root)
        except PolicyError as err:
            raise PolicyError([replace(p, file=f"{verified.path}:{p.file}") for p in err.problems]) from None
    if policy.hash != manifest.policy_hash:
        raise PolicyError([Problem(verified.path, "", f"the policy hash is {policy.hash}, and the signed manifest "
                                   f"says {manifest.policy_hash}", "bundle")])
    # what the policy was read from, as a path inside the bundle: the folder it was unpacked to is gone
    policy = replace(policy, root=f"{verified.path}/{root.name}")
    return Bundle(policy, verified.key_id, manifest, verified.path)
