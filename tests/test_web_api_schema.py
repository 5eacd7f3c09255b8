"""schemathesis against /openapi.json: requests generated from the API's own schema (valid
and invalid bodies, uploads) to every operation; none may end in a 5xx.

``FLOPCAST_SCHEMA_EXAMPLES`` sets the examples per operation (default keeps the run short;
the slow operations — simulations and searches — get a quarter of them).
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from flopcast.web.app import create_app  # noqa: E402

EXAMPLES = int(os.environ.get("FLOPCAST_SCHEMA_EXAMPLES", "20"))
#: Operations whose one call simulates a request stream or searches many configurations, and
#: the fields set to keep one call short.
SLOW = {"/api/serve": {"num_requests": 20}, "/api/serve/plan": {"num_requests": 20},
        "/api/plan/train": {"gpus": 8}, "/api/reason/plan": {"max_k": 16}}
TRIED: Counter = Counter()
SERVER_ERRORS: Counter = Counter()
#: Answers by status code.
STATUS: Counter = Counter()

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_no_server_error(case):
    short = SLOW.get(case.operation.path)
    key = f"{case.method} {case.operation.path}"
    if short is not None and TRIED[key] >= max(2, EXAMPLES // 4):
        return
    TRIED[key] += 1
    if short is not None and isinstance(case.body, dict):
        case.body = {**case.body, **short}
    response = case.call()
    STATUS[response.status_code] += 1
    if response.status_code >= 500:
        SERVER_ERRORS[key] += 1
    case.validate_response(response, checks=[not_a_server_error])


def teardown_module(module):
    """Inputs tried and 5xx answers per operation (shown with ``pytest -s``)."""
    print(f"\nschemathesis: {sum(TRIED.values())} inputs, {sum(SERVER_ERRORS.values())} 5xx "
          f"(answers by status: {dict(sorted(STATUS.items()))}): "
          + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())))
