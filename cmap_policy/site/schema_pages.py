"""Reference pages for policy authors, rendered from the JSON Schemas' own titles and descriptions.

The schemas are the single place a field is documented: editors show the same text as you type, and
these pages cannot drift from what the validator checks.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

SchemaDoc = dict[str, Any]


def load_schemas(folder: Path) -> dict[str, SchemaDoc]:
    """Schema name (``code`` for code.schema.json) to its document, sorted by name."""
    return {p.name.removesuffix(".schema.json"): json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(folder.glob("*.schema.json"))}


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: no HTML, no pipes, no line breaks."""
    return escape(text).replace("|", "&#124;").replace("\n", " ")


def _code(text: str) -> str:
    return f"<code>{_cell(text)}</code>"


def _ref_link(ref: str, current: str) -> str:
    """A Markdown link to the definition ``ref`` names, on this page or on another schema's page."""
    file, _, pointer = ref.partition("#")
    name = pointer.rsplit("/", 1)[-1] if pointer else ""
    page = file.removesuffix(".schema.json") if file else current
    target = f"{page}.md" if page != current else ""
    anchor = f"#{name}" if name else ""
    label = name or page
    return f"[{label}]({target}{anchor})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def describe_type(node: SchemaDoc, current: str) -> str:
    """A short human description of what values a schema node accepts."""
    if "$ref" in node:
        return _ref_link(node["$ref"], current)
    if "enum" in node:
        return "one of " + ", ".join(_code(json.dumps(v)) for v in node["enum"])
    if "const" in node:
        return _code(json.dumps(node["const"]))
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(describe_type(n, current) for n in node[key])
    kind = node.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    out = str(kind)
    if kind == "array":
        items = node.get("items")
        out = "list of " + (describe_type(items, current) if isinstance(items, dict) else "values")
        if node.get("minItems"):
            out += f", at least {_count(node['minItems'], 'item')}"
        if node.get("uniqueItems"):
            out += ", no repeats"
    if kind == "object" and "properties" in node and "title" in node:
        out = "object (below)"
    if "pattern" in node:
        out += f", pattern {_code(node['pattern'])}"
    if "format" in node:
        out += f", format {node['format']}"
    if node.get("minLength") == 1:
        out += ", not empty"
    elif "minLength" in node:
        out += f", at least {_count(node['minLength'], 'character')}"
    if "maxLength" in node:
        out += f", at most {_count(node['maxLength'], 'character')}"
    for key, word in (("minimum", "at least"), ("maximum", "at most")):
        if key in node:
            out += f", {word} {node[key]}"
    return out


def _fields_table(node: SchemaDoc, current: str) -> list[str]:
    props: dict[str, SchemaDoc] = node.get("properties", {})
    if not props:
        return []
    required = set(node.get("required", []))
    lines = ["| Field | Title | Description | Accepts | Required |", "|---|---|---|---|---|"]
    for name, prop in props.items():
        name_cell = f'<code class="cmap-field-name">{_cell(name)}</code>'
        lines.append(f"| {name_cell} | {_cell(prop.get('title', ''))} | {_cell(prop.get('description', ''))} | "
                     f"{describe_type(prop, current)} | {'yes' if name in required else 'no'} |")
    return lines


def _nested(node: SchemaDoc, path: str, current: str, out: list[str], level: int) -> None:
    """Objects defined inline (not by $ref) get a section of their own, after the table that names them."""
    for name, prop in node.get("properties", {}).items():
        target = prop.get("items", {}) if prop.get("type") == "array" else prop
        if isinstance(target, dict) and "properties" in target:
            here = f"{path}.{name}" if path else name
            out += ["", f"{'#' * level} {here}", "", _cell(target.get("description", prop.get("description", ""))),
                    ""]
            out += _fields_table(target, current)
            _nested(target, here, current, out, min(level + 1, 6))


def schema_page(name: str, doc: SchemaDoc, file_kinds: dict[str, str]) -> str:
    """The Markdown reference page of one schema."""
    out = [f"# {doc.get('title', name)}", "", _cell(doc.get("description", "")), ""]
    out.append(f"Schema file: `schema/{name}.schema.json` · `$id`: `{doc.get('$id', '')}`")
    if name in file_kinds:
        out += ["", f"Files of this kind: {file_kinds[name]}"]
    if "properties" in doc:
        out += ["", "## Fields", ""]
        out += _fields_table(doc, name)
        _nested(doc, "", name, out, 3)
    defs: dict[str, SchemaDoc] = doc.get("$defs", {})
    if defs:
        out += ["", "## Definitions", ""]
        for def_name, node in defs.items():
            out += [f"### {node.get('title', def_name)} {{#{def_name}}}", "",
                    f"`{def_name}`: {_cell(node.get('description', ''))}", ""]
            if "properties" in node:
                out += _fields_table(node, name)
                _nested(node, def_name, name, out, 4)
            else:
                out.append(f"Accepts: {describe_type(node, name)}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def schema_index(schemas: dict[str, SchemaDoc], file_kinds: dict[str, str]) -> str:
    out = ["# Schema reference", "",
           "Every policy file is checked against one of these JSON Schemas (draft 2020-12). Each page below is "
           "rendered from the schema's own titles and descriptions, the same text an editor shows as you type.",
           "", "| Schema | What it describes | Files |", "|---|---|---|"]
    for name, doc in schemas.items():
        out.append(f"| [{_cell(doc.get('title', name))}]({name}.md) | {_cell(doc.get('description', ''))} | "
                   f"{file_kinds.get(name, 'see its page')} |")
    return "\n".join(out) + "\n"


def every_property_documented(doc: SchemaDoc, path: str = "") -> list[str]:
    """Paths of properties (at any depth) that lack a title or a description: the reference needs both."""
    missing: list[str] = []
    for name, prop in doc.get("properties", {}).items():
        here = f"{path}/{name}"
        if not (prop.get("title") and prop.get("description")):
            missing.append(here)
        missing += every_property_documented(prop, here)
        if isinstance(prop.get("items"), dict):
            missing += every_property_documented(prop["items"], here + "/items")
    for name, node in doc.get("$defs", {}).items():
        missing += every_property_documented(node, f"{path}/$defs/{name}")
    return missing
