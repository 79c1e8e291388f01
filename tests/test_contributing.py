"""Every transcript CONTRIBUTING.md shows is real: the guide's commands run as a policy author runs them, and each
prints exactly the output the guide shows under it, so that the guide can never show output the tool does not
give.

The guide is read in order. A ```console block holds commands (lines starting ``$ ``) each followed by its
output; a line that is only ``…`` stands for lines left out (none or more), which is how the guide shortens a
long output. A fenced block with a ``title="path"`` is a file the guide asks the author to write: it is written
there when reached. The commands run with bash, one by one, in a copy of the repository's ``policy/`` tree
committed on ``main`` of a new git repository and then switched to the guide's branch (as a fresh clone after
``git switch -c`` is), with this venv's programs first on ``PATH`` (as after ``. .venv/bin/activate``).
Standard output and standard error are read together, unbuffered, in the order a terminal shows them. Nothing
is normalised: a policy hash or a count in the guide is the one the current policy gives, so a change to
``policy/`` that changes them fails here, with the real output to paste in.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .doc_support import ROOT, Fenced, copy_clone, fenced_blocks

GUIDE = ROOT / "CONTRIBUTING.md"
ELIDED = "…"  # a line of the guide's output that stands for lines left out
BRANCH = "pb-2026-05"  # the branch the guide starts its change on
TIMEOUT = 300  # seconds for one command; the slowest (`diff main`) takes a few


@dataclass(frozen=True)
class Step:
    command: str
    expected: tuple[str, ...]  # the output the guide shows, trailing blank lines left out
    line: int  # of the guide, where the command is


def console_steps(block: Fenced) -> list[Step]:
    """The commands of a ```console block, each with the output shown under it."""
    steps: list[Step] = []
    shown: list[str]
    command, shown, where = "", [], 0
    for offset, text in enumerate(block.text.splitlines()):
        if text.startswith("$ "):
            if command:
                steps.append(Step(command, _trimmed(shown), where))
            command, shown, where = text[2:], [], block.line + offset
            continue
        assert command, f"CONTRIBUTING.md line {block.line + offset}: output before any `$ ` command"
        shown.append(text)
    if command:
        steps.append(Step(command, _trimmed(shown), where))
    return steps


def _trimmed(lines: list[str]) -> tuple[str, ...]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return tuple(lines)


def shows(expected: tuple[str, ...], actual: str) -> bool:
    """Whether ``actual`` is the output shown: line for line, each ``…`` line standing for none or more lines."""
    pattern = "".join(r"(?:[^\n]*\n)*?" if line == ELIDED else re.escape(line) + r"\n" for line in expected)
    return re.fullmatch(pattern, "".join(line + "\n" for line in _trimmed(actual.splitlines()))) is not None


def test_the_guide_is_read_as_commands_and_their_output() -> None:
    block = Fenced("console", None, "$ a --x\nout 1\n\nout 2\n\n$ b\n$ c # why\nerror: c\n", 10)
    assert console_steps(block) == [Step("a --x", ("out 1", "", "out 2"), 10), Step("b", (), 15),
                                    Step("c # why", ("error: c",), 16)]
    with pytest.raises(AssertionError, match="line 3: output before"):
        console_steps(Fenced("console", None, "stray\n$ a\n", 3))
    found = fenced_blocks('x\n```json title="policy/tests/a.json"\n{}\n```\n```console\n$ a\n```\n')
    assert [(b.language, b.title, b.text, b.line) for b in found] == [("json", "policy/tests/a.json", "{}\n", 3),
                                                                       ("console", None, "$ a\n", 6)]


def test_output_matches_only_what_the_guide_shows() -> None:
    assert shows(("a", "b"), "a\nb\n\n")
    assert not shows(("a", "b"), "a\nb\nc\n")      # a line the guide does not show
    assert not shows(("a", "b", "c"), "a\nc\n")     # a line the output does not have
    assert not shows(("a", "b"), "a\nB\n")
    assert shows(("a", ELIDED, "z"), "a\nz\n") and shows(("a", ELIDED, "z"), "a\nb\nc\nz\n")
    assert not shows(("a", ELIDED, "z"), "a\nb\nz\nextra\n")
    assert shows((ELIDED, "140 passed"), "x\ny\n140 passed\n") and not shows((ELIDED, "140 passed"), "14 passed\n")
    assert shows((), "") and not shows((), "something\n")


def _environment(tmp: Path) -> dict[str, str]:
    """As after ``. .venv/bin/activate``: this venv's ``cmap-policy`` and ``python`` come first."""
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as on a terminal
    env["CMAP_POLICY_CACHE_DIR"] = str(tmp / "policy-cache")
    return env


def _write_file(clone: Path, block: Fenced) -> None:
    assert block.title is not None
    target = (clone / block.title).resolve()
    assert target.is_relative_to(clone.resolve()), f"CONTRIBUTING.md line {block.line}: {block.title} is outside"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.text, encoding="utf-8")


@pytest.mark.slow
def test_every_transcript_in_the_guide_is_real_output(tmp_path: Path) -> None:
    if shutil.which("git") is None:  # as tests/test_readme.py: skipped locally (and said so), a failure on CI
        if os.environ.get("CI"):
            pytest.fail("the guide's commands need git (.ci/run installs it)", pytrace=False)
        pytest.skip("the guide's commands need git (.ci/run installs it)")
    clone = tmp_path / "clone"
    copy_clone(clone, "policy")
    subprocess.run(["git", "-C", str(clone), "switch", "-q", "-c", BRANCH], check=True, capture_output=True)
    env = _environment(tmp_path)
    blocks = fenced_blocks(GUIDE.read_text(encoding="utf-8"))
    ran = files = 0
    for block in blocks:
        if block.title is not None:
            _write_file(clone, block)
            files += 1
            continue
        if block.language != "console":
            continue
        for step in console_steps(block):
            try:
                out = subprocess.run(["bash", "-c", step.command], cwd=clone, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, check=False)
            except subprocess.TimeoutExpired:
                pytest.fail(f"CONTRIBUTING.md line {step.line}: `{step.command}` took more than {TIMEOUT} s")
            ran += 1
            actual = out.stdout.replace(str(clone), ".")  # the one thing that varies: where the clone is
            assert "Traceback (most recent call last)" not in actual, f"line {step.line}:\n{actual}"
            if not shows(step.expected, actual):
                diff = "\n".join(difflib.unified_diff(list(step.expected), actual.splitlines(), "shown", "real",
                                                      lineterm=""))
                pytest.fail(f"CONTRIBUTING.md line {step.line}: `{step.command}` (exit {out.returncode}) does "
                            f"not print what the guide shows ({ELIDED} lines may stand for any lines):\n{diff}\n"
                            f"--- its whole output\n{actual}", pytrace=False)
    # the reading found the guide's transcripts and the file it asks the author to write
    assert ran >= 20 and files >= 1, (ran, files)
