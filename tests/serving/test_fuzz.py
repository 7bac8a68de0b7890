"""Schema-based fuzzing of a real server from its own ``/openapi.json`` (schemathesis, Python API).

Every operation gets ``CASES_PER_OPERATION`` schema-valid requests with every parameter generated,
as many aimed at the served model (``model_name`` fixed to it, so predict bodies reach the model)
and, for predict, as many whose body breaks the schema. Each response must be a documented, non-5xx status with a body
matching the documented schema and content type; afterwards the server must still be up, still
serve, and its resident memory must not have grown by more than ``RSS_GROWTH_LIMIT_BYTES``.
Generation is derandomized, so a run is reproducible.
"""

from __future__ import annotations

import psutil
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

pytestmark = pytest.mark.e2e

MODEL = "depth"
CASES_PER_OPERATION = 12
RSS_GROWTH_LIMIT_BYTES = 300 * 2**20
TIMEOUT_S = 30
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_fuzz_the_rest_api_from_its_openapi_schema(session_server):
    schema = schemathesis.openapi.from_url(f"{session_server.url}/openapi.json", timeout=TIMEOUT_S)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # 3 selectors x (status, metadata, predict) + metrics
    server = psutil.Process(session_server.process.pid)
    rss_before = server.memory_info().rss
    statuses: dict[int, int] = {}
    session = requests.Session()

    for operation in operations:
        strategies = [operation.as_strategy()]  # every parameter generated
        if "model_name" in operation.path_parameters:
            strategies.append(operation.as_strategy(path_parameters={"model_name": MODEL}))
        if operation.body:  # a body that breaks the schema (path parameters cannot: any string fits)
            negative = schemathesis.GenerationMode.NEGATIVE
            strategies.append(operation.as_strategy(negative, path_parameters={"model_name": MODEL}))
        for strategy in strategies:

            @settings(
                max_examples=CASES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def fuzz(case):
                response = case.call(base_url=session_server.url, session=session, timeout=TIMEOUT_S)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=CHECKS)

            fuzz()

    assert session_server.process.poll() is None
    assert server.memory_info().rss - rss_before < RSS_GROWTH_LIMIT_BYTES
    assert all(status < 500 for status in statuses), statuses
    assert 200 in statuses and 400 in statuses, statuses  # both accepted and refused requests
    image = [[[[0.0, 0.0, 0.0]]]]
    response = session.post(f"{session_server.url}/v1/models/{MODEL}:predict", json={"instances": image})
    assert response.status_code == 200
    print(f"fuzz statuses: {dict(sorted(statuses.items()))}")
