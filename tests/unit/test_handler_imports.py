"""What importing each non-api handler loads: its cold start (bench/cold_start.py) pays for all of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
# Neither a timer, a reconciler pass nor a credential look-up needs pydantic (the routing rules'
# documents are its only user outside the api), boto3 (imported when a client is first built), the
# alert ingest use case or the routing rules' matching; the worker reports its failed records
# itself, without Powertools' batch utility (asyncio and every event data class).
NOT_AT_IMPORT = {
    "aws_lambda_powertools.utilities.batch",
    "pydantic",
    "boto3",
    "incident_engine.domain.routing_documents",
    "incident_engine.usecases.ingest",
    "incident_engine.usecases.routing_rules",
    "incident_engine.domain.routing",
    # the api's use cases for one-click links, policies and webhooks
    "incident_engine.usecases.links",
    "incident_engine.usecases.policies",
    "incident_engine.usecases.webhooks",
}


# A credential look-up reads the config table and nothing else: the engine, the incident store,
# the outbox's publisher and the timers are the incident path's, which the authorizer never takes.
NOT_IN_THE_AUTHORIZER = {
    "incident_engine.domain.engine",
    "incident_engine.store.incidents",
    "incident_engine.adapters.notifications",
    "incident_engine.adapters.timers",
    "incident_engine.usecases.dispatch",
}


def loaded_by_importing(handler: str) -> set[str]:
    """The modules a fresh interpreter holds after importing a handler, as an on-demand cold start."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_INITIALIZATION_TYPE"}
    env["PYTHONPATH"] = f"{ROOT / 'shared'}{os.pathsep}{ROOT}"
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", PROBE.format(module=f"functions.{handler}.app")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("handler", ["escalation_worker", "reconciler", "authorizer"])
def test_an_on_demand_cold_start_imports_no_pydantic_and_no_boto3(handler: str) -> None:
    # Given a fresh interpreter, as an on-demand cold start (no SnapStart or provisioned init)
    # When the handler's module is imported
    loaded = loaded_by_importing(handler)
    # Then none of those modules is loaded
    assert not loaded & NOT_AT_IMPORT, sorted(loaded & NOT_AT_IMPORT)


def test_the_authorizer_imports_none_of_the_incident_path() -> None:
    loaded = loaded_by_importing("authorizer")
    assert not loaded & NOT_IN_THE_AUTHORIZER, sorted(loaded & NOT_IN_THE_AUTHORIZER)
    # ... while the worker does (the probe sees what a handler loads)
    assert loaded_by_importing("escalation_worker") >= NOT_IN_THE_AUTHORIZER
