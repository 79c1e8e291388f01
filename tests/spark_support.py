"""What the Spark tests need before they start: pyspark and Java. Without them the tests are skipped, except
under CI, where they fail (CI must run them)."""

from __future__ import annotations

import os
import shutil
from importlib.util import find_spec

import pytest


def missing() -> str | None:
    if find_spec("pyspark") is None:
        return "pyspark is not installed (pip install '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "java is not installed (Spark 4 needs Java 17 or 21)"
    return None


def require_spark() -> None:
    """Skip the calling test module when Spark cannot run here; fail it under CI."""
    why = missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the Spark tests cannot run on CI: {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)
