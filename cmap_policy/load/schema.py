"""Check policy files against the JSON Schemas under ``schema/``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Problem
from ..resources import schema_dir
from .jsonfile import JsonDoc, pointer_of

if TYPE_CHECKING:  # jsonschema takes a tenth of a second to import: only validation needs it
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

KINDS = ("program", "releases", "code", "tests", "faq", "claim-line")


@cache
def _registry(root: str) -> tuple[Registry, dict[str, dict[str, Any]]]:
    from referencing import Registry, Resource

    schemas: dict[str, dict[str, Any]] = {}
    resources = []
    for path in sorted(Path(root).glob("*.schema.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        schemas[path.name.removesuffix(".schema.json")] = doc
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources), schemas


def schema(kind: str) -> dict[str, Any]:
    return _registry(str(schema_dir()))[1][kind]


@cache
def validator(kind: str) -> Draft202012Validator:
    registry, schemas = _registry(str(schema_dir()))
    from jsonschema import Draft202012Validator, FormatChecker

    return Draft202012Validator(schemas[kind], registry=registry, format_checker=FormatChecker())


_HINTS = {
    "required": "add the missing field",
    "additionalProperties": "remove the field or fix its spelling; the schema reference lists the allowed fields",
    "pattern": "fix the value's shape",
    "enum": "use one of the allowed values",
    "type": "change the value's type",
    "format": "write a real calendar date as YYYY-MM-DD",
    "minItems": "add at least one item",
    "uniqueItems": "remove the repeated item",
    "dependentRequired": "end and ended_in go together: set both or neither",
    "minLength": "the value may not be empty",
    "oneOf": "the value matches none of the allowed shapes",
}


def _message(err: ValidationError) -> str:
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        if extra:
            return f"unknown field {', '.join(repr(e) for e in extra)}"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(repr(v) for v in err.validator_value)}"
    if err.validator == "format" and err.validator_value == "date":
        return f"{err.instance!r} is not a real calendar date"
    return str(err.message)


def check(doc: JsonDoc, kind: str) -> list[Problem]:
    """Every schema problem of ``doc``, the most useful first (jsonschema's relevance order)."""
    from jsonschema.exceptions import relevance

    errors = sorted(validator(kind).iter_errors(doc.data), key=relevance, reverse=True)
    problems = []
    for err in errors:
        # descend into oneOf/anyOf the way best_match does, so the message names the real field
        while err.context:
            err = min(err.context, key=relevance)
        pointer = pointer_of(err.absolute_path)
        problems.append(
            doc.problem(pointer, _message(err), f"schema:{err.validator}", _HINTS.get(str(err.validator), ""))
        )
    return problems
