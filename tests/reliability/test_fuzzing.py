"""Schemathesis over every operation of the served OpenAPI document, against a live uvicorn as a data owner."""

from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import tokens_for
from tests.reliability import report
from tests.reliability.conftest import CHAOS_SCALE
from tests.reliability.test_authorization_matrix import World

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation: ~40 operations x 250 = 10 000+ cases nightly (CHAOS_SCALE=10); 25 each in CI.
EXAMPLES = max(5, int(25 * CHAOS_SCALE))


def destructive_last(operation: Any) -> tuple[int, str]:
    """Deletes and logout run after everything else, so the owner's data is there for the other operations."""
    late = operation.method.upper() == "DELETE" or operation.path.endswith("/logout")
    return (late, operation.label)


def run_operation(operation: Any, base_url: str, headers: dict[str, str], own: dict[str, int], tally: Counter) -> list:
    """Fuzz one operation; every case is checked, and failures are collected instead of stopping the run."""
    failures: list[str] = []
    strategy = st.one_of(operation.as_strategy(), operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

    @given(case=strategy, mine=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any, mine: bool) -> None:
        if mine:  # Half the cases address the owner's real objects; the rest random (mostly foreign) ids.
            for name in case.path_parameters or {}:
                if name in own:
                    case.path_parameters[name] = own[name]
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        tally["cases"] += 1
        tally[f"status_{response.status_code // 100}xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis raises a group of check failures
            if response.status_code >= 500:
                tally["5xx"] += 1
            else:
                tally["violations"] += 1
            found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
            what = "; ".join(f"{type(e).__name__}: {' '.join(str(e).split())[:200]}" for e in found)
            failures.append(f"{operation.label} -> {response.status_code}: {what}")

    fuzz()
    return failures


def test_fuzz_every_operation_of_the_openapi_document(start_server):
    world = World()
    server = start_server()
    document = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=destructive_last)
    own = {"project_id": world.project.pk, "video_id": world.video.pk, "session_id": world.scored.pk}
    tally: Counter = Counter()
    failures: list[str] = []
    for operation in operations:
        # A fresh token per operation: a nightly-sized run outlives an access token's lifetime.
        headers = {"Authorization": f"Bearer {tokens_for(world.owner)['access']}"}
        failures += run_operation(operation, server.url, headers, own, tally)
    ok = tally["5xx"] == 0 and tally["violations"] == 0
    report.record(
        "fuzzing" if CHAOS_SCALE < 10 else "fuzzing_nightly",
        item=10,
        scenario=f"schemathesis {schemathesis.__version__} over {len(operations)} operations "
        f"(positive + negative, {EXAMPLES} examples each, owner's bearer token, uvicorn)",
        figure=f"{tally['cases']} cases, {tally['5xx']} x 5xx, {tally['violations']} schema violations",
        goal="0 x 5xx, 0 violations (≥ 10 000 cases nightly)",
        ok=ok,
        statuses={k: v for k, v in tally.items() if k.startswith("status_")},
        failures=failures[:50],
    )
    assert not failures, "\n".join(sorted(set(failures))[:40])
