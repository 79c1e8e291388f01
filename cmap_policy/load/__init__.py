"""Loading a policy tree: parse, schema-check, meaning-check and index it, into an immutable ``Policy``.

``loader`` (``load_policy``, the whole pipeline), ``jsonfile`` (JSON with the line and column of every
value, so that problems point into the file), ``schema`` (the JSON Schemas), ``semantics`` (the meaning
checks no schema can state: overlaps, releases, sources), ``canonical`` (the normal form and the policy
hash), ``faq`` (the FAQ files, checked against a loaded policy) and ``cache`` (loaded policies kept by the
bytes of their files, for a fast cold start).
"""

from .loader import load_checked, load_policy, read_tree

__all__ = ["load_checked", "load_policy", "read_tree"]
