from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, Verbosity, settings

# A thorough profile for CI and a quick one for local runs; a failure prints the
# seed (Hypothesis reports `@reproduce_failure` / `--hypothesis-seed`).
settings.register_profile("ci", max_examples=500, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None, print_blob=True)
settings.register_profile("debug", max_examples=10, verbosity=Verbosity.verbose, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Print the seed of a failing Hypothesis test: Hypothesis itself prints only its reproduce blob then."""
    outcome = yield
    report = outcome.get_result()
    seed = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_generated_seed", None)
    if report.when == "call" and report.failed and seed is not None:
        report.sections.append(("Hypothesis seed", f"rerun with: pytest '{item.nodeid}' --hypothesis-seed={seed}"))
