"""One canonical form of policy data, shared by the content hash and the formatter.

Every list in the policy is a set except ``releases`` (their order is the
publication order), so lists are sorted by a natural key: a period by its
effective date, a record by its id or code, anything else by its JSON text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ORDERED_LISTS = frozenset({"releases"})


def _sort_key(item: Any) -> tuple[str, str]:
    if isinstance(item, dict):
        for k in ("effective", "id", "code", "kind"):
            if isinstance(item.get(k), str):
                return (item[k], json.dumps(item, sort_keys=True))
    return ("", json.dumps(item, sort_keys=True))


def normalize(value: Any, key: str = "") -> Any:
    """The value with every set-like list sorted and ``$schema`` kept as is."""
    if isinstance(value, dict):
        return {k: normalize(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [normalize(v) for v in value]
        return items if key in ORDERED_LISTS else sorted(items, key=_sort_key)
    return value


def content_hash(documents: dict[str, Any]) -> str:
    """sha256 of the policy's meaning: independent of file order, key order and layout."""
    def strip(d: Any) -> Any:
        return {k: v for k, v in d.items() if k != "$schema"} if isinstance(d, dict) else d

    payload = normalize({name: strip(doc) for name, doc in documents.items()})
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
