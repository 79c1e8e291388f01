"""``cmap-policy serve`` (the decision service) and ``cmap-policy log replay`` (a decision log re-decided).

The service itself is ``cmap_policy.service``; this module reads the options, checks them, and hands the
app to uvicorn. Starlette, uvicorn and the rest come with the ``serve`` extra and are imported only when
one of these commands runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..lines import FIELDS, canonical_field
from .options import (
    EXIT_ERRORS,
    EXIT_OK,
    bundle_module,
    bundle_options,
    check_bundle_options,
    check_release,
    fail,
    load_or_exit,
    policy_option,
    release_option,
)

SERVE_EXTRA = "the service needs the serve extra: pip install 'cmap-policy[serve]'"


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's own messages (start, stop, errors) as JSON lines on standard error, like the access log."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "cmap_policy.service.log.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "cmap_policy.service")},
    }


def _mask_fields(values: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for value in values:
        name = canonical_field(value)
        if name not in FIELDS:
            raise click.BadParameter(f"{value!r} is not a claim line field (known: {', '.join(FIELDS)})",
                                     param_hint="--log-mask")
        out.append(name)
    return tuple(out)


def _token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise click.BadParameter(f"cannot read {path}: {err}", param_hint="--token-file") from None
    if not token or any(c.isspace() for c in token):
        raise click.BadParameter(f"{path} must hold one token: no spaces, not empty", param_hint="--token-file")
    return token


@click.command("serve")
@policy_option("Policy tree to serve, watched for changes (the folder holding program.json, releases.json and "
               "codes/). Default: the bundled CMAP policy.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default takes connections from this machine only; 0.0.0.0 for all.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the decision log here: one JSON line per decision. Default: no decision log.")
@click.option("--log-mask", "log_mask", multiple=True, metavar="FIELD",
              help="Leave this claim line field out of the decision log (repeat for more), e.g. member_age.")
@click.option("--log-max-bytes", default=100 * 1024 * 1024, show_default=True, type=click.IntRange(1024),
              help="Rotate the decision log when it would grow past this size: FILE becomes FILE.1, and so on.")
@click.option("--log-backups", default=5, show_default=True, type=click.IntRange(1),
              help="Rotated decision logs kept (FILE.1 to FILE.N).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Require 'Authorization: Bearer TOKEN' on every request but /health, TOKEN read from FILE.")
@click.option("--max-body", default=1024 * 1024, show_default=True, type=click.IntRange(1),
              help="Largest request body, in bytes, for /v1/decide and the CDS services.")
@click.option("--max-batch-body", default=256 * 1024 * 1024, show_default=True, type=click.IntRange(1),
              help="Largest request body, in bytes, for /v1/decide/batch.")
@click.option("--body-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds a client has to send a request body.")
@click.option("--keep-alive", default=5, show_default=True, type=click.IntRange(1),
              help="Seconds an idle connection is kept open.")
@click.option("--graceful-timeout", default=30, show_default=True, type=click.IntRange(1),
              help="On SIGTERM, seconds to let requests in flight finish before closing.")
@click.option("--watch/--no-watch", default=True, show_default=True,
              help="Reload the policy when a file of --policy changes (the bundled policy is not watched).")
@click.option("--site-url", default=None, metavar="URL",
              help="The published site, for the links of CDS cards to a code's page (URL/codes/CODE.html). "
                   "Default: the service's own /v1/codes/CODE.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="Write one JSON line per request to standard error.")
@bundle_options
@click.option("--log-fsync", "log_fsync", type=click.Choice(["never", "interval", "always"]), default="never",
              show_default=True, help="When the decision log is synced to the disk: never (the OS writes it back in "
              "its own time), interval (a group commit every --log-fsync-interval ms) or always (a decision is "
              "answered only once its record is on the disk). docs/reliability.md says what each keeps at a "
              "power cut.")
@click.option("--log-fsync-interval", "log_fsync_interval", default=100, show_default=True,
              type=click.IntRange(1, 60_000), metavar="MS", help="--log-fsync interval: milliseconds between syncs.")
@click.option("--tls-cert", "tls_cert", type=click.Path(dir_okay=False), default=None, metavar="PEM",
              help="Serve HTTPS with this certificate (chain), for clients with no TLS proxy in front.")
@click.option("--tls-key", "tls_key", type=click.Path(dir_okay=False), default=None, metavar="PEM",
              help="The private key of --tls-cert.")
def serve_command(policy_path: str | None, host: str, port: int, log_file: str | None, log_mask: tuple[str, ...],
                  log_max_bytes: int, log_backups: int, token_file: str | None, max_body: int, max_batch_body: int,
                  body_timeout: float, keep_alive: int, graceful_timeout: int, watch: bool, site_url: str | None,
                  access_log: bool, bundle_path: str | None, verify_key: str | None, log_fsync: str,
                  log_fsync_interval: int, tls_cert: str | None, tls_key: str | None) -> None:
    """Serve decisions over HTTP: the JSON API under /v1, CDS Hooks, /health, /metrics, /openapi.json.

    \b
        cmap-policy serve                              # the bundled policy on 127.0.0.1:8080
        cmap-policy serve --policy policy --log decisions.jsonl --log-mask member_age
        cmap-policy serve --bundle release.tar.gz --verify-key dss.pub.pem --log decisions.jsonl --log-fsync always
        curl -s localhost:8080/v1/decide -d '{"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]}'
    """
    mask = _mask_fields(log_mask)
    token = _token(token_file)
    if policy_path is not None and not Path(policy_path).is_dir():
        raise click.BadParameter(f"{policy_path} is not a folder", param_hint="--policy")
    check_bundle_options(policy_path, bundle_path, verify_key)
    signed = _signed_bundle(bundle_path, verify_key)
    _check_tls(tls_cert, tls_key)
    try:
        import uvicorn

        from ..service import ServiceConfig, create_app
    except ImportError:
        fail(SERVE_EXTRA)
    config = ServiceConfig(policy=Path(policy_path) if policy_path else None, log=Path(log_file) if log_file else None,
                           log_mask=mask, log_max_bytes=log_max_bytes, log_backups=log_backups, token=token,
                           max_body=max_body, max_batch_body=max_batch_body, body_timeout=body_timeout, watch=watch,
                           site_url=site_url, access_log=access_log, bundle=signed, log_fsync=log_fsync,
                           log_fsync_interval=log_fsync_interval / 1000, tls=tls_cert is not None)
    uvicorn.run(create_app(config), host=host, port=port, loop=_best("uvloop", "asyncio"),
                ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                http=_best("httptools", "h11"), lifespan="on", access_log=False, server_header=False,
                timeout_keep_alive=keep_alive, timeout_graceful_shutdown=graceful_timeout,
                log_config=_log_config("info"))


def _signed_bundle(bundle_path: str | None, verify_key: str | None) -> Any:
    """The bundle to serve and its public key, read now: a key that cannot be read is a usage error."""
    if bundle_path is None or verify_key is None:
        return None
    bundle = bundle_module()
    from ..errors import BundleError
    from ..service.state import SignedBundle

    try:
        key = bundle.read_public(verify_key)
    except BundleError as err:
        raise click.BadParameter(str(err), param_hint="--verify-key") from None
    return SignedBundle(Path(bundle_path), key)


def _check_tls(cert: str | None, key: str | None) -> None:
    """Both or neither, and a pair that loads: a usage error now rather than a traceback from the server."""
    if (cert is None) != (key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if cert is None or key is None:
        return
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise click.BadParameter(f"cannot load the certificate and key: {getattr(err, 'strerror', None) or err}",
                                 param_hint="--tls-cert/--tls-key") from None


def _best(module: str, fallback: str) -> str:
    """The faster uvicorn component when it is installed (the serve extra installs it), else the fallback."""
    import importlib.util

    return module if importlib.util.find_spec(module) is not None else fallback


@click.group("log")
def log_group() -> None:
    """Work with decision logs written by `cmap-policy serve --log`."""


@log_group.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True), metavar="FILE...")
@policy_option("The policy to decide the logged lines against (the folder holding program.json, releases.json "
               "and codes/). Default: the bundled CMAP policy.")
@release_option("Decide as the table was published in this release of that policy. Default: its latest.")
@click.option("--format", "out_format", type=click.Choice(["text", "jsonl", "md", "json"]), default="text",
              show_default=True,
              help="text for people; jsonl: one JSON object per changed decision; md or json: the impact report of "
                   "`diff --claims` (transitions, codes, reasons, examples), the lines decided by the batch engine.")
def replay_command(files: tuple[str, ...], policy_path: str | None, release: str | None, out_format: str) -> None:
    """Re-decide the lines of decision logs against another policy and report every decision that changes.

    A change is a different outcome, reason codes or matched period (md and json: outcome or reason codes,
    with line numbers counted on through the files). Give rotated files oldest first (FILE.2 FILE.1 FILE).
    Exits 1 when a record could not be replayed (each is reported).
    """
    if out_format in ("md", "json"):
        from .engines import run_replay_impact

        policy = load_or_exit(policy_path)
        check_release(policy, release)
        run_replay_impact([Path(f) for f in files], policy, release=release, out_format=out_format)
    try:
        from ..service.replay import Change, Tally, replay
    except ImportError:
        fail(SERVE_EXTRA)
    from ..errors import InputError

    policy = load_or_exit(policy_path)
    check_release(policy, release)
    tally = Tally()
    try:
        for event in replay([Path(f) for f in files], policy, release=release, tally=tally):
            if not isinstance(event, Change):
                click.echo(f"error: {event}", err=True)
            elif out_format == "jsonl":
                click.echo(json.dumps(event.as_dict(), ensure_ascii=False))
            else:
                click.echo(_change_text(event))
    except InputError as err:
        fail(str(err))
    against = ", ".join(sorted(tally.releases)) or policy.release(release).id
    click.echo(f"{tally.replayed} decision(s) replayed against release {against} (policy hash "
               f"{policy.hash[:12]}): {tally.changed} changed, {tally.replayed - tally.changed} unchanged"
               + (f"; {tally.unreplayable} record(s) could not be replayed" if tally.unreplayable else ""), err=True)
    sys.exit(EXIT_ERRORS if tally.unreplayable else EXIT_OK)


def _change_text(change: Any) -> str:
    b, a = change.before, change.after
    line = change.input
    masked = f" (masked: {', '.join(change.masked)})" if change.masked else ""
    return (f"{change.file}:{change.number} {change.decision_id}  {line.get('code')} {line.get('date')}{masked}\n"
            f"    before  {b['outcome']} [{', '.join(b['reasons'])}] period {b['period']} (release {b['release']})\n"
            f"    after   {a['outcome']} [{', '.join(a['reasons'])}] period {a['period']} (release {a['release']})")



@log_group.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True), metavar="FILE...")
@click.option("--head", default=None, metavar="SHA256",
              help="The hash the last record must have (/health's decision_log.head, or the service's own log at "
                   "shutdown): also finds the last records removed or the last one changed.")
def verify_command(files: tuple[str, ...], head: str | None) -> None:
    """Check the hash chain of a decision log, or of a rotated series given oldest first (FILE.2 FILE.1 FILE).

    Names each record removed, inserted, changed or reordered, and a torn last line (a power cut mid-write)
    as torn, not as tampering. Exits 1 on either.
    """
    try:
        from ..service.chain import verify
    except ImportError:
        fail(SERVE_EXTRA)
    from ..errors import InputError

    try:
        report = verify([Path(f) for f in files], head=head)
    except InputError as err:
        fail(str(err))
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for finding in report.findings:
        click.echo(str(finding))
    last = f"; head seq {report.head.seq}, hash {report.head.hash}" if report.head is not None else ""
    verdict = ("tampered with" if report.tampered else "torn at the end (no tampering found)" if report.torn
               else "intact")
    click.echo(f"{report.records} record(s) in {report.files} file(s): {verdict}{last}", err=True)
    sys.exit(EXIT_ERRORS if report.findings else EXIT_OK)
