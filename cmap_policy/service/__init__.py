"""The decision service: ``cmap-policy serve``, claim lines decided over HTTP for claims systems and EHRs.

Claims systems and EHR scheduling ask for decisions over HTTP, as Open Policy Agent, the Cedar agent and
the GoRules agent serve theirs. The service is a thin layer over the Python API: a line is read and decided
by ``results.decide_record`` and sent as ``results.LineResult.as_dict`` makes it,
so that a client gets exactly what ``cmap-policy eval`` prints for the same line.

``app`` (the ASGI application and its routes), ``decisions`` (a line in, its JSON out, with the decision's
JSON kept per decision), ``state`` (the policy in service, swapped whole on a reload; a signed bundle only
once verified), ``reload`` (watching the policy folder or bundle), ``log`` (the decision log and the access
log, written by a thread off the request path, synced as ``--log-fsync`` says), ``chain`` (the decision
log's hash chain, and ``log verify``), ``replay`` (a decision log re-decided against another policy),
``metrics`` (Prometheus), ``cdshooks`` (CDS Hooks 2.0 services with Da Vinci CRD coverage information),
``openapi`` (the API document) and ``problems`` (RFC 9457 errors). It needs the ``serve`` extra (Starlette,
uvicorn and friends).
"""

from .app import ServiceConfig, create_app

__all__ = ["ServiceConfig", "create_app"]
