"""The coverage-guided fuzz targets (tests/fuzz.py), each for a few seconds: no crash, no hang.

Together they stay well under two minutes. ``python -m tests.fuzz all --minutes 10`` runs them longer
(docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .fuzz import TARGETS, fuzz

pytest.importorskip("atheris", reason="atheris has wheels for Linux x86-64 only (pyproject.toml's test extra)")

SECONDS = 8


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_nothing(target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAP_POLICY_CACHE_DIR", str(tmp_path / "cache"))
    run = fuzz(target, SECONDS, tmp_path)
    assert run.executions > 0, f"{target}: the fuzzer did not run"
    assert run.crashes == {}, "\n".join(f"{s}: {p}" for s, p in run.crashes.items())
    assert run.corpus_files > 0
