"""Every command the README shows runs as written, from a fresh non-editable install, so that the README can never
show a command that fails.

The commands are read from the README itself: every ```sh block, command by command (a line ending in a
backslash goes on), and every ```python block, in the order the README shows them. They run in a copy of this
clone (its tracked files and new ones not ignored, committed on a ``main`` branch of a new git repository, as a
fresh clone is), with bash, from the copy's folder, exactly as written, with these exceptions, each checked:

- The test command (``... -e '.[test]' && .venv/bin/python -m pytest``) is not run: it is the command that runs
  this test. The test checks instead that ``.ci/run`` runs each of its parts as written.
- A command that starts ``cmap-policy serve`` is started in the background on a free port (``--port`` added;
  8080 may be taken on a shared machine), probed on ``/health`` until it answers, and stopped (SIGTERM) after
  the blocks that follow it and name ``localhost:8080``, which run with that port instead. curl runs with
  ``--fail-with-body`` (from a ``.curlrc``), so an HTTP error fails the command as any other failure does.

Every command must exit 0 with no traceback. The installs are the README's own: ``pip install .`` builds
and installs a wheel (non-editable); each later ``.[extra]`` install adds that extra's libraries to the same
``.venv``, from pip's cache when it has them. The Site section's install is editable (``-e '.[site]'``) and comes
last, after every other command has run on the non-editable install. Spark runs on the smallest input the
README names (``examples/claims.parquet``, four lines) in local mode. Java (for Spark), git and curl are
needed: ``.ci/run`` installs them; without them the test is skipped locally, saying why, and fails on CI. The
whole test takes about a minute (``-m 'not slow'`` leaves it out of a quick local run).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from .doc_support import ROOT, copy_clone, fenced_blocks

README = ROOT / "README.md"
TIMEOUT = 900  # seconds for one command: an install of the spark extra without pip's cache is the longest
SERVE = re.compile(r"(^|&&\s*)(\.venv/bin/cmap-policy serve\b[^&|;]*)$")
README_PORT = "localhost:8080"


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # of the README, where the block's first line is

    def commands(self) -> list[str]:
        """The block's commands: lines joined where one ends in a backslash; blank and comment lines left out."""
        out: list[str] = []
        pending = ""
        for raw in self.text.splitlines():
            line = pending + raw
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.strip())
        assert not pending, f"README line {self.line}: the block ends in a backslash"
        return out


def readme_blocks(text: str) -> list[Block]:
    """The ```sh and ```python blocks of the README, in order."""
    return [Block(b.language, b.text, b.line) for b in fenced_blocks(text) if b.language in ("sh", "python")]


def test_the_readme_blocks_are_read_as_commands() -> None:
    """The reading itself: continued lines join, comments stay with their command, blank lines go."""
    block = Block("sh", "# a comment\na \\\n  | b   # why\n\nc && d\n", 1)
    assert [" ".join(c.split()) for c in block.commands()] == ["a | b # why", "c && d"]
    found = readme_blocks("x\n```sh\none\n```\n```json\n{}\n```\n```python\nprint(1)\n```\n")
    assert [(b.language, b.text, b.line) for b in found] == [("sh", "one\n", 3), ("python", "print(1)\n", 9)]
    fences = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("```")]
    # every block opens with its language and closes with a bare fence: a stray fence would pair the rest wrongly
    assert fences[0::2] == [f for f in fences[0::2] if f != "```"] and set(fences[1::2]) == {"```"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    here = str(Path(sys.executable).parent)  # this test's own venv is not the README's
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != here)
    curl_home = tmp / "curl"
    curl_home.mkdir()
    (curl_home / ".curlrc").write_text("fail-with-body\n", encoding="utf-8")
    env["CURL_HOME"] = str(curl_home)
    env["CMAP_POLICY_CACHE_DIR"] = str(tmp / "policy-cache")
    return env


class Runner:
    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.clone, self.env = clone, env
        self.ran: list[tuple[str, float]] = []

    def run(self, command: str, where: int, stdin: str | None = None, argv: list[str] | None = None) -> None:
        started = time.perf_counter()
        try:
            out = subprocess.run(argv or ["bash", "-o", "pipefail", "-c", command], cwd=self.clone, env=self.env,
                                 input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"README line {where}: `{command}` took more than {TIMEOUT} s")
        self.ran.append((command, time.perf_counter() - started))
        detail = f"README line {where}: `{command}` exited {out.returncode}\n--- stdout\n{out.stdout[-3000:]}" \
                 f"\n--- stderr\n{out.stderr[-3000:]}"
        assert out.returncode == 0, detail
        assert "Traceback (most recent call last)" not in out.stderr, detail


class Server:
    """``cmap-policy serve`` as the README starts it, on a free port, until stopped."""

    def __init__(self, runner: Runner, command: str, where: int) -> None:
        self.port = _free_port()
        self.command = f"{command} --port {self.port}"
        self.proc = subprocess.Popen(["bash", "-c", f"exec {self.command}"], cwd=runner.clone, env=runner.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"README line {where}: `{command}` stopped ({self.proc.returncode}): "
                            f"{self.proc.stderr.read() if self.proc.stderr else ''}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as got:
                    if got.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"README line {where}: `{command}` did not answer /health within 60 s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _check_test_command(command: str, where: int) -> None:
    """The README's test command is the one .ci/run runs (which is how this test runs): each part as written."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_parts = {part.strip() for line in ci.splitlines() if not line.lstrip().startswith("#")
                for part in line.split("&&")}
    for part in (p.strip() for p in command.split("&&")):
        assert part in ci_parts, f"README line {where}: .ci/run does not run `{part}` of the test command"


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    missing = [tool for tool in ("git", "curl", "java") if shutil.which(tool) is None]
    if missing:  # as the Spark and browser tests do: skipped locally (and said so), a failure on CI
        message = f"the README's commands need {', '.join(missing)} (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    clone = tmp_path / "clone"
    copy_clone(clone)
    runner = Runner(clone, _environment(tmp_path))
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    assert sum(len(b.commands()) for b in blocks if b.language == "sh") >= 30  # the reading found the commands
    server: Server | None = None
    tests_checked = served = 0
    try:
        for block in blocks:
            if block.language == "python":
                runner.run(f"python block at README line {block.line}", block.line, stdin=block.text,
                           argv=[str(clone / ".venv" / "bin" / "python"), "-"])
                continue
            if server is not None and README_PORT not in block.text:
                server.stop()
                server = None
            for command in block.commands():
                if "-m pytest" in command:
                    _check_test_command(command, block.line)
                    tests_checked += 1
                    continue
                started = SERVE.search(command)
                if started:
                    assert server is None, f"README line {block.line}: a second server"
                    before = command[: started.start()].strip()
                    if before:
                        runner.run(before, block.line)
                    server = Server(runner, started.group(2).strip(), block.line)
                    continue
                if README_PORT in command:
                    assert server is not None, f"README line {block.line}: `{command}` needs `cmap-policy serve`"
                    command = command.replace(README_PORT, f"localhost:{server.port}")
                    served += 1
                runner.run(command, block.line)
    finally:
        if server is not None:
            server.stop()
    assert tests_checked == 1 and served >= 5
    # the commands that read or wrote files did what the README says they do
    assert (clone / "decisions.parquet").is_file() and (clone / "decisions.csv").is_file()
    assert (clone / "table.xlsx").is_file() and (clone / "site" / "index.html").is_file()
    assert (clone / "policy" / "codes" / "G2012.json").is_file()
    slowest = sorted(runner.ran, key=lambda r: -r[1])[:5]
    print("slowest README commands:", *(f"{s:6.1f} s  {c[:100]}" for c, s in slowest), sep="\n  ")
