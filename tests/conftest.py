from __future__ import annotations

import os

from hypothesis import HealthCheck, Verbosity, settings

# A thorough profile for CI and a quick one for local runs; a failure prints the
# seed (Hypothesis reports `@reproduce_failure` / `--hypothesis-seed`).
settings.register_profile("ci", max_examples=500, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None, print_blob=True)
settings.register_profile("debug", max_examples=10, verbosity=Verbosity.verbose, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
