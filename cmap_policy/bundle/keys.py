"""Ed25519 keys in PEM files: made, read, and named by a key id.

The keys are the ``cryptography`` library's (no hand-written cryptography here). A private key is PKCS#8
PEM, a public key SubjectPublicKeyInfo PEM: the forms ``openssl genpkey -algorithm ed25519`` and
``openssl pkey -pubout`` write, so a key made by either tool works with the other. A key id is the JWK
thumbprint of the public key (RFC 7638, SHA-256), so anyone holding the public key computes the same id
without being told it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import BundleError

MAX_KEY_BYTES = 64 * 1024  # a PEM key is a few hundred bytes


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWS and JWK write bytes (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text or any(c not in _B64URL for c in text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def key_id(public: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint of an Ed25519 public key (SHA-256, base64url)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}  # the required members, in lexicographic order
    text = json.dumps(jwk, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str


def generate(name: str | Path) -> KeyPair:
    """Write ``NAME.pem`` (the private key, mode 600) and ``NAME.pub.pem`` (the public key).

    Neither file may exist already: a key that signed releases is never overwritten by mistake.
    """
    base = Path(name)
    private_path = base.with_name(base.name + ".pem")
    public_path = base.with_name(base.name + ".pub.pem")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise BundleError("exists already: a key is never overwritten; choose another name", str(path))
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    # created with mode 600 from the start (O_EXCL: not through a file someone placed in between)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(public_pem)
    return KeyPair(private_path, public_path, key_id(key.public_key()))


def _pem(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_KEY_BYTES + 1)
    except OSError as err:
        raise BundleError(f"cannot read the {what}: {err.strerror}", str(path)) from None
    if len(data) > MAX_KEY_BYTES:
        raise BundleError(f"larger than {MAX_KEY_BYTES:,} bytes: not a PEM key", str(path))
    return data


def read_private(path: str | Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key from a PEM file (PKCS#8, as ``openssl genpkey`` writes it)."""
    data = _pem(Path(path), "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise BundleError(f"not an unencrypted PEM private key ({_first_line(err)})", str(path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError("not an Ed25519 key (make one with `cmap-policy bundle keygen` or "
                          "`openssl genpkey -algorithm ed25519`)", str(path))
    return key


def read_public(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo, as ``openssl pkey -pubout`` writes it)."""
    data = _pem(Path(path), "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise BundleError(f"not a PEM public key ({_first_line(err)})", str(path)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError("not an Ed25519 public key", str(path))
    return key


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
