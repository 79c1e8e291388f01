"""Where the bundled policy and schemas live, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    bundled = _PACKAGE / "_bundled" / name  # a wheel puts them here
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name  # a source checkout or an editable install


def policy_dir() -> Path:
    return _find("policy")


def schema_dir() -> Path:
    return _find("schema")


def examples_dir() -> Path:
    return _find("examples")
