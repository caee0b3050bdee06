"""Every operation of the OpenAPI document, fuzzed against a real API: no 5xx, and every
answer valid against the document.

Schemathesis reads ``/openapi.json`` from a running uvicorn with an API key configured,
sends the key, and runs its examples, coverage (boundary and invalid values of each
parameter) and fuzzing phases with a bounded number of cases per operation. The checks:
no server error; every response's body matches the schema its status declares; every
status is one the operation declares. A finding fails the test with the request that
reproduces it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from tests.conftest import Fleet
from tests.support.seed import seed_universe
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(180)

API_KEY = "fuzz-key-3c1f9d2e"
MAX_EXAMPLES = 25
# An event stream never ends, so no case of it could finish; its refusals and its events
# are asserted in tests/integration/api/test_chain_page.py.
ENDLESS = "/chain/events"
CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance")


@pytest.fixture
def base_url(make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]) -> str:
    settings = make_settings(api_key=API_KEY, database_timeout_seconds=2.0)
    seed_universe(settings)
    _, base = fleet_factory(settings).api()
    return base


def _config(base_url: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "base-url": base_url,
            "headers": {"X-API-Key": API_KEY},
            "seed": 20260601,
            "request-timeout": 15,
            "cache": {"enabled": False},  # nothing written into the working tree
            "generation": {"max-examples": MAX_EXAMPLES},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )


def _findings(event: events.EngineEvent) -> Iterator[str]:
    """What an engine event says went wrong, a line each."""
    if isinstance(event, events.ScenarioFinished) and event.status in (
        Status.FAILURE,
        Status.ERROR,
    ):
        for case_id, checks in event.recorder.checks.items():
            case = event.recorder.cases[case_id].value
            for check in checks:
                if check.status is Status.FAILURE and check.failure_info is not None:
                    title = check.failure_info.failure.title
                    yield f"{event.recorder.label}: {check.name}: {title}: {case.as_curl_command()}"
        if event.status is Status.ERROR:
            yield f"{event.recorder.label}: the scenario errored"
    elif isinstance(event, events.NonFatalError | events.FatalError):
        yield f"engine error: {event}"


def test_no_operation_answers_5xx_or_off_schema(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(
        f"{base_url}/openapi.json", config=_config(base_url), timeout=10
    ).exclude(path=ENDLESS)
    found: list[str] = []
    cases = 0
    finished: events.EngineFinished | None = None
    operations: set[str] = set()
    for event in from_schema(schema).execute():
        found.extend(_findings(event))
        if isinstance(event, events.ScenarioFinished):
            operations.add(event.recorder.label)
            cases += len(event.recorder.cases)
        if isinstance(event, events.EngineFinished):
            finished = event

    unique = list(dict.fromkeys(found))
    assert not unique, "\n".join(unique[:20])
    assert finished is not None
    assert finished.stop_reason == "completed"
    documented = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
    }
    assert f"GET {ENDLESS}" in documented
    documented.discard(f"GET {ENDLESS}")
    assert documented <= operations, documented - operations  # every operation ran
    assert cases >= MAX_EXAMPLES * len(documented)
