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
# documents are its only user outside the api), boto3 (imported when a client is first built) or
# the alert ingest use case; the worker reports its failed records itself, without Powertools'
# batch utility (asyncio and every event data class).
NOT_AT_IMPORT = {
    "aws_lambda_powertools.utilities.batch",
    "pydantic",
    "boto3",
    "incident_engine.domain.routing_documents",
    "incident_engine.usecases.ingest",
}


@pytest.mark.parametrize("handler", ["escalation_worker", "reconciler", "authorizer"])
def test_an_on_demand_cold_start_imports_no_pydantic_and_no_boto3(handler: str) -> None:
    # Given a fresh interpreter, as an on-demand cold start (no SnapStart or provisioned init)
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_INITIALIZATION_TYPE"}
    env["PYTHONPATH"] = f"{ROOT / 'shared'}{os.pathsep}{ROOT}"
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # When the handler's module is imported
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", PROBE.format(module=f"functions.{handler}.app")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    # Then none of those modules is loaded
    assert not loaded & NOT_AT_IMPORT, sorted(loaded & NOT_AT_IMPORT)
