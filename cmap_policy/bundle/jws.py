"""JWS compact serialization (RFC 7515) with EdDSA (RFC 8037): the signature of a bundle's manifest.

Open Policy Agent signs its bundles the same way (``.signatures.json`` holds a JWS whose payload lists
the files and their hashes). Only ``EdDSA`` is accepted: the algorithm is fixed by this code, never chosen
by the token's header, so a token claiming ``none`` or an HMAC algorithm is refused, not obeyed. The
signature itself is ``cryptography``'s Ed25519.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .. import guard
from ..errors import BundleError
from .keys import b64url, b64url_decode, key_id

ALGORITHM = "EdDSA"


def sign(payload: bytes, key: Ed25519PrivateKey) -> str:
    """``payload`` signed as a JWS in compact form, its header naming the algorithm and the key id."""
    header = json.dumps({"alg": ALGORITHM, "kid": key_id(key.public_key())}, separators=(",", ":"))
    signing_input = f"{b64url(header.encode('ascii'))}.{b64url(payload)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


@dataclass(frozen=True, slots=True)
class Verified:
    payload: bytes
    key_id: str  # the id of the key that verified it


def _json_object(part: bytes, what: str, where: str) -> dict[str, Any]:
    try:
        value = guard.loads(part.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleError(f"the signature's {what} is not JSON ({err})", where) from None
    if not isinstance(value, dict):
        raise BundleError(f"the signature's {what} is not a JSON object", where)
    return value


def verify(token: str, key: Ed25519PublicKey, where: str) -> Verified:
    """The payload of ``token`` if ``key`` signed it; ``BundleError`` (naming ``where``) otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise BundleError("the signature is not a JWS in compact form (three base64url parts)", where)
    try:
        header_raw, payload, signature = (b64url_decode(p) for p in parts)
    except ValueError:
        raise BundleError("the signature is not a JWS in compact form (a part is not base64url)", where) from None
    header = _json_object(header_raw, "header", where)
    if header.get("alg") != ALGORITHM:
        raise BundleError(f"the signature's algorithm is {str(header.get('alg'))[:40]!r}; only {ALGORITHM} "
                          "(Ed25519) is accepted", where)
    if "crit" in header:
        raise BundleError("the signature's header has critical extensions this reader does not know", where)
    expected = key_id(key)
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        named = header.get("kid")
        other = (f"; it names key {str(named)[:64]}, and the key given is {expected}"
                 if isinstance(named, str) and named != expected else "")
        raise BundleError(f"the signature is wrong: the manifest was not signed by this key, or was changed "
                          f"after signing{other}", where) from None
    return Verified(payload, expected)
