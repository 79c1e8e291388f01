"""Real servers for the service tests: uvicorn on a free loopback port, in a thread or in its own process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from cmap_policy.resources import policy_dir
from cmap_policy.service import ServiceConfig, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Any, timeout: float = 20.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Running:
    def __init__(self, url: str, app: Any = None, process: subprocess.Popen[bytes] | None = None) -> None:
        self.url = url
        self.app = app
        self.process = process

    @property
    def service(self) -> Any:
        return self.app.service

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)


@contextmanager
def serve(config: ServiceConfig | None = None, *, wait_ready: bool = True) -> Iterator[Running]:
    """The app on uvicorn in a thread of this process (its state is at hand), stopped after."""
    config = config or ServiceConfig(access_log=False)
    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", access_log=False,
                                           log_level="warning", loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: server.started, what="uvicorn to start")
        if wait_ready:
            wait_until(lambda: _ready(url), what="the policy to load")
        yield Running(url, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serve_process(*args: str, cwd: Path | None = None) -> Iterator[Running]:
    """``cmap-policy serve ARGS`` in its own process on a free port; SIGTERM and wait after."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "cmap_policy", "serve", "--port", str(port), *args],
                               cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url) or process.poll() is not None, what="cmap-policy serve to be ready")
        assert process.poll() is None, process.communicate()[1].decode()
        yield Running(url, process=process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def copy_policy(tmp: Path) -> Path:
    """A copy of the bundled policy tree to change."""
    root = tmp / "policy"
    shutil.copytree(policy_dir(), root, ignore=shutil.ignore_patterns("tests", "faq"))
    return root
