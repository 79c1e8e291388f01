"""A Spark standalone cluster on this machine's loopback interface: a master and a few one-core workers.

    with StandaloneCluster(work_dir, workers=2) as cluster:
        subprocess.run(["spark-submit", "--master", cluster.url, ...])

Why: ``local[N]`` runs the driver and the executors in one JVM, which hides
everything a real cluster makes the job do -- ship the package and the policy
to executors that share nothing with the driver but the network, spread the
work over separate executors, and gather the summary back. This starts the
very processes a Spark standalone deployment runs
(``org.apache.spark.deploy.master.Master`` and ``...worker.Worker``), with the
``spark-class`` that pip's pyspark brings: no download, no container. Each
process is started by this object and stopped by its process id, so nothing
else running on the machine is touched. The tests and ``benchmarks/spark_cluster.py``
use it; it needs pyspark and Java 17 or 21, and nothing of this package.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

_HOST = "127.0.0.1"
_START_TIMEOUT = 120.0  # seconds: a JVM starts slowly on a busy machine


class ClusterError(RuntimeError):
    """The cluster did not start: what went wrong, with the end of the log of the process that failed."""


def spark_home() -> Path:
    """The Spark distribution inside pip's pyspark (it has ``bin/spark-class`` and ``bin/spark-submit``)."""
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


def free_port() -> int:
    with socket.socket() as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


class StandaloneCluster:
    """A master and ``workers`` workers of ``cores`` cores and ``memory`` each, on 127.0.0.1.

    ``work_dir`` holds each process's log and the workers' scratch space (the
    executors' directories, where Spark unpacks ``--archives``).
    """

    def __init__(self, work_dir: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g") -> None:
        self.work_dir = work_dir
        self.workers, self.cores, self.memory = workers, cores, memory
        self.port, self.ui_port = free_port(), free_port()
        self._procs: list[tuple[subprocess.Popen[bytes], Path, IO[bytes]]] = []

    @property
    def url(self) -> str:
        """The master's URL, for ``spark-submit --master`` and ``SparkSession.builder.master``."""
        return f"spark://{_HOST}:{self.port}"

    def __enter__(self) -> StandaloneCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self.work_dir / f"{name}.log"
        out = log.open("wb")
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": _HOST,
               "SPARK_NO_DAEMONIZE": "1"}
        # its own process group, so that stopping it also stops the JVM that spark-class starts beneath it
        proc = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        self._procs.append((proc, log, out))

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("master", ["org.apache.spark.deploy.master.Master", "--host", _HOST, "--port", str(self.port),
                               "--webui-port", str(self.ui_port)])
        self._wait(lambda state: True, "the master to answer")
        for k in range(self.workers):
            scratch = self.work_dir / f"worker-{k}"
            scratch.mkdir(exist_ok=True)
            self._spawn(f"worker-{k}", ["org.apache.spark.deploy.worker.Worker", self.url, "--host", _HOST,
                                        "--cores", str(self.cores), "--memory", self.memory,
                                        "--webui-port", str(free_port()), "--work-dir", str(scratch)])
        self._wait(lambda state: self.alive_workers(state) >= self.workers, f"{self.workers} workers to register")

    def state(self) -> dict[str, Any]:
        """The master's view of the cluster (its web UI's ``/json/``): workers, cores, applications."""
        with urllib.request.urlopen(f"http://{_HOST}:{self.ui_port}/json/", timeout=5) as answer:
            return dict(json.load(answer))

    @staticmethod
    def alive_workers(state: dict[str, Any]) -> int:
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            for proc, log, _ in self._procs:
                if proc.poll() is not None:
                    raise ClusterError(f"{log.stem} exited with {proc.returncode} while waiting for {what}:\n"
                                       + _tail(log))
            try:
                if ready(self.state()):
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        raise ClusterError(f"timed out after {_START_TIMEOUT:.0f} s waiting for {what}:\n" + _tail(self._procs[0][1]))

    def stop(self) -> None:
        """Stop the workers, then the master, each by its process group (started by this object)."""
        for proc, _, out in reversed(self._procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            out.close()
        self._procs.clear()


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
