"""The Python examples of tables in memory run as written: every ```python block of docs/tables.md and the README's
blocks that call ``decide_table`` (tests/test_readme.py runs the README's again, from a fresh install, slowly).

Each block runs in a fresh interpreter of this environment, from a copy of the clone's ``examples/`` (so the
files a block writes never land in the working tree), and must exit 0, with no traceback, printing what the
block's own comments promise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .doc_support import ROOT, Fenced, copy_clone, fenced_blocks

DOCS = {"README.md": ROOT / "README.md", "docs/tables.md": ROOT / "docs" / "tables.md"}


def _blocks() -> list[tuple[str, Fenced]]:
    out = []
    for name, path in DOCS.items():
        for block in fenced_blocks(path.read_text(encoding="utf-8")):
            if block.language == "python" and (name != "README.md" or "decide_table" in block.text):
                out.append((f"{name}:{block.line}", block))
    return out


BLOCKS = _blocks()
# what each block prints, in part: the decisions of the lines it decides
EXPECTED = {
    "pd.read_csv": ["payable-audio-only", "NOT_PERMITTED_VIA_TELEHEALTH", "CODE_NOT_IN_DATA", "not_telehealth"],
    "pl.DataFrame": ["ON_TELEHEALTH_TABLE", "│ 3    ┆ code"],
    "duckdb.sql": ["['payable', 'not_payable', 'undetermined']"],
    "PB-2020-14": ["['not_payable']", "'field': 'date'"],
    "decide_batches": ["4 lines decided"],
}


def test_the_blocks_are_found() -> None:
    where = [w for w, _ in BLOCKS]
    assert sum(w.startswith("README.md") for w in where) == 2 and sum(w.startswith("docs/") for w in where) >= 3
    for needle in EXPECTED:
        assert sum(needle in b.text for _, b in BLOCKS) == 1, needle


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("clone")
    copy_clone(where, "examples")
    return where


@pytest.mark.parametrize("block", [b for _, b in BLOCKS], ids=[w for w, _ in BLOCKS])
def test_a_python_example_runs_as_written(clone: Path, block: Fenced) -> None:
    ran = subprocess.run([sys.executable, "-"], input=block.text, cwd=clone, capture_output=True, text=True,
                         timeout=300, check=False)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr[-3000:]
    expected = [text for needle, texts in EXPECTED.items() if needle in block.text for text in texts]
    assert expected, "each example's output is checked"
    for text in expected:
        assert text in ran.stdout, (text, ran.stdout)
