"""The OpenAPI 3.1 document of the service, served at ``/openapi.json`` and kept in ``docs/openapi.json``.

Written out rather than generated from handler signatures: the service has no per-request validation
layer (the claim line's one check is ``lines.parse_line``), so the document states what ``parse_line``
accepts and what ``LineResult.as_dict`` returns. The claim line's properties come from ``lines.FIELDS``
(the same descriptions ``cmap-policy eval --help`` shows); a test checks the schemas against real answers,
and schemathesis fuzzes the running service from this document.
"""

from __future__ import annotations

from typing import Any

from ..lines import ALIASES, CLAIM_TYPES, CODE_RE, FIELDS, MAX_MODIFIERS, MODIFIER_RE, POS_RE, RCC_RE
from ..model import MAX_AGE, MAX_UNITS, Outcome
from ..reasons import KINDS

_TEXT: dict[str, Any] = {"type": "string", "maxLength": 200}
# Patterns say what to send (what lines.CHECKS take after trimming and upper-casing); a value that fits the
# schema can still be refused (a date that is not a real calendar day, a modality the program does not know).
_TYPES: dict[str, dict[str, Any]] = {
    "code": {"type": "string", "pattern": CODE_RE.pattern, "examples": ["T1016"]},
    "date": {"type": "string", "format": "date", "examples": ["2026-01-05"]},
    "modifiers": {"type": "array", "items": {"type": "string", "pattern": MODIFIER_RE.pattern},
                  "maxItems": MAX_MODIFIERS, "examples": [["93"]]},
    "pos": {"type": "string", "pattern": POS_RE.pattern, "examples": ["11"]},
    "claim_type": {"type": "string", "enum": list(CLAIM_TYPES)},
    "rcc": {"type": "string", "pattern": RCC_RE.pattern},
    "modality": {"type": "string", "examples": ["audio-video"]},
    "member_age": {"type": "integer", "minimum": 0, "maximum": MAX_AGE},
    "provider_type": _TEXT,
    "units": {"type": "integer", "minimum": 0, "maximum": MAX_UNITS},
    "established_patient": {"type": "boolean"},
    "line_id": _TEXT,
    "claim_id": _TEXT,
}
_NULLABLE_TEXT = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _claim_line() -> dict[str, Any]:
    props = {name: {**_TYPES[name], "description": text} for name, text in FIELDS.items()}
    return {"type": "object", "required": ["code", "date"], "properties": props, "additionalProperties": False,
            "description": "One claim line, as `cmap-policy eval` reads it (which also takes numbers as text, "
                           "modifiers as one string, and lower case). Also accepted: "
                           + ", ".join(f"`{a}` for `{f}`" for a, f in ALIASES.items())
                           + ". An unknown field is an error naming the field."}


_CITATION = {"type": "object", "required": ["source", "title", "url", "secondary"], "properties": {
    "source": {"type": "string"}, "title": {"type": "string"}, "url": {"type": "string"},
    "secondary": {"type": "boolean"}, "section": {"type": "string"}, "note": {"type": "string"}}}
_REASON = {"type": "object", "required": ["code", "kind", "message"], "properties": {
    "code": {"type": "string", "description": "A stable reason code (the site's reason codes page lists them)."},
    "kind": {"type": "string", "enum": list(KINDS)}, "message": {"type": "string"},
    "carc": {"type": "string", "description": "The X12 claim adjustment reason code a payer would send."},
    "rule": {"type": "string"}, "citation": _ref("Citation")}}
_DECIDED = {
    "type": "object",
    "required": ["line", "code", "date", "outcome", "reasons", "period", "modality", "attestations", "to_confirm",
                 "release", "policy_hash", "decision_id"],
    "description": "What `cmap-policy eval` prints for the line, plus the `decision_id` its decision-log record "
                   "carries.",
    "properties": {
        "line": {"type": "integer", "description": "The line's number in the request (1 for a single line)."},
        "claim_id": {"type": "string"}, "line_id": {"type": "string"},
        "code": {"type": "string"}, "date": {"type": "string", "format": "date"},
        "outcome": {"type": "string", "description": "One of: " + ", ".join(o.value for o in Outcome) + "."},
        "reasons": {"type": "array", "items": _ref("Reason")},
        "period": _NULLABLE_TEXT, "modality": _NULLABLE_TEXT,
        "attestations": {"type": "array", "items": {"type": "object", "required": ["id", "text"], "properties": {
            "id": {"type": "string"}, "text": {"type": "string"}}}},
        "to_confirm": {"type": "array", "items": {"type": "object", "required": ["kind", "guideline"],
                                                  "properties": {"kind": {"type": "string"},
                                                                 "guideline": {"type": "string"}}}},
        "release": {"type": "string"}, "policy_hash": {"type": "string"},
        "decision_id": {"type": "string"},
    },
}
_LINE_ERROR = {"type": "object", "required": ["line", "error", "field"], "properties": {
    "line": {"type": "integer"}, "error": {"type": "string"}, "field": _NULLABLE_TEXT}}
_PROBLEM = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "description": "RFC 9457 problem details; `field` names the input field at fault, when one is.",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "instance": {"type": "string"}, "field": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object", "required": ["detail"], "properties": {
                       "field": {"type": "string"}, "detail": {"type": "string"}}}}},
}
_CODE_REPORT = {
    "type": "object",
    "required": ["code", "listed", "system", "description", "category", "release", "date", "in_force", "periods",
                 "policy_hash", "authority"],
    "description": "What `cmap-policy show CODE --format json` prints.",
    "properties": {"code": {"type": "string"}, "listed": {"type": "boolean"}, "system": _NULLABLE_TEXT,
                   "description": _NULLABLE_TEXT, "category": _NULLABLE_TEXT, "release": {"type": "string"},
                   "date": _NULLABLE_TEXT, "in_force": _NULLABLE_TEXT,
                   "periods": {"type": "array", "items": {"type": "object"}},
                   "policy_hash": {"type": "string"}, "authority": {"type": "string"}},
}
_RELEASES = {"type": "object", "required": ["latest", "policy_hash", "releases"], "properties": {
    "latest": {"type": "string"}, "policy_hash": {"type": "string"},
    "releases": {"type": "array", "items": {"type": "object", "required": ["id", "published", "effective"],
                                            "properties": {"id": {"type": "string"},
                                                           "published": {"type": "string", "format": "date"},
                                                           "effective": {"type": "string", "format": "date"},
                                                           "implements": {"type": "array",
                                                                          "items": {"type": "string"}},
                                                           "summary": {"type": "string"}}}}}}
_CHANGE = {"type": "object", "required": ["code", "action", "effective", "end", "modalities", "text"], "properties": {
    "code": {"type": "string"}, "description": {"type": "string"},
    "action": {"type": "string", "enum": ["added", "changed", "ended"]},
    "effective": {"type": "string", "format": "date"}, "end": _NULLABLE_TEXT, "status": {"type": "string"},
    "modalities": {"type": "array", "items": {"type": "string"}}, "removed": {"type": "boolean"},
    "text": {"type": "string"}}}
_RELEASE_CHANGES = {
    "type": "object", "required": ["release", "title", "published", "effective", "summary", "sources", "changes"],
    "description": "What the site's Atom feed entry of the release holds (cmap_policy.changes.release_entry).",
    "properties": {"release": {"type": "string"}, "ordinal": {"type": "integer"}, "title": {"type": "string"},
                   "published": {"type": "string", "format": "date"},
                   "effective": {"type": "string", "format": "date"}, "dates_known": {"type": "boolean"},
                   "summary": {"type": "string"},
                   "sources": {"type": "array", "items": {"type": "object", "properties": {
                       "id": {"type": "string"}, "title": {"type": "string"}, "url": {"type": "string"},
                       "secondary": {"type": "boolean"}}}},
                   "changes": {"type": "array", "items": _CHANGE}}}
_HEALTH = {"type": "object", "required": ["status"], "properties": {
    "status": {"type": "string", "enum": ["ok", "loading", "failed"]},
    "release": {"type": "string"}, "policy_hash": {"type": "string"}, "root": {"type": "string"},
    "loaded_at": {"type": "string"}, "reloads": {"type": "integer"}, "failed_reloads": {"type": "integer"},
    "reload_error": {"type": "object", "properties": {"at": {"type": "string"},
                                                      "problems": {"type": "array", "items": {"type": "string"}}}},
    "decision_log": {"type": "object"}}}
_CARD = {"type": "object", "required": ["summary", "indicator", "source"], "properties": {
    "uuid": {"type": "string"}, "summary": {"type": "string", "maxLength": 140},
    "indicator": {"type": "string", "enum": ["info", "warning", "critical"]}, "detail": {"type": "string"},
    "source": {"type": "object", "required": ["label"], "properties": {"label": {"type": "string"},
                                                                        "url": {"type": "string"}}},
    "links": {"type": "array", "items": {"type": "object", "required": ["label", "url", "type"], "properties": {
        "label": {"type": "string"}, "url": {"type": "string"}, "type": {"type": "string"}}}}}}
_HOOK_REQUEST = {"type": "object", "required": ["hook", "hookInstance", "context"], "properties": {
    "hook": {"type": "string"}, "hookInstance": {"type": "string"}, "fhirServer": {"type": "string"},
    "context": {"type": "object", "description": "appointment-book: `appointments`, a Bundle of Appointments; "
                                                 "order-sign: `draftOrders`, a Bundle of orders."},
    "prefetch": {"type": "object", "description": "`coverage`: the patient's Coverage (or a Bundle of them), "
                                                  "for CRD coverage information."}}}
_HOOK_RESPONSE = {"type": "object", "required": ["cards"], "properties": {
    "cards": {"type": "array", "items": _ref("Card")},
    "systemActions": {"type": "array", "items": {"type": "object", "required": ["type"]}}}}
_DISCOVERY = {"type": "object", "required": ["services"], "properties": {"services": {"type": "array", "items": {
    "type": "object", "required": ["hook", "id", "description"], "properties": {
        "hook": {"type": "string"}, "id": {"type": "string"}, "title": {"type": "string"},
        "description": {"type": "string"}, "prefetch": {"type": "object"}}}}}}


def _problems(*statuses: int) -> dict[str, Any]:
    what = {400: "The request is not valid (the problem names the field).", 401: "No valid bearer token.",
            404: "No such service or release.", 408: "The body took too long to arrive.", 413: "The body is too large.",
            422: "The claim line is not valid (the problem names the field).",
            503: "No policy is loaded yet (see /health)."}
    return {str(s): {"description": what[s], "content": {"application/problem+json": {"schema": _ref("Problem")}}}
            for s in statuses}


def _ok(schema: dict[str, Any], description: str, media: str = "application/json") -> dict[str, Any]:
    return {"200": {"description": description, "content": {media: {"schema": schema}}}}


_RELEASE_PARAM = {"name": "release", "in": "query", "required": False, "schema": {"type": "string"},
                  "description": "Decide as the table was published in this release (see /v1/releases). "
                                 "Default: the latest."}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "cmap-policy decision service", "version": "1",
                 "description": "Connecticut Medicaid (CMAP, HUSKY Health) telehealth decisions for claim lines, "
                                "the CMAP telehealth table's codes and releases, and CDS Hooks services. "
                                "Run with `cmap-policy serve`."},
        "security": [{}, {"bearer": []}],
        "paths": {
            "/v1/decide": {"post": {
                "summary": "Decide one claim line", "operationId": "decide", "parameters": [_RELEASE_PARAM],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ClaimLine")}}},
                "responses": {**_ok(_ref("Decided"), "The decision."), **_problems(400, 401, 408, 413, 422, 503)}}},
            "/v1/decide/batch": {"post": {
                "summary": "Decide many claim lines, streamed back in order",
                "description": "JSON Lines (one line object per line) or a JSON array of line objects. The answer "
                               "is JSON Lines, one result per line in the order sent: a decision, or the line's "
                               "error in place (lines in = results out).",
                "operationId": "decideBatch", "parameters": [_RELEASE_PARAM],
                "requestBody": {"required": True, "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "array", "items": _ref("ClaimLine")}}}},
                "responses": {**_ok({"type": "string"}, "One JSON result per line: `Decided` or `LineError`.",
                                    "application/x-ndjson"), **_problems(400, 401, 408, 413, 503)}}},
            "/v1/codes/{code}": {"get": {
                "summary": "A code's rows on the telehealth table", "operationId": "code",
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "date", "in": "query", "required": False,
                                "schema": {"type": "string", "format": "date"},
                                "description": "Also say which row is in force on this date of service."},
                               _RELEASE_PARAM],
                "responses": {**_ok(_ref("CodeReport"), "The code's rows."), **_problems(400, 401, 503)}}},
            "/v1/releases": {"get": {
                "summary": "The releases of the table, oldest first", "operationId": "releases",
                "parameters": [_RELEASE_PARAM],
                "responses": {**_ok(_ref("Releases"), "The releases, up to `release` when given."),
                              **_problems(400, 401, 503)}}},
            "/v1/releases/{id}/changes": {"get": {
                "summary": "What a release added, ended and changed: the content of its Atom feed entry",
                "operationId": "releaseChanges",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "description": "A release id, as /v1/releases lists them.",
                                "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
                                           "maxLength": 64}}],
                "responses": {**_ok(_ref("ReleaseChanges"), "The release's changes, code by code."),
                              **_problems(401, 404, 503)}}},
            "/health": {"get": {
                "summary": "Ready once a policy is loaded", "operationId": "health", "security": [{}],
                "responses": {**_ok(_ref("Health"), "A policy is loaded and serving (`reload_error` says when "
                                                    "the last change of the tree failed to load)."),
                              "503": {"description": "No policy loaded yet, or the first load failed.",
                                      "content": {"application/json": {"schema": _ref("Health")}}}}}},
            "/metrics": {"get": {
                "summary": "Prometheus metrics", "operationId": "metrics",
                "responses": {**_ok({"type": "string"}, "The Prometheus text format.", "text/plain"),
                              **_problems(401)}}},
            "/cds-services": {"get": {
                "summary": "CDS Hooks discovery", "operationId": "cdsDiscovery",
                "responses": {**_ok(_ref("CdsDiscovery"), "The CDS services."), **_problems(401)}}},
            "/cds-services/{service}": {"post": {
                "summary": "Call a CDS service (appointment-book or order-sign)", "operationId": "cdsService",
                "parameters": [{"name": "service", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": ["appointment-book", "order-sign"]}},
                               _RELEASE_PARAM],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CdsRequest")}}},
                "responses": {**_ok(_ref("CdsResponse"), "Cards, and CRD coverage information."),
                              **_problems(400, 401, 404, 408, 413, 503)}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "When the service runs with --token-file."}},
            "schemas": {"ClaimLine": _claim_line(), "Decided": _DECIDED, "LineError": _LINE_ERROR,
                        "Reason": _REASON, "Citation": _CITATION, "Problem": _PROBLEM, "CodeReport": _CODE_REPORT,
                        "Releases": _RELEASES, "ReleaseChanges": _RELEASE_CHANGES, "Health": _HEALTH, "Card": _CARD,
                        "CdsRequest": _HOOK_REQUEST,
                        "CdsResponse": _HOOK_RESPONSE, "CdsDiscovery": _DISCOVERY},
        },
    }


if __name__ == "__main__":  # python -m cmap_policy.service.openapi > docs/openapi.json
    import json

    print(json.dumps(document(), indent=2, ensure_ascii=False))
