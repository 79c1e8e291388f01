"""Shared by the tests that run what a document shows (README.md, CONTRIBUTING.md): its fenced blocks, read in
order, and a copy of this clone as a fresh git repository for the commands to run in, so that they never touch
the working tree the tests run from."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A fence opens with its language and, after it, the rest of the info string (e.g. `title="a/file.json"`).
_FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```", re.M | re.S)
_TITLE = re.compile(r'\btitle="([^"]+)"')


@dataclass(frozen=True)
class Fenced:
    language: str
    title: str | None  # the info string's title="...": for a file the document shows, its path
    text: str
    line: int  # of the document, where the block's first line is


def fenced_blocks(text: str) -> list[Fenced]:
    """Every fenced block of a Markdown document, in order."""
    out = []
    for m in _FENCE.finditer(text):
        title = _TITLE.search(m.group(2))
        out.append(Fenced(m.group(1), title.group(1) if title else None, m.group(3),
                          text.count("\n", 0, m.start()) + 2))
    return out


def copy_clone(dst: Path, *paths: str) -> None:
    """The repository's files as a fresh clone has them (plus new files not ignored), committed on ``main``.

    ``paths`` (folders or files of the repository) copy only those: a document whose commands read only them
    need not wait for the rest.
    """
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                             "--", *paths], capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree, not yet committed
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    git = ["git", "-C", str(dst), "-c", "user.name=Docs test", "-c", "user.email=docs@example.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "a fresh clone"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
