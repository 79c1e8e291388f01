"""The ASGI application: the JSON API under /v1, CDS Hooks, health, metrics and the OpenAPI document.

Starlette on uvicorn: Starlette routes and little else (no per-request validation layer: the claim line's
one check is ``lines.parse_line``), so a single-line decision costs the interpreter, two ``orjson`` calls and
the HTTP server. The middleware is plain ASGI (a ``BaseHTTPMiddleware`` would add a task per request): it
checks the bearer token, times the request, counts it and writes the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import orjson
import pyarrow as pa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .. import api, formats
from ..changes import change_report, release_entry
from ..errors import LineError, UnknownReleaseError
from ..lines import check_code, parse_date
from . import batch, cdshooks
from .decisions import Answer, read_json
from .log import DEFAULT_FSYNC_INTERVAL_MS, AccessLog, DecisionLog, iso_time
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .metrics import Metrics
from .openapi import document
from .problems import MEDIA_TYPE as PROBLEM_TYPE
from .problems import ProblemError, from_error, problem_body, shown
from .reload import reload_once, watch
from .state import Failure, PolicyHolder, Serving, SignedBundle

JSON = "application/json"
SPOOL_MEMORY = 8 << 20  # bytes of a batch request's body held in memory before it goes to a temporary file
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("cmap_policy.service")


@dataclass
class ServiceConfig:
    """What ``cmap-policy serve`` passes to the app; every field has the command's default."""

    policy: Path | None = None  # None: the bundled policy
    log: Path | None = None  # the decision log; None: no decision log
    log_mask: tuple[str, ...] = ()
    log_max_bytes: int = 100 * 1024 * 1024
    log_backups: int = 5
    token: str | None = None  # the bearer token every request but /health must carry
    max_body: int = 1024 * 1024  # bytes, for a single line and CDS Hooks requests
    max_batch_body: int = 256 * 1024 * 1024  # bytes, for /v1/decide/batch
    body_timeout: float = 30.0  # seconds to receive a request body
    watch: bool = True
    site_url: str | None = None  # the published site, for links to a code's page
    access_log: bool = True
    access_stream: IO[bytes] | None = field(default=None, repr=False)  # default: standard error
    bundle: SignedBundle | None = None  # serve this signed bundle (verified first) instead of a folder
    log_fsync: str = "never"  # never, interval or always (docs/reliability.md says what each promises)
    log_fsync_interval: float = DEFAULT_FSYNC_INTERVAL_MS / 1000  # seconds, for interval
    tls: bool = False  # served over TLS: answers carry Strict-Transport-Security


class Service:
    """The app's state: the policy holder, the logs, the metrics, the config."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.holder = PolicyHolder(config.policy, config.bundle)
        self.metrics = Metrics()
        self.decision_log: DecisionLog | None = None
        self.access_log: AccessLog | None = None
        self.openapi = orjson.dumps(document())
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._columnar: tuple[Serving, batch.Columnar] | None = None

    # --- lifecycle ---

    async def start(self) -> None:
        c = self.config
        if c.log is not None:
            self.decision_log = DecisionLog(c.log, mask=c.log_mask, max_bytes=c.log_max_bytes, backups=c.log_backups,
                                            fsync=c.log_fsync, fsync_interval=c.log_fsync_interval)
        if c.access_log:
            self.access_log = AccessLog(c.access_stream)
        # the first load runs in the background: /health says "loading" until it is done
        self._tasks.append(asyncio.create_task(self._first_load()))

    async def _first_load(self) -> None:
        await reload_once(self.holder, self._loaded)
        root = self.config.bundle.path if self.config.bundle is not None else self.config.policy
        if self.config.watch and root is not None:
            await watch(self.holder, root, self._stop, self._loaded)

    def _loaded(self, result: Serving | Failure, reload: bool) -> None:
        if isinstance(result, Failure):
            self.metrics.reload_result(result.lines(), counted=reload)
            for line in result.lines():
                log.error("policy not loaded, the previous one (if any) keeps serving: %s", line)
            return
        self.metrics.reload_result(None, counted=reload)
        p = result.policy
        self.metrics.serving(p.latest.id, p.hash, p.root, result.loaded_at, result.key_id)
        signed = f", signed by key {result.key_id}" if result.key_id else ""
        log.info("serving release %s, policy hash %s%s", p.latest.id, p.hash[:12], signed)

    async def stop(self) -> None:
        """After uvicorn has finished the in-flight requests: stop watching, flush and close the logs."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.decision_log is not None:
            await asyncio.to_thread(self.decision_log.close)
            head = self.decision_log.head()
            # the last hash, kept outside the log itself: `cmap-policy log verify --head` checks the end against it
            log.info("decision log closed at seq %d, head hash %s", head["seq"], head["hash"])
        if self.access_log is not None:
            await asyncio.to_thread(self.access_log.close)

    # --- helpers ---

    def serving(self) -> Serving:
        serving = self.holder.serving
        if serving is None:
            raise ProblemError(503, "not-ready", "the policy is still loading" if self.holder.failure is None
                               else "the policy failed to load; see /health")
        return serving

    async def _chunks(self, request: Request, limit: int) -> AsyncIterator[bytes]:
        """The request body's chunks, refused (413) past ``limit`` bytes and (408) when it takes too long."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ProblemError(413, "too-large", f"the body is {declared} bytes; the limit is {limit}")
        size = 0
        try:
            async with asyncio.timeout(self.config.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise ProblemError(413, "too-large", f"the body is over the limit of {limit} bytes")
                    yield chunk
        except TimeoutError:
            raise ProblemError(408, "timeout", f"the body did not arrive within {self.config.body_timeout:g} "
                               "seconds") from None
        except ClientDisconnect:
            raise ProblemError(400, "invalid-request", "the client went away before the body arrived") from None

    async def body(self, request: Request, limit: int) -> bytes:
        """The request body, held whole (a single line, a CDS Hooks request)."""
        return b"".join([chunk async for chunk in self._chunks(request, limit)])

    async def spool(self, request: Request, limit: int) -> IO[bytes]:
        """The request body in a spool: in memory up to SPOOL_MEMORY bytes, then in a temporary file."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 -- the caller closes it
        try:
            async for chunk in self._chunks(request, limit):
                spool.write(chunk)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return cast(IO[bytes], spool)

    def columnar(self, serving: Serving) -> batch.Columnar:
        """The batch engine of the policy serving now (made at its first batch request)."""
        held = self._columnar
        if held is None or held[0] is not serving:
            held = self._columnar = (serving, batch.Columnar(serving.decider))
        return held[1]

    def record_batch(self, decided: batch.Decided, ids: pa.Array, serving: Serving) -> None:
        """Queue a batch's decision records and count its decisions and errors: done before it is sent (in a
        worker thread: with ``--log-fsync always`` it returns once the records are on the disk, and a batch
        that cannot be written ends the answer there, before the batch is sent)."""
        decision_log = self.decision_log
        if decision_log is not None:
            answers = batch.answers_for_log(decided, ids, bool(decision_log.mask))
            if self.config.log_fsync == "always":
                synced = threading.Event()
                errors: list[str | None] = []

                def done(error: str | None) -> None:  # called from the writer thread
                    errors.append(error)
                    synced.set()

                decision_log.record_many(answers, "/v1/decide/batch", serving.key_id, done)
                synced.wait()
                if errors and errors[0] is not None:
                    raise ProblemError(503, "log-failed", "the decisions could not be written to the decision log")
            else:
                decision_log.record_many(answers, "/v1/decide/batch", serving.key_id)
        rows = decided.enc.rows
        self.metrics.decided_counts(batch.decision_counts(decided), [decided.seconds / rows] if rows else [])
        for err in decided.errors:
            self.metrics.line_error(err.field)

    async def log(self, answers: list[Answer], source: str, serving: Serving) -> None:
        """Queue the decision records; with ``--log-fsync always``, return once they are on the disk (503 if
        they cannot be written: an answer is never sent for a decision the log does not hold)."""
        decision_log = self.decision_log
        if decision_log is None:
            return
        if self.config.log_fsync != "always":
            decision_log.record_many(answers, source, serving.key_id)
            return
        loop = asyncio.get_running_loop()
        synced: asyncio.Future[str | None] = loop.create_future()

        def done(error: str | None) -> None:  # called from the writer thread
            loop.call_soon_threadsafe(_settle, synced, error)

        decision_log.record_many(answers, source, serving.key_id, done)
        if await synced is not None:
            raise ProblemError(503, "log-failed", "the decision could not be written to the decision log; "
                               "see /health")

    async def record(self, answers: list[Answer], source: str, serving: Serving) -> None:
        """Log the decision records and count the decisions: done before the answers are sent."""
        await self.log(answers, source, serving)
        decided = [a.result.decision for a in answers if a.result.decision is not None]
        self.metrics.decided_many(decided, [a.seconds for a in answers if a.result.decision is not None])
        for a in answers:
            if a.result.error is not None:
                self.metrics.line_error(a.result.error.field)


def _release(request: Request, serving: Serving) -> str | None:
    release = request.query_params.get("release") or None
    if release is not None and release not in serving.decider.release_ids:
        try:
            serving.policy.release(release)
        except UnknownReleaseError as err:
            raise ProblemError(400, "unknown-release", str(err), field="release") from None
    return release


def _json(data: Any, status: int = 200, media_type: str = JSON, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=media_type, headers=headers)


def _settle(future: asyncio.Future[str | None], error: str | None) -> None:
    if not future.done():
        future.set_result(error)


def _policy_headers(serving: Serving, release: str | None) -> dict[str, str]:
    headers = {"x-policy-release": release or serving.policy.latest.id, "x-policy-hash": serving.policy.hash}
    if serving.key_id is not None:
        headers["x-policy-key-id"] = serving.key_id
    return headers


def _json_body(body: bytes) -> Any:
    try:
        return read_json(body)
    except ValueError as exc:
        raise ProblemError(400, "invalid-json", str(exc)) from None


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def decide(request: Request) -> Response:
    service = _service(request)
    serving = service.serving()
    release = _release(request, serving)
    record = _json_body(await service.body(request, service.config.max_body))
    answer = serving.decider.answer(record, 1, release)
    if answer.result.error is not None:
        err = answer.result.error
        service.metrics.line_error(err.field)
        raise ProblemError(422, "invalid-line", err.message, field=err.field)
    await service.log([answer], "/v1/decide", serving)  # queued (or, with --log-fsync always, synced) first
    assert answer.result.decision is not None
    service.metrics.decided(answer.result.decision, answer.seconds)
    return Response(answer.body, media_type=JSON, headers=_policy_headers(serving, release))


async def decide_batch(request: Request) -> Response:
    """The body spooled whole (``batch`` says why), then read, decided and answered a batch at a time off the
    event loop, so that single lines are served between a batch request's batches."""
    service = _service(request)
    serving = service.serving()
    release = _release(request, serving)
    spool = await service.spool(request, service.config.max_batch_body)
    try:
        head = spool.read(64)
        spool.seek(0)
        fmt = batch.request_format(request.headers.get("content-type"), head)
        out = batch.answer_format(request.headers.get("accept"), fmt)
        reads = await asyncio.to_thread(batch.read_body, fmt, spool, serving.policy, batch.rows_for(out),
                                        records=service.decision_log is not None)
    except batch.BodyError as err:
        spool.close()
        raise ProblemError(err.status, err.slug, err.detail) from None
    except BaseException:
        spool.close()
        raise
    pieces = _pieces(service, service.columnar(serving), reads, out, release, serving)
    return StreamingResponse(_sent(pieces, spool), media_type=formats.MEDIA_TYPE_OF[out],
                             headers=_policy_headers(serving, release))


def _pieces(service: Service, columnar: batch.Columnar, reads: Iterator[batch.Read], fmt: str,
            release: str | None, serving: Serving) -> Iterator[bytes]:
    """The answer's bytes a batch at a time (run in a worker thread); each batch logged before it is sent."""
    encoder = batch.Encoder(fmt)
    for read in reads:
        decided = batch.decide(columnar, read, release)
        ids = batch.decision_ids(decided.enc.rows)
        service.record_batch(decided, ids, serving)
        yield encoder.piece(columnar.decider, decided, ids)
    yield encoder.end()


async def _sent(pieces: Iterator[bytes], spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            if piece:
                yield piece
    finally:
        with contextlib.suppress(ValueError):  # a client gone while a worker thread still runs the generator
            pieces.close()  # type: ignore[attr-defined]
        spool.close()


async def code(request: Request) -> Response:
    serving = _service(request).serving()
    release = _release(request, serving)
    date_text = request.query_params.get("date") or None
    try:
        date = parse_date(date_text, "date") if date_text is not None else None
    except LineError as err:
        raise ProblemError(400, "invalid-request", err.message, field="date") from None
    try:
        code = check_code(request.path_params["code"])  # the check of a claim line's code, and its message
    except LineError as err:
        raise ProblemError(400, "invalid-request", err.message, field="code") from None
    report = api.show(code, date=date, release=release, policy=serving.policy)
    return _json(report.as_dict(), headers=_policy_headers(serving, report.release))


async def releases(request: Request) -> Response:
    serving = _service(request).serving()
    release = _release(request, serving)
    policy = serving.policy
    upto = policy.release(release).ordinal
    return _json({
        "latest": policy.latest.id,
        "policy_hash": policy.hash,
        "releases": [{"id": r.id, "published": r.published.isoformat(), "effective": r.effective.isoformat(),
                      "implements": [s.id for s in r.implements], "summary": r.summary}
                     for r in policy.releases if r.ordinal <= upto],
    }, headers=_policy_headers(serving, release))


async def release_changes(request: Request) -> Response:
    serving = _service(request).serving()
    release_id = request.path_params["id"]
    try:
        release = serving.policy.release(release_id)
    except UnknownReleaseError as err:
        raise ProblemError(404, "unknown-release", str(err), field="id") from None
    report = change_report(serving.policy, release.id)[0]
    return _json(release_entry(report, release.ordinal), headers=_policy_headers(serving, release.id))


async def health(request: Request) -> Response:
    service = _service(request)
    holder = service.holder
    serving = holder.serving
    out: dict[str, Any] = {"status": "ok" if serving is not None else
                           ("loading" if holder.failure is None else "failed")}
    if serving is not None:
        out.update({"release": serving.policy.latest.id, "policy_hash": serving.policy.hash,
                    "root": serving.policy.root, "loaded_at": iso_time(serving.loaded_at)})
        if serving.key_id is not None:
            out["key_id"] = serving.key_id
    out["reloads"] = holder.reloads
    out["failed_reloads"] = holder.failed_reloads
    if holder.failure is not None:
        out["reload_error"] = {"at": iso_time(holder.failure.at), "problems": holder.failure.lines()}
    if service.decision_log is not None:
        writer = service.decision_log.writer
        out["decision_log"] = {"path": str(writer.path), "written": writer.written, "backlog": writer.backlog(),
                               "error": writer.error, "fsync": writer.fsync, "head": service.decision_log.head()}
    return _json(out, status=200 if serving is not None else 503)


async def metrics(request: Request) -> Response:
    service = _service(request)
    writer = service.decision_log.writer if service.decision_log is not None else None
    body = service.metrics.render(writer.backlog() if writer else 0, writer.written if writer else 0)
    return Response(body, media_type=METRICS_TYPE)


async def openapi(request: Request) -> Response:
    return Response(_service(request).openapi, media_type=JSON)


async def cds_discovery(request: Request) -> Response:
    return _json(cdshooks.discovery())


async def cds_service(request: Request) -> Response:
    service = _service(request)
    service_id = request.path_params["service"]
    if service_id not in cdshooks.SERVICES:
        raise ProblemError(404, "not-found", f"no CDS service {service_id!r} (see /cds-services)")
    serving = service.serving()
    release = _release(request, serving)
    body = _json_body(await service.body(request, service.config.max_body))
    base = str(request.base_url).rstrip("/")
    response, answers = cdshooks.answer(service_id, body, serving, release=release, site_url=service.config.site_url,
                                        api_base=base)
    await service.record(answers, f"cds-services/{service_id}", serving)
    return _json(response)


ROUTES = [
    Route("/v1/decide", decide, methods=["POST"]),
    Route("/v1/decide/batch", decide_batch, methods=["POST"]),
    Route("/v1/codes/{code}", code, methods=["GET"]),
    Route("/v1/releases", releases, methods=["GET"]),
    Route("/v1/releases/{id}/changes", release_changes, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/cds-services", cds_discovery, methods=["GET"]),
    Route("/cds-services/{service}", cds_service, methods=["POST"]),
]


def build(service: Service) -> Starlette:
    """The Starlette app of ``service``: the routes, the service's lifespan, the problem-details handlers."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(routes=ROUTES, lifespan=lifespan, exception_handlers={
        ProblemError: _problem_handler, HTTPException: _http_handler, Exception: _internal_handler})
    app.state.service = service
    return app


async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
    return Response(from_error(exc, request.url.path), status_code=exc.status, media_type=PROBLEM_TYPE,
                    headers=headers)


_HTTP_SLUGS = {404: "not-found", 405: "method-not-allowed"}


async def _http_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = _HTTP_SLUGS.get(exc.status_code, "invalid-request")
    path = shown(request.url.path)
    detail = {404: f"no such path: {path} (see /openapi.json)",
              405: f"{request.method} is not allowed on {path}"}.get(exc.status_code, str(exc.detail))
    return Response(problem_body(exc.status_code, slug, detail, instance=request.url.path),
                    status_code=exc.status_code, media_type=PROBLEM_TYPE, headers=exc.headers)


async def _internal_handler(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)  # to the server's log only
    return Response(problem_body(500, "internal", "the service failed to answer; the error is in its log",
                                 instance=request.url.path), status_code=500, media_type=PROBLEM_TYPE)


# The headers OWASP's REST Security Cheat Sheet asks of a JSON API, on every answer: no sniffing a JSON body as
# something a browser would run, no framing, no content loaded by it, and no copy kept by any cache (a decision
# is about a member's claim, and the policy it was decided by can change under a hot reload).
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")  # only over TLS (RFC 6797: ignored over plain HTTP)


class Gate:
    """Plain ASGI middleware: the bearer token, the security headers, the access log and the request metrics."""

    def __init__(self, app: Starlette, service: Service) -> None:
        self.app = app
        self.service = service
        token = service.config.token
        self.expected = f"Bearer {token}".encode() if token else None
        self.headers = SECURITY_HEADERS + ((HSTS,) if service.config.tls else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        t0 = time.perf_counter()
        status = 500
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *self.headers]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        if self.expected is not None and scope["path"] != "/health" and not self._authorized(scope):
            await self._unauthorized(scope, counting_send)
        else:
            await self.app(scope, receive, counting_send)
        seconds = time.perf_counter() - t0
        route = scope.get("route")
        name = getattr(route, "path", "unmatched")
        self.service.metrics.responded(name, status, seconds)
        if self.service.access_log is not None:
            client = scope.get("client")
            self.service.access_log.request({
                "time": iso_time(started), "method": scope["method"], "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"), "route": name, "status": status,
                "duration_ms": round(seconds * 1000, 3), "bytes": sent,
                "client": f"{client[0]}:{client[1]}" if client else None})

    def _authorized(self, scope: Scope) -> bool:
        assert self.expected is not None
        for key, value in scope["headers"]:
            if key == b"authorization":
                return hmac.compare_digest(value, self.expected)
        return False

    async def _unauthorized(self, scope: Scope, send: Send) -> None:
        body = problem_body(401, "unauthorized", "send the service's token as 'Authorization: Bearer TOKEN'",
                            instance=scope["path"])
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", PROBLEM_TYPE.encode()), (b"www-authenticate", b"Bearer"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(config: ServiceConfig | None = None) -> Gate:
    """The ASGI app of the service: hand it to uvicorn (``cmap-policy serve`` does)."""
    service = Service(config or ServiceConfig())
    return Gate(build(service), service)
