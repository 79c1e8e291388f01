"""The shape of the package: what a one-line `eval` loads, the policy cache, the command list, old paths."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

import cmap_policy
from cmap_policy.cli import COMMANDS, main
from cmap_policy.load import cache, load_policy
from cmap_policy.resources import policy_dir

ROOT = Path(__file__).resolve().parent.parent

# What a one-line decision must never import: the engines, authoring and the site (and their libraries).
HEAVY = ("cmap_policy.engines", "cmap_policy.authoring", "cmap_policy.site", "cmap_policy.testing",
         "cmap_policy.service", "duckdb", "pyarrow", "pyspark", "jsonschema", "referencing", "openpyxl", "mkdocs",
         "numpy", "hypothesis", "starlette", "uvicorn", "fhir", "pydantic", "prometheus_client")


def _modules_after(args: list[str], cache_dir: Path) -> set[str]:
    """The modules a fresh `cmap-policy ARGS` process has imported when it exits."""
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print('\\nMODULES ' + json.dumps(sorted(sys.modules))))\n"
        "from cmap_policy.cli import main\n"
        f"main({args!r}, prog_name='cmap-policy')\n"
    )
    env = {**os.environ, "CMAP_POLICY_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def test_one_line_eval_imports_no_engine_authoring_site_or_heavy_library(tmp_path: Path) -> None:
    args = ["eval", "--code", "T1016", "--date", "2026-01-05", "--modifier", "93"]
    _modules_after(args, tmp_path)  # the first run fills the policy cache
    loaded = _modules_after(args, tmp_path)
    assert "cmap_policy.interpreter" in loaded  # the probe sees what the command imported
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []


def test_the_policy_cache_is_on_and_follows_the_modules_it_keys_on(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    files = cache.code_files()
    names = {p.name for p in files}
    assert {"loader.py", "schema.py", "semantics.py", "canonical.py", "jsonfile.py", "model.py",
            "errors.py"} <= names
    assert all(p.is_file() for p in files)
    monkeypatch.setenv("CMAP_POLICY_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("CMAP_POLICY_CACHE", raising=False)
    first = load_policy()
    assert cache.fingerprint(policy_dir(), cache_schema_dir()) is not None

    def fail(root: Path) -> None:
        raise AssertionError("the second load should have come from the cache")

    monkeypatch.setattr("cmap_policy.load.loader.check_tree", fail)
    second = load_policy()
    assert second.hash == first.hash


def cache_schema_dir() -> Path:
    from cmap_policy.resources import schema_dir

    return schema_dir()


def test_every_command_in_the_one_list_is_a_command_of_that_name() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == list(COMMANDS)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command)
        assert command.name == name


def test_every_public_name_imports() -> None:
    for name in cmap_policy.__all__:
        assert getattr(cmap_policy, name) is not None


def test_old_module_paths_still_work() -> None:
    """The old paths are plain re-exports (no module swaps itself in ``sys.modules``): the same objects."""
    from cmap_policy.authoring import table
    from cmap_policy.engines import batch

    old_batch = importlib.import_module("cmap_policy.batch")
    assert old_batch is not batch and old_batch.run is batch.run and old_batch.Engine is batch.Engine
    old_table = importlib.import_module("cmap_policy.table_io")
    assert all(getattr(old_table, name) is getattr(table, name) for name in table.__all__)
    hooks = importlib.import_module("cmap_policy.site_hooks")
    assert callable(hooks.on_config) and callable(hooks.on_files)
    out = subprocess.run([sys.executable, "-m", "cmap_policy.site_write", "--help"], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and "mkdocs.yml" in out.stdout
    for path in ("batch", "spark", "table_io", "site_write", "site_hooks"):
        text = (ROOT / "cmap_policy" / f"{path}.py").read_text(encoding="utf-8")
        assert "sys.modules" not in text, path


def test_old_spark_path_is_the_engine() -> None:
    pytest.importorskip("pyspark")
    from cmap_policy.engines import spark

    old = importlib.import_module("cmap_policy.spark")
    assert old.evaluate is spark.evaluate and old.run is spark.run


def test_every_error_is_a_cmap_policy_error() -> None:
    from cmap_policy import errors

    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert len(classes) >= 9
    assert all(issubclass(c, errors.CmapPolicyError) for c in classes)
    with pytest.raises(errors.UnknownReleaseError, match="unknown release 'NOPE'"):
        load_policy().release("NOPE")


def test_the_architecture_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (it is part of the test extra)")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout[-2000:]
    assert "2 kept, 0 broken" in out.stdout


def test_no_module_is_longer_than_about_600_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "cmap_policy").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 620}
    assert long == {}
