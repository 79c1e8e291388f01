"""The service and trust: signed bundles served and hot-reloaded only once verified, the durable decision log
(fsync modes; kill -9 with `always`), the holes of hostile requests, security headers and TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cmap_policy import bundle
from cmap_policy.cli import main
from cmap_policy.service import ServiceConfig
from cmap_policy.service.chain import verify
from cmap_policy.service.state import SignedBundle

from .service_support import copy_policy, free_port, serve, serve_process, wait_until

LINE = {"code": "T1016", "date": "2026-01-05", "modifiers": ["93"]}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[bundle.KeyPair, bundle.KeyPair]:
    folder = tmp_path_factory.mktemp("keys")
    return bundle.generate(folder / "dss"), bundle.generate(folder / "other")


def _swap_in(target: Path, source: Path) -> None:
    """Replace ``target`` by ``source`` in one rename, as a deployment would."""
    os.replace(source, target)


def test_a_served_bundle_names_its_signer_in_health_answers_metrics_and_the_log(
        tmp_path: Path, keys: tuple[bundle.KeyPair, bundle.KeyPair]) -> None:
    key, _ = keys
    path, log = tmp_path / "release.tar.gz", tmp_path / "decisions.jsonl"
    bundle.build(None, path, key.private)
    config = ServiceConfig(bundle=SignedBundle(path, bundle.read_public(key.public)), log=log, access_log=False)
    with serve(config) as server, server.client() as c:
        health = c.get("/health").json()
        assert health["key_id"] == key.key_id and health["root"] == f"{path}/policy"
        answer = c.post("/v1/decide", json=LINE)
        assert answer.status_code == 200 and answer.headers["x-policy-key-id"] == key.key_id
        assert f'cmap_policy_policy_signer_info{{key_id="{key.key_id}"}} 1.0' in c.get("/metrics").text
        decision_id = answer.json()["decision_id"]
    records = [json.loads(x) for x in log.read_text().splitlines()]
    assert [r["key_id"] for r in records if r.get("decision_id") == decision_id] == [key.key_id]


def test_a_hot_reloaded_bundle_is_verified_before_it_swaps_and_a_refused_one_is_reported(
        tmp_path: Path, keys: tuple[bundle.KeyPair, bundle.KeyPair]) -> None:
    key, other = keys
    path = tmp_path / "release.tar.gz"
    bundle.build(None, path, key.private)
    config = ServiceConfig(bundle=SignedBundle(path, bundle.read_public(key.public)), access_log=False)
    with serve(config) as server, server.client() as c:
        first = c.get("/health").json()["policy_hash"]
        # a bundle signed by another key: refused, the old policy keeps serving, and /health and /metrics say why
        bundle.build(None, tmp_path / "forged.tar.gz", other.private)
        _swap_in(path, tmp_path / "forged.tar.gz")
        health = wait_until(lambda: (h := c.get("/health").json()).get("reload_error") and h, what="the refusal")
        assert health["status"] == "ok" and health["policy_hash"] == first and health["key_id"] == key.key_id
        assert "not verified" in health["reload_error"]["problems"][0]
        assert "the signature is wrong" in health["reload_error"]["problems"][0]
        metrics = c.get("/metrics").text
        assert "cmap_policy_reload_failed 1.0" in metrics and "not verified" in metrics
        assert c.post("/v1/decide", json=LINE).headers["x-policy-hash"] == first
        # a changed policy, signed by the right key: verified, then swapped in
        root = copy_policy(tmp_path)
        code = root / "codes" / "T1016.json"
        data = json.loads(code.read_text())
        data["periods"][-1]["guideline"] = "Audio-only allowed; a changed release."
        code.write_text(json.dumps(data, indent=2))
        bundle.build(root, tmp_path / "next.tar.gz", key.private)
        _swap_in(path, tmp_path / "next.tar.gz")
        health = wait_until(lambda: (h := c.get("/health").json())["policy_hash"] != first and h, what="the swap")
        assert "reload_error" not in health and health["reloads"] == 1 and health["failed_reloads"] == 1
        assert c.post("/v1/decide", json=LINE).headers["x-policy-hash"] == health["policy_hash"]


def test_serve_refuses_a_bundle_without_its_key_and_a_key_that_is_not_one(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["serve", "--bundle", str(tmp_path / "x.tar.gz")])
    assert out.exit_code == 2 and "--bundle needs --verify-key" in out.output
    (tmp_path / "k.pub.pem").write_text("not a key")
    out = CliRunner().invoke(main, ["serve", "--bundle", "x.tar.gz", "--verify-key", str(tmp_path / "k.pub.pem")])
    assert out.exit_code == 2 and "not a PEM public key" in out.output


# --- the durable log ---

def test_with_fsync_always_a_decision_is_in_the_log_when_its_answer_arrives(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    config = ServiceConfig(log=log, log_fsync="always", access_log=False)
    with serve(config) as server, server.client() as c:
        for i in range(20):
            got = c.post("/v1/decide", json={**LINE, "claim_id": f"C{i}"}).json()
            assert got["decision_id"] in log.read_text()  # read by another file object: synced before the answer
        batch = c.post("/v1/decide/batch", content="\n".join(json.dumps(LINE) for _ in range(50)))
        ids = [json.loads(x)["decision_id"] for x in batch.text.splitlines()]
        text = log.read_text()
        assert all(i in text for i in ids)
        writer = server.service.decision_log.writer
        assert writer.syncs >= 2 and c.get("/health").json()["decision_log"]["fsync"] == "always"


def test_with_fsync_always_a_decision_the_log_cannot_hold_is_a_503_not_an_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync
    broken = threading.Event()

    def fsync(fd: int) -> None:
        if broken.is_set():
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr("cmap_policy.service.log.os.fsync", fsync)
    with serve(ServiceConfig(log=tmp_path / "d.jsonl", log_fsync="always", access_log=False)) as server, \
            server.client() as c:
        assert c.post("/v1/decide", json=LINE).status_code == 200
        broken.set()
        failed = c.post("/v1/decide", json=LINE)
        assert failed.status_code == 503 and failed.json()["type"].endswith(":log-failed")
        assert "Input/output error" in c.get("/health").json()["decision_log"]["error"]
        broken.clear()
        assert c.post("/v1/decide", json=LINE).status_code == 200  # the next group that syncs is answered


def test_interval_syncs_within_the_interval_and_never_only_at_close(tmp_path: Path) -> None:
    from cmap_policy.service.log import DecisionLog

    from .test_log_chain import write_log

    assert write_log(tmp_path / "never.jsonl", 10).writer.syncs == 0  # the close syncs, uncounted
    log = DecisionLog(tmp_path / "interval.jsonl", fsync="interval", fsync_interval=0.05)
    try:
        from cmap_policy import load_policy
        from cmap_policy.service.decisions import Decider

        log.record(Decider(load_policy()).answer(LINE, 1, None), "/v1/decide")
        wait_until(lambda: log.writer.syncs >= 1, timeout=10, what="a group commit with no further write")
    finally:
        log.close()


def test_with_fsync_always_every_decision_answered_before_a_kill_9_is_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with serve_process("--log", str(log), "--log-fsync", "always", "--no-access-log") as server:
        def client() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as c:
                while not stop.is_set():
                    try:
                        got = c.post("/v1/decide", json=LINE)
                    except httpx.HTTPError:
                        return  # the server is gone
                    if got.status_code == 200:
                        with lock:
                            answered.append(got.json()["decision_id"])
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(answered) >= 300, timeout=60, what="300 decisions answered")
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        for t in threads:
            t.join()
    logged = {r["decision_id"] for r in map(json.loads, log.read_text().splitlines()[:-1] or [])
              if "decision_id" in r}
    tail = log.read_bytes().rsplit(b"\n", 2)
    if tail[-1] == b"" and len(tail) > 1:  # the last line is whole
        last = json.loads(tail[-2])
        logged.add(last.get("decision_id", ""))
    missing = [i for i in answered if i not in logged]
    assert missing == [] and len(answered) >= 300
    assert not verify([log]).tampered


# --- the holes ---

def test_a_code_path_is_checked_as_a_claim_lines_code_is_and_never_echoed() -> None:
    with serve() as server, server.client() as c:
        huge = "9" * 10_000
        got = c.get(f"/v1/codes/{huge}")
        assert got.status_code == 400 and got.json()["field"] == "code"
        assert len(got.content) < 1000 and huge[:200] not in got.text
        assert c.get("/v1/codes/t1016").json()["code"] == "T1016"  # read as a line's code is: upper case


def test_an_integer_too_long_is_named_with_its_limit_on_every_path(tmp_path: Path) -> None:
    huge = "9" * 5000
    body = '{"code": "T1016", "date": "2026-01-05", "units": ' + huge + "}"
    with serve() as server, server.client() as c:
        single = c.post("/v1/decide", content=body)
        assert single.status_code == 400 and "integer too long: more than 1,000 digits" in single.json()["detail"]
        batch = [json.loads(x) for x in c.post("/v1/decide/batch", content=body + "\n" + json.dumps(LINE)).text
                 .splitlines()]
        assert "integer too long: more than 1,000 digits" in batch[0]["error"] and "outcome" in batch[1]
        array = c.post("/v1/decide/batch", content="[" + body + "]")
        assert array.status_code == 400 and "integer too long" in array.json()["detail"]
    src = tmp_path / "claims.jsonl"
    src.write_text(body + "\n")
    out = CliRunner().invoke(main, ["eval", str(src)])
    assert out.exit_code == 1 and "integer too long: more than 1,000 digits (the limit)" in out.output
    out = CliRunner().invoke(main, ["eval", "--code", "T1016", "--date", "2026-01-05", "--member-age", huge])
    assert out.exit_code == 2 and "integer too long: more than 1,000 digits" in out.output and huge not in out.output


def test_every_answer_carries_the_security_headers_of_a_json_api(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret")
    with serve(ServiceConfig(access_log=False, token="s3cret")) as server, server.client() as c:
        auth = {"authorization": "Bearer s3cret"}
        answers = [c.post("/v1/decide", json=LINE, headers=auth), c.get("/health"), c.get("/nowhere", headers=auth),
                   c.get("/v1/releases"), c.post("/v1/decide/batch", content=json.dumps(LINE), headers=auth),
                   c.get("/metrics", headers=auth)]
        for got in answers:
            assert got.headers["x-content-type-options"] == "nosniff", got.url
            assert got.headers["cache-control"] == "no-store", got.url
            assert got.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in got.headers["content-security-policy"]
            assert "strict-transport-security" not in got.headers  # plain HTTP
        assert [a.status_code for a in answers] == [200, 200, 404, 401, 200, 200]


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_serve_speaks_tls_with_the_certificate_given(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "cmap_policy", "serve", "--port", str(port), "--tls-cert",
                                str(cert), "--tls-key", str(key), "--no-access-log"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"https://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/health", verify=trust, timeout=2).status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None

        wait_until(ready, what="the TLS server")
        assert process.poll() is None, process.communicate()[1].decode()
        got = httpx.post(f"{url}/v1/decide", json=LINE, verify=trust)
        assert got.json()["outcome"] == "payable"
        assert got.headers["strict-transport-security"].startswith("max-age=")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).raise_for_status()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    out = CliRunner().invoke(main, ["serve", "--tls-cert", str(cert)])
    assert out.exit_code == 2 and "--tls-cert and --tls-key go together" in out.output
    out = CliRunner().invoke(main, ["serve", "--tls-cert", str(key), "--tls-key", str(key)])
    assert out.exit_code == 2 and "cannot load the certificate and key" in out.output
