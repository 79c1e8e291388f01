"""Signed policy bundles: a release of the policy as one file, signed, and loaded only once verified.

A claims system that decides with this policy must show an auditor that the policy deciding was the one
the program approved. Open Policy Agent's answer is the signed bundle, and this is the same model: a
gzipped tar of the policy tree with ``.signatures.json``, a JWS (compact form, EdDSA over Ed25519) whose
payload is the manifest of every file's SHA-256, the policy hash and the release list.

- ``build(policy_dir, output, private_key)`` checks the tree, signs and writes the bundle;
- ``verify(path, public_key)`` reads it as hostile input (``archive``: ``guard``'s rules for members) and
  checks the signature and every file, naming the first one missing, extra or altered;
- ``load(path, public_key)`` verifies, then loads and checks the policy: a ``Bundle`` with the ``Policy``
  and the id of the key that signed it (RFC 7638 thumbprint), which decisions name;
- ``generate(name)`` writes an Ed25519 key pair as PEM (``keys``); ``openssl genpkey -algorithm ed25519``
  keys work as well.

``cryptography`` (the ``bundle`` extra) does the cryptography; this package only arranges it.
"""

from ..errors import BundleError
from .keys import KeyPair, generate, key_id, read_private, read_public
from .manifest import Manifest
from .signed import Bundle, Verified, build, load, verify

__all__ = ["Bundle", "BundleError", "KeyPair", "Manifest", "Verified", "build", "generate", "key_id", "load",
           "read_private", "read_public", "verify"]
