"""Property-based tests of every operation in `/openapi.json` (schemathesis): whatever a
schema-driven client or fuzzer sends, the service never answers with a 5xx.

One live server (SQLite and the local store: the inputs are what is tested, not the back ends;
the edge tests cover those), a bounded number of examples per operation, and a valid bearer
token on every request, so the generated requests reach the handlers behind authentication.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.conftest import make_settings
from tests.support.live import LiveServer, start_server

EXAMPLES_PER_OPERATION = 20

# tus PATCH and creation-with-upload bodies are bytes, sent as application/octet-stream would be
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@pytest.fixture(scope="module")
def fuzzed_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(request, tmp_path_factory.mktemp("schemathesis"), "sqlite-local")
    live = start_server("schemathesis", settings)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_server.base_url}/openapi.json")


@pytest.fixture(scope="module")
def bearer(fuzzed_server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {fuzzed_server.token('fuzzer')}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_a_server_error(
    api_schema: schemathesis.BaseSchema, bearer: dict[str, str], mode: GenerationMode
) -> None:
    """Every operation, with data that fits the schema (positive) and data that does not
    (negative: the answer must be a 4xx, never a 5xx)."""
    failures: list[str] = []
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document is a valid OpenAPI schema
        operations.append(result.ok())
    assert len(operations) > 10

    for operation in operations:

        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
            database=None,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=bearer, checks=[not_a_server_error], timeout=30)

        try:
            call()
        except hypothesis.errors.Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters
        except Exception as error:  # every operation is tried; all failures are reported
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")

    assert not failures, "\n\n".join(failures)
