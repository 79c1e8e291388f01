"""The manifest a bundle's signature covers: every file's SHA-256, the policy hash, the releases.

It is the JWS payload of ``.signatures.json`` (Open Policy Agent's layout): the only copy, so there is no
second list that could disagree with what was signed. ``compare`` checks the members of a bundle against
it and names the first file, in name order, that is missing, extra or altered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import guard
from ..errors import BundleError

FORMAT = "cmap-policy-bundle/1"
SIGNATURES = ".signatures.json"  # the one member the manifest does not list: it holds the manifest


@dataclass(frozen=True, slots=True)
class Manifest:
    root: str  # the name of the policy folder the files came from ("policy"): rule references name it
    files: Mapping[str, str]  # member name -> SHA-256 (hex)
    policy_hash: str  # the hash every decision against this policy carries
    releases: tuple[str, ...]  # oldest first; the last is what decisions use by default

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "root": self.root, "policy_hash": self.policy_hash,
                           "releases": list(self.releases),
                           "files": [{"name": n, "sha256": self.files[n]} for n in sorted(self.files)]},
                          separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def as_dict(self) -> dict[str, Any]:
        return {"policy_hash": self.policy_hash, "releases": list(self.releases), "files": len(self.files)}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _text(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise BundleError(f"the signed manifest has no {key!r} text", where)
    return value


def parse(payload: bytes, where: str) -> Manifest:
    """The manifest from a verified payload (signed, so only a broken signer makes it malformed)."""
    try:
        doc = guard.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleError(f"the signed manifest is not JSON ({err})", where) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"the signed manifest is not a {FORMAT} manifest", where)
    files: dict[str, str] = {}
    entries = doc.get("files")
    if not isinstance(entries, list):
        raise BundleError("the signed manifest has no file list", where)
    for entry in entries:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and isinstance(entry.get("sha256"), str)):
            raise BundleError("the signed manifest lists a file without a name and a sha256", where)
        files[entry["name"]] = entry["sha256"]
    releases = doc.get("releases")
    if not isinstance(releases, list) or not releases or not all(isinstance(r, str) for r in releases):
        raise BundleError("the signed manifest has no release list", where)
    return Manifest(_text(doc, "root", where), files, _text(doc, "policy_hash", where), tuple(releases))


def compare(manifest: Manifest, members: Mapping[str, bytes]) -> list[tuple[str, str]]:
    """(member, what is wrong) for every file missing, extra or altered, in name order."""
    found: list[tuple[str, str]] = []
    for name in sorted(set(manifest.files) | (set(members) - {SIGNATURES})):
        if name not in members:
            found.append((name, "missing: the signed manifest lists it and the bundle does not hold it"))
        elif name not in manifest.files:
            found.append((name, "extra: the bundle holds it and the signed manifest does not list it"))
        elif sha256(members[name]) != manifest.files[name]:
            found.append((name, "altered: its SHA-256 is not the one the signed manifest gives"))
    return found
