"""A fuzz run of the service from its own OpenAPI document (schemathesis): no 5xx, every answer as documented.

Schemathesis reads the document the running service serves and sends each operation requests made from
its schemas, valid and not; every response must be no server error, have a documented status and content
type, and match the documented schema. The examples per operation are bounded so the run takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from cmap_policy.service import ServiceConfig

from .service_support import serve

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]
# The document's claim line schema says what a line may hold, not every rule of parse_line (a real procedure
# code, a real calendar date): a line that fits the schema may still be refused with a 422, by design.
EXCLUDED = [checks.positive_data_acceptance, checks.negative_data_rejection]
EXAMPLES = 30  # per operation and mode: the whole run takes seconds


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    log = Path(tmp_path_factory.mktemp("fuzz")) / "decisions.jsonl"
    with serve(ServiceConfig(log=log, access_log=False)) as running:
        yield schemathesis.openapi.from_url(f"{running.url}/openapi.json")


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


# Hypothesis drives schemathesis directly: its pytest plugin does not run on the pytest this project pins.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_every_request_as_its_document_says(api_schema: Any, mode: GenerationMode) -> None:
    operations = _operations(api_schema)
    assert {op.path for op in operations} >= {"/v1/decide", "/v1/decide/batch", "/v1/codes/{code}",
                                              "/cds-services/{service}"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.body) or len(operation.query)
                                                    or len(operation.path_parameters)):
            continue  # nothing in the request to make invalid (GET /health)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            case.call_and_validate(checks=CHECKS, excluded_checks=EXCLUDED)

        fuzz()
