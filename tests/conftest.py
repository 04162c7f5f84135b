"""Fixtures: an emulated AWS built from template.yaml, and a clock the tests move."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
import time_machine
from moto import mock_aws

from incident_engine.wiring import reset_services
from local.template import LocalStack, provision
from tests.support import TOKEN, Api, Tap, Timers

START = datetime(2026, 11, 22, 7, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never reach a real AWS account or a running local stack from a test.
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "PUBLIC_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "IncidentEngineTests")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "incident-engine")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Time stands still at START until a test moves it with clock.shift(seconds)."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, clock: time_machine.Traveller) -> Iterator[LocalStack]:
    """Every table, queue and topic of template.yaml on moto, and the functions' environment set."""
    with mock_aws():
        stack = provision(
            boto3.Session(),
            parameters={
                "ApiTokenSha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                # Counted on every request, as deployed, but high enough that no test's own
                # requests (under a clock that stands still) reach it; test_hardening lowers it.
                "TokenRateLimitPerMinute": "100000",
            },
        )
        for name, value in stack.environment().items():
            monkeypatch.setenv(name, value)
        # The worker and reconciler get a link base from the template; make it the sample's.
        monkeypatch.setenv("PUBLIC_API_URL", "https://abc123.execute-api.us-east-1.amazonaws.com/v1")
        reset_services()
        yield stack
        reset_services()
    assert "AWS_ENDPOINT_URL" not in os.environ and "AWS_ENDPOINT_URL_DYNAMODB" not in os.environ


@pytest.fixture
def api(aws: LocalStack) -> Api:
    return Api(aws)


@pytest.fixture
def timers(aws: LocalStack) -> Timers:
    return Timers(aws)


@pytest.fixture
def tap(aws: LocalStack) -> Tap:
    return Tap(aws)
