"""Errors as RFC 9457 problem details (``application/problem+json``), each naming the field at fault.

Every error the service sends is built here, so that a client meets one shape: ``type``, ``title``,
``status``, ``detail``, ``instance`` and, when one input field is at fault, ``field`` and ``errors``
(each with the field and what is wrong with it). No traceback or exception text from inside the service
is ever put in one.
"""

from __future__ import annotations

from typing import Any

import orjson

PROBLEM_TYPE = "urn:cmap-policy:problem:"
MEDIA_TYPE = "application/problem+json"

# slug -> title: the kinds of problem the service reports, documented in the OpenAPI document
TITLES = {
    "invalid-line": "The claim line is not valid",
    "invalid-request": "The request is not valid",
    "invalid-json": "The request body is not valid JSON",
    "unknown-release": "No such release",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "unauthorized": "A valid bearer token is required",
    "too-large": "The request body is too large",
    "timeout": "The request took too long",
    "unsupported-media-type": "Unsupported media type",
    "not-ready": "No policy is loaded yet",
    "log-failed": "The decision could not be written to the decision log",
    "internal": "Internal error",
}


class ProblemError(Exception):
    """Raised by a handler to answer with a problem; ``field`` names the input field at fault."""

    def __init__(self, status: int, slug: str, detail: str, *, field: str | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.field = field
        self.errors = errors


MAX_SHOWN = 200  # characters of a request's path a problem repeats: a path can be as long as the client likes


def shown(path: str) -> str:
    """A request path as a problem repeats it: its first MAX_SHOWN characters, and … when there was more."""
    return path if len(path) <= MAX_SHOWN else path[:MAX_SHOWN] + "…"


def problem_body(status: int, slug: str, detail: str, *, instance: str = "", field: str | None = None,
                 errors: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {"type": PROBLEM_TYPE + slug, "title": TITLES[slug], "status": status, "detail": detail}
    if instance:
        body["instance"] = shown(instance)
    if field is not None:
        body["field"] = field
        body["errors"] = errors if errors is not None else [{"field": field, "detail": detail}]
    elif errors:
        body["errors"] = errors
    return orjson.dumps(body)


def from_error(err: ProblemError, instance: str = "") -> bytes:
    return problem_body(err.status, err.slug, err.detail, instance=instance, field=err.field, errors=err.errors)
