"""The policy in service, swapped whole: every answer names exactly one release and policy hash.

A handler reads ``PolicyHolder.serving`` once and decides every line of its request with that
``Serving``; a reload builds a new ``Serving`` off the request path and replaces the attribute in one
assignment, which no request can see half done. A tree that fails to load leaves the old one serving and
is kept as ``failure``, with its problems, for ``/health`` and ``/metrics``.

With a signed bundle (``serve --bundle FILE --verify-key KEY``) the policy comes from the bundle only once
its signature and every file verify; a bundle that does not verify is a failure like a tree that does not
load, so the old policy keeps serving and ``/health`` says why. The ``Serving`` keeps the signer's key id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BundleError, PolicyError, Problem
from ..load import load_policy
from ..model import Policy
from .decisions import Decider


@dataclass(frozen=True, slots=True)
class Serving:
    policy: Policy
    decider: Decider
    loaded_at: float
    key_id: str | None = None  # the key that signed the bundle served; None for a policy folder


@dataclass(frozen=True, slots=True)
class Failure:
    at: float
    problems: tuple[Problem, ...]

    def lines(self) -> list[str]:
        """Each problem on one line, FILE:LINE:COL: /pointer: message (without the hint)."""
        return [str(p).split("\n", 1)[0] for p in self.problems]


@dataclass(frozen=True, slots=True)
class SignedBundle:
    """A bundle to serve and the public key (an ``Ed25519PublicKey``) it must verify against."""

    path: Path
    key: Any


def load(root: Path | None, bundle: SignedBundle | None = None) -> Serving | Failure:
    """Load and check the tree at ``root`` (default: the bundled policy), or the bundle once it verifies.
    Blocking: run it off the event loop."""
    key_id = None
    try:
        if bundle is not None:
            from ..bundle import load as load_bundle  # cryptography is imported only to serve a bundle

            loaded = load_bundle(bundle.path, bundle.key)
            policy, key_id = loaded.policy, loaded.key_id
        else:
            policy = load_policy(root)
    except PolicyError as err:
        return Failure(time.time(), tuple(err.problems))
    except BundleError as err:
        return Failure(time.time(), (Problem(str(bundle.path) if bundle else "", "", f"not verified: {err}",
                                             "bundle"),))
    except OSError as err:  # the folder vanished or cannot be read mid-change
        where = str(root) if root is not None else "the bundled policy"
        return Failure(time.time(), (Problem(where, "", f"cannot read the policy: {err.strerror}", "io"),))
    return Serving(policy, Decider(policy), time.time(), key_id)


class PolicyHolder:
    def __init__(self, root: Path | None, bundle: SignedBundle | None = None) -> None:
        self.root = root
        self.bundle = bundle
        self.serving: Serving | None = None
        self.failure: Failure | None = None  # the last load, when it failed; None after a good one
        self.reloads = 0
        self.failed_reloads = 0

    def install(self, result: Serving | Failure) -> bool:
        """Swap in a loaded tree, or keep a failure; True when it was a reload (a policy was serving)."""
        reload = self.serving is not None
        if isinstance(result, Failure):
            self.failure = result
            self.failed_reloads += reload
            return reload
        self.reloads += reload
        self.failure = None
        self.serving = result  # the swap: one assignment
        return reload
