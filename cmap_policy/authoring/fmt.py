"""``fmt``: one canonical layout for every policy file, so that a diff shows only real changes.

The canonical form of a document is: keys in the order its JSON Schema lists
them (``$schema`` first, keys the schema does not know after, alphabetically),
two-space indentation, non-ASCII text kept as is, and a newline at the end.
For the files the policy hash covers (program, releases, codes) every set-like
list is also sorted with ``canonical.normalize``, the same function the hash
uses, so formatting can never change the hash. Other documents that point at
a schema (author tests, FAQs) keep their lists in the author's order: there the
order carries meaning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .. import guard
from ..errors import FileRefusedError, FmtError
from ..guard import read_tree_file, tree_files
from ..load.canonical import normalize
from ..resources import INSTALLED_COPY, is_installed_copy, schema_dir, working_policy_dir

# Documents whose lists are sets: the ones ``content_hash`` reads.
HASHED_KINDS = frozenset({"program", "releases", "code"})




@cache
def _schemas(root: str) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(root).glob("*.schema.json"))}


def _all_schemas() -> dict[str, dict[str, Any]]:
    return _schemas(str(schema_dir()))


def _pointer(doc: dict[str, Any], pointer: str) -> Any:
    node: Any = doc
    for part in pointer.lstrip("/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@dataclass(frozen=True)
class _Node:
    """A place in a schema: the sub-schema and the file it belongs to (for relative ``$ref``)."""

    schema: dict[str, Any]
    file: str


def _resolve(node: _Node) -> _Node:
    seen = 0
    while "$ref" in node.schema and seen < 20:
        ref = node.schema["$ref"]
        file, _, pointer = ref.partition("#")
        file = file or node.file
        doc = _all_schemas().get(file)
        if doc is None:
            return node
        node = _Node(_pointer(doc, pointer), file)
        seen += 1
    return node


def _parts(node: _Node) -> list[_Node]:
    """The node and every sub-schema whose properties also describe the same value."""
    node = _resolve(node)
    out = [node]
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.schema.get(key, []):
            if isinstance(sub, dict):
                out.extend(_parts(_Node(sub, node.file)))
    for key in ("then", "else"):
        sub = node.schema.get(key)
        if isinstance(sub, dict):
            out.extend(_parts(_Node(sub, node.file)))
    return out


def _properties(node: _Node | None) -> tuple[list[str], dict[str, _Node], _Node | None]:
    if node is None:
        return [], {}, None
    order: list[str] = []
    children: dict[str, _Node] = {}
    extra: _Node | None = None
    for part in _parts(node):
        for key, sub in part.schema.get("properties", {}).items():
            if key not in children:
                order.append(key)
                children[key] = _Node(sub, part.file)
        add = part.schema.get("additionalProperties")
        if isinstance(add, dict) and extra is None:
            extra = _Node(add, part.file)
    return order, children, extra


def _items(node: _Node | None) -> _Node | None:
    if node is None:
        return None
    for part in _parts(node):
        items = part.schema.get("items")
        if isinstance(items, dict):
            return _Node(items, part.file)
    return None


def _ordered(value: Any, node: _Node | None) -> Any:
    if isinstance(value, dict):
        order, children, extra = _properties(node)
        keys = [k for k in order if k in value]
        keys += sorted(k for k in value if k not in children)
        if "$schema" in value:
            keys = ["$schema", *(k for k in keys if k != "$schema")]
        return {k: _ordered(value[k], children.get(k, extra)) for k in keys}
    if isinstance(value, list):
        child = _items(node)
        return [_ordered(v, child) for v in value]
    return value


def schema_kind(data: Any, path: Path | None = None) -> str | None:
    """The kind of a policy document (``code``, ``program``...): from its ``$schema``, else from its place."""
    if isinstance(data, dict) and isinstance(data.get("$schema"), str):
        name: str = data["$schema"].replace("\\", "/").rsplit("/", 1)[-1]
        if name.endswith(".schema.json") and name in _all_schemas():
            return name.removesuffix(".schema.json")
    if path is not None:
        if path.name in ("program.json", "releases.json"):
            return path.stem
        if path.parent.name == "codes":
            return "code"
    return None


def format_document(data: Any, kind: str | None) -> str:
    """The canonical text of one policy document of schema ``kind`` (None: key order and layout only)."""
    if kind in HASHED_KINDS:
        data = normalize(data)
    node = None
    if kind is not None:
        doc = _all_schemas().get(f"{kind}.schema.json")
        if doc is not None:
            node = _Node(doc, f"{kind}.schema.json")
    return json.dumps(_ordered(data, node), indent=2, ensure_ascii=False) + "\n"


def format_text(text: str, path: Path | None = None) -> str:
    """The canonical form of the JSON ``text`` (the contents of ``path``); ``FmtError`` if it is not JSON."""
    try:
        data = guard.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{shown(path)}:{exc.lineno}:{exc.colno}" if path else f"line {exc.lineno}, column {exc.colno}"
        raise FmtError(f"{where}: {guard.describe(exc)}; fix it by hand (check for a missing comma, quote "
                       "or bracket near this place), then run fmt again") from None
    if guard.may_hold_surrogates(text) and guard.lone_surrogate(data) is not None:
        where = shown(path) if path else "the text"
        raise FmtError(f"{where}: {guard.lone_surrogate(data)}: a lone surrogate escape (such as \\ud800) is not a "
                       "character; fix it by hand, then run fmt again")
    return format_document(data, schema_kind(data, path))


def policy_files(path: str | Path | None = None) -> list[Path]:
    """The JSON files under ``path`` (a folder or one file; default: the policy folder), in a stable order."""
    root = Path(path) if path is not None else working_policy_dir()
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FmtError(f"{root}: no such file or folder; give a policy folder or a .json file")
    return tree_files(root, "*.json", recursive=True)


@dataclass(frozen=True)
class FmtResult:
    """What ``fmt`` found: files it changed (or would change, with ``check``) and files it could not read."""

    changed: tuple[Path, ...]
    errors: tuple[str, ...]
    checked: int

    @property
    def ok(self) -> bool:
        return not self.changed and not self.errors


def fmt(path: str | Path | None = None, check: bool = False) -> FmtResult:
    """Rewrite every policy file under ``path`` in canonical form; with ``check``, only report which would change.

    A file that is not valid JSON is reported in ``errors`` and left untouched.
    """
    changed: list[Path] = []
    errors: list[str] = []
    folder = Path(path) if path is not None else working_policy_dir()
    if not check and is_installed_copy(folder):
        raise FmtError(INSTALLED_COPY)
    files = policy_files(folder)
    within = folder if folder.is_dir() else None
    for file in files:
        try:
            # only a regular file inside the folder given: a link out of it, a FIFO or a device is named, not read
            raw = read_tree_file(file, within or file.parent)
            text = raw.decode("utf-8")
        except FileRefusedError as exc:
            errors.append(f"{shown(file)}: {exc}")
            continue
        except OSError as exc:
            errors.append(f"{shown(file)}: cannot read the file: {exc.strerror}")
            continue
        except UnicodeDecodeError as exc:
            errors.append(f"{shown(file)}: the file is not UTF-8 (byte {exc.start}); save it as UTF-8")
            continue
        try:
            canonical = format_text(text, file)
        except FmtError as err:
            errors.append(str(err))
            continue
        if canonical != text:
            changed.append(file)
            if not check:
                write_text(file, canonical)
    return FmtResult(tuple(changed), tuple(errors), len(files))


def shown(path: Path) -> str:
    """A path as the author would type it: relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` so that a reader never sees half a file: a temporary file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    tmp.replace(path)
