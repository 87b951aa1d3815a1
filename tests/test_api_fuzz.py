"""Schemathesis against the OpenAPI spec of a real `zhiwen api` process: generated requests, valid
(positive) and schema-violating (negative), to every operation, with an admin key (so they get past
auth into the real handlers) and without one. Whatever comes in, the server never answers 5xx.

Driven through hypothesis directly (one @given per operation): schemathesis' lazy pytest plugin does
not run on this pytest.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from core.keys import create_key
from core.settings import load_settings
from ingest.pipeline import ingest_paths
from tests.api_server import running_api
from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    s = load_settings(data_dir=root / "data")
    ingest_paths([SAMPLES / "员工手册.txt"], "demo", s)
    _, admin = create_key(s, "fuzz-admin", {"*": "admin"})
    with running_api(s.data_dir, env={"ZHIWEN_UPLOAD_MAX_MB": "1"}) as base:
        yield base, admin, schemathesis.openapi.from_url(f"{base}/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_generated_request_makes_the_server_fail(fuzz_target, mode):
    base, admin, schema = fuzz_target
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14, [op.label for op in operations]
    calls = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case):
            for headers in ({"Authorization": f"Bearer {admin}"}, {}):
                case.call_and_validate(base_url=base, headers=headers, checks=[not_a_server_error], timeout=60)
                calls.append(case.operation.label)

        try:
            no_server_error()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing in it can be made invalid
    exercised = set(calls)
    if mode is GenerationMode.POSITIVE:
        assert len(exercised) == len(operations), "every operation was exercised"
    else:
        # Only request bodies can be made invalid (every string is a valid path parameter).
        assert {"POST /v1/chat/completions", "POST /v1/eval", "POST /v1/knowledge-bases"} <= exercised, exercised
