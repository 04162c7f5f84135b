"""What is deployed is what is tested: every function, built as `sam build` builds it, run as Lambda
runs it (a fresh Python 3.13 whose path is the function's folder, then the layers as /opt/python,
then the standard library; nothing else), against the emulator, with every sample event in events/.

A library missing from the dependencies layer, a handler or CodeUri typo in the template, or a layer
shipped without 3.13 bytecode fails here. The build is cached on its inputs (local/build.py), so only
the first run after a change to a layer, a function or the template pays for it.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.build import Artifact, build, find_python313
from local.invoke import (
    EVENTS,
    Invocation,
    create_incident,
    fresh_emulator,
    load_event,
    needs_incident,
    run,
    token_parameters,
    with_incident,
)
from local.template import LocalStack, load_template, provision

pytestmark = pytest.mark.e2e

# Which function each sample event is for, by its file name's prefix.
FUNCTION_BY_PREFIX = {  # first match wins: the longer prefixes first
    "api_": "ApiFunction",
    "authorizer_": "AuthorizerFunction",
    "sqs_webhook_": "WebhookSenderFunction",
    "sqs_": "EscalationWorkerFunction",
    "reconciler_": "ReconcilerFunction",
    "cloudwatch_": "AlarmIngestFunction",
}
# Request bodies as Alertmanager and PagerDuty clients post them (not Lambda events): the parsers'
# and the ingestion routes' tests send them through the api function.
ALERT_PAYLOADS = ("alertmanager_", "pagerduty_")
SAMPLES = sorted(p.name for p in EVENTS.glob("*.json") if not p.name.startswith(ALERT_PAYLOADS))


@pytest.fixture(scope="module")
def artifact() -> Artifact:
    python = find_python313()
    if python is None:
        # The artifact is what ships: not testing it is a failure, never a quiet skip.
        pytest.fail(
            "Python 3.13 (the Lambda runtime's version) is not on PATH or in pyenv, so the built "
            "artifact cannot be run here; install it (e.g. `pyenv install 3.13`) and run again"
        )
    return build(python)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with fresh_emulator() as url:
        yield url


@pytest.fixture
def stack(endpoint: str) -> LocalStack:
    """The template's resources under a name of this test's own: every test starts empty."""
    import boto3

    session = boto3.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
    return provision(
        session,
        stack_name=f"artifact-{uuid.uuid4().hex[:8]}",
        endpoint_url=endpoint,
        parameters=token_parameters(),
    )


@pytest.fixture
def invoke(artifact: Artifact, stack: LocalStack) -> Callable[[str, dict[str, Any]], Invocation]:
    def call(function: str, event: dict[str, Any]) -> Invocation:
        fn = artifact.functions[function]
        result = run(artifact, fn, event, stack.function(function).environment)
        assert result.error is None, (result.error, result.logs)
        # The layers ship bytecode for this Python: nothing in /opt is compiled at a cold start.
        assert result.compiled_under(fn.opt) == [], result.compiled_under(fn.opt)[:5]
        return result

    return call


def _function_for(sample: str) -> str:
    return next(fn for prefix, fn in FUNCTION_BY_PREFIX.items() if sample.startswith(prefix))


def _body(result: Invocation, status: int) -> Any:
    assert result.response["statusCode"] == status, result.response
    return json.loads(result.response["body"])


def _sqs(stack: LocalStack) -> Any:
    import boto3

    return boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=stack.function("ApiFunction").environment["AWS_ENDPOINT_URL"],
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )


def test_every_sample_event_and_every_function_is_covered() -> None:
    assert SAMPLES
    unknown = [s for s in SAMPLES if not any(s.startswith(p) for p in FUNCTION_BY_PREFIX)]
    assert unknown == [], "add the new event's function to FUNCTION_BY_PREFIX and an expectation below"
    assert set(EXPECTED) == set(SAMPLES)
    functions = {
        k for k, r in load_template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    assert {_function_for(s) for s in SAMPLES} == functions


def _api_create_policy(result: Invocation, stack: LocalStack) -> None:
    policy = _body(result, 201)
    assert policy["name"] == "Payments on-call" and policy["is_default"] is True


def _api_create_schedule(result: Invocation, stack: LocalStack) -> None:
    # A fresh stack has none of the sample's users: refused, naming the first (the documented answer).
    answer = json.loads(result.response["body"])
    assert result.response["statusCode"] == 422 and answer["field"] == "layers.0.users.0", answer


def _api_create_incident(result: Invocation, stack: LocalStack) -> None:
    incident = _body(result, 201)
    assert incident["id"].startswith("INC-") and incident["status"] == "open"


def _api_get_incident(result: Invocation, stack: LocalStack) -> None:
    assert _body(result, 200)["title"] == "Checkout API error rate above 20%"


def _api_acknowledge_incident(result: Invocation, stack: LocalStack) -> None:
    incident = _body(result, 200)
    assert incident["status"] == "acknowledged" and incident["acknowledged_by"] == "oncall@example.com"


def _api_resolve_incident(result: Invocation, stack: LocalStack) -> None:
    incident = _body(result, 200)
    assert (
        incident["status"] == "resolved" and incident["resolution_note"] == "Rolled back release 2026.11.22-3"
    )


def _authorizer(result: Invocation, stack: LocalStack) -> None:
    assert result.response["principalId"] == "admin"
    assert [s["Effect"] for s in result.response["policyDocument"]["Statement"]] == ["Allow"]


def _worker(result: Invocation, stack: LocalStack) -> None:
    # Two timers for incidents this stack never had are stale (dropped); the third is no timer.
    assert result.response == {
        "batchItemFailures": [{"itemIdentifier": "0b4f2a8e-1c6d-4f0e-9d3a-000000000002"}]
    }


def _heartbeat_worker(result: Invocation, stack: LocalStack) -> None:
    # A heartbeat timer for a heartbeat this stack never had is stale (dropped); the second is of
    # an unknown kind and the third names no heartbeat: both reported failed (then the DLQ).
    assert result.response == {
        "batchItemFailures": [
            {"itemIdentifier": "5e1d7c3a-9b2f-4a6e-8c1d-000000000002"},
            {"itemIdentifier": "5e1d7c3a-9b2f-4a6e-8c1d-000000000003"},
        ]
    }


def _maintenance_worker(result: Invocation, stack: LocalStack) -> None:
    # An edge of a window this stack never had is stale (dropped); the second names no edge.
    assert result.response == {
        "batchItemFailures": [{"itemIdentifier": "8a4b2c1d-3e5f-4a7b-9c0d-000000000002"}]
    }


def _webhook_sender(result: Invocation, stack: LocalStack) -> None:
    # The first names a webhook this stack never had: dropped; the second is no SNS envelope.
    assert result.response == {
        "batchItemFailures": [{"itemIdentifier": "7d2c9e10-4b3a-4c1d-8e2f-000000000002"}]
    }


def _alarm_opens(result: Invocation, stack: LocalStack) -> None:
    # A fresh stack has no service: the alarm opens on the catch-all, never disappears.
    assert [o["outcome"] for o in result.response["outcomes"]] == ["opened"], result.response
    assert result.response["rejected"] == 0


def _alarm_ok(result: Invocation, stack: LocalStack) -> None:
    # OK for an alarm no incident holds: a no-op that says so.
    assert [o["outcome"] for o in result.response["outcomes"]] == ["ignored"], result.response


def _reconciler(result: Invocation, stack: LocalStack) -> None:
    assert result.response == {"timers_rearmed": 0, "notifications_republished": 0}


EXPECTED: dict[str, Callable[[Invocation, LocalStack], None]] = {
    "api_acknowledge_incident.json": _api_acknowledge_incident,
    "api_create_incident.json": _api_create_incident,
    "api_create_policy.json": _api_create_policy,
    "api_create_schedule.json": _api_create_schedule,
    "api_get_incident.json": _api_get_incident,
    "api_resolve_incident.json": _api_resolve_incident,
    "authorizer_token.json": _authorizer,
    "reconciler_tick.json": _reconciler,
    "sqs_timer_batch.json": _worker,
    "sqs_heartbeat_timer_batch.json": _heartbeat_worker,
    "sqs_maintenance_timer_batch.json": _maintenance_worker,
    "sqs_webhook_batch.json": _webhook_sender,
    "cloudwatch_eventbridge_alarm.json": _alarm_opens,
    "cloudwatch_eventbridge_composite.json": _alarm_opens,
    "cloudwatch_eventbridge_ok.json": _alarm_ok,
    "cloudwatch_sns_alarm.json": _alarm_opens,
    "cloudwatch_sns_composite.json": _alarm_opens,
    "cloudwatch_sns_metric_math.json": _alarm_opens,
    "cloudwatch_sns_ok.json": _alarm_ok,
}


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_built_function_answers_the_sample_event(
    sample: str,
    artifact: Artifact,
    stack: LocalStack,
    invoke: Callable[[str, dict[str, Any]], Invocation],
) -> None:
    event = load_event(EVENTS / sample)
    if needs_incident(event):  # as `make invoke` does: make the incident first, with the built api
        incident, created = create_incident(artifact, stack)
        assert created.error is None and created.compiled_under(artifact.functions["ApiFunction"].opt) == []
        event = with_incident(event, incident)
    EXPECTED[sample](invoke(_function_for(sample), event), stack)


def test_a_default_policy_then_an_incident_escalates_through_the_emulator(
    stack: LocalStack, invoke: Callable[[str, dict[str, Any]], Invocation]
) -> None:
    invoke("ApiFunction", load_event(EVENTS / "api_create_policy.json"))
    incident = _body(invoke("ApiFunction", load_event(EVENTS / "api_create_incident.json")), 201)
    assert incident["status"] == "escalating" and incident["escalation"]["level"] == 0
    # The next level's timer went to the emulator's timer queue, from the built function's boto3.
    attrs = _sqs(stack).get_queue_attributes(QueueUrl=stack.physical["TimerQueue"], AttributeNames=["All"])
    waiting = int(attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"]) + int(
        attrs["Attributes"]["ApproximateNumberOfMessages"]
    )
    assert waiting == 1


# ----------------------------------------------------------------------------- it can fail


def _broken_copy(fn_opt: Path, tmp_path: Path, drop: Callable[[Path], bool]) -> Path:
    """A copy of a function's /opt without what `drop` selects (hard links: instant)."""
    target = tmp_path / "opt" / "python"

    def keep(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if drop(Path(folder) / n)]

    shutil.copytree(fn_opt, target, ignore=keep, copy_function=_link)
    return target


def _link(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


def test_a_library_missing_from_the_layer_fails_the_function(
    artifact: Artifact, stack: LocalStack, tmp_path: Path
) -> None:
    fn = artifact.functions["ApiFunction"]
    broken = _broken_copy(fn.opt, tmp_path, lambda p: p.name == "pydantic_core")
    result = run(
        artifact,
        _with_opt(fn, broken),
        load_event(EVENTS / "api_create_policy.json"),
        stack.function(fn.logical_id).environment,
    )
    assert result.error is not None and result.error["errorType"] == "Runtime.ImportModuleError"
    assert "pydantic_core" in result.error["errorMessage"]


def test_a_layer_without_bytecode_is_seen_compiling(
    artifact: Artifact, stack: LocalStack, tmp_path: Path
) -> None:
    fn = artifact.functions["AuthorizerFunction"]
    broken = _broken_copy(fn.opt, tmp_path, lambda p: p.name == "__pycache__")
    result = run(
        artifact,
        _with_opt(fn, broken),
        load_event(EVENTS / "authorizer_token.json"),
        stack.function(fn.logical_id).environment,
    )
    assert result.error is None
    compiled = result.compiled_under(broken)
    assert any("aws_lambda_powertools" in p for p in compiled) and any(
        "incident_engine" in p for p in compiled
    )


def test_a_handler_typo_in_the_template_fails_the_function(artifact: Artifact, stack: LocalStack) -> None:
    fn = artifact.functions["ReconcilerFunction"]
    typo = type(fn)(**{**fn.__dict__, "handler": "app.lambda_handlr"})
    result = run(
        artifact, typo, load_event(EVENTS / "reconciler_tick.json"), stack.function(fn.logical_id).environment
    )
    assert result.error is not None and result.error["errorType"] == "Runtime.HandlerNotFound"


def _with_opt(fn: Any, opt: Path) -> Any:
    return type(fn)(**{**fn.__dict__, "opt": opt})


# ----------------------------------------------------------------------------- make invoke / make env-vars


def test_invoke_and_env_vars_use_the_running_local_stack(
    artifact: Artifact, endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from local import env_vars, invoke

    session = boto3.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
    provision(session, stack_name=invoke.STACK_NAME, endpoint_url=endpoint)  # what `make run` creates
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)  # one emulator here answers both

    variables = env_vars.from_local_stack("http://host.docker.internal:5000")
    assert variables is not None
    assert variables["ApiFunction"]["INCIDENTS_TABLE"] == f"{invoke.STACK_NAME}-IncidentsTable"
    assert variables["EscalationWorkerFunction"]["TIMER_QUEUE_URL"].endswith(
        f"/{invoke.STACK_NAME}-TimerQueue"
    )
    assert {v["AWS_ENDPOINT_URL"] for v in variables.values()} == {"http://host.docker.internal:5000"}
    assert {v["AWS_ENDPOINT_URL_DYNAMODB"] for v in variables.values()} == {
        "http://host.docker.internal:5001"
    }
    assert "API_TOKEN_SHA256" not in variables["AuthorizerFunction"]  # --parameter-overrides sets it

    capsys.readouterr()
    assert invoke.main(["ApiFunction", str(EVENTS / "api_acknowledge_incident.json")]) == 0
    out, err = capsys.readouterr()
    assert "using the running local stack" in err and "created INC-" in err
    response = json.loads(out)
    assert response["statusCode"] == 200 and json.loads(response["body"])["status"] == "acknowledged"


def test_env_vars_from_a_deployed_stack_come_from_its_outputs_and_parameters() -> None:
    from local.env_vars import from_outputs

    outputs = {
        "ApiUrl": "https://x1.execute-api.eu-west-1.amazonaws.com/v1",
        "IncidentsTableName": "prod-IncidentsTable-1",
        "ConfigTableName": "prod-ConfigTable-1",
        "TimerQueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/prod-TimerQueue-1",
        "NotificationsTopicArn": "arn:aws:sns:eu-west-1:1:prod-NotificationsTopic-1",
        "WebhookQueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/prod-WebhookQueue-1",
        "AlarmIngestDeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/prod-AlarmIngestDLQ-1",
        "TimerDeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/prod-TimerDLQ-1",
        "WebhookDeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/prod-WebhookDLQ-1",
    }
    parameters = {
        "LogLevel": "DEBUG",
        "StageName": "v1",
        "ApiTokenSha256": "****",
        "LogRetentionDays": "30",
        "TokenRateLimitPerMinute": "600",
    }
    variables, unresolved = from_outputs(outputs, parameters)
    assert variables["ApiFunction"]["INCIDENTS_TABLE"] == "prod-IncidentsTable-1"
    assert variables["ReconcilerFunction"]["TIMER_QUEUE_URL"].endswith("prod-TimerQueue-1")
    assert variables["EscalationWorkerFunction"]["PUBLIC_API_URL"] == outputs["ApiUrl"]
    assert variables["ApiFunction"]["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert variables["ApiFunction"]["TOKEN_RATE_PER_MINUTE"] == "600"
    assert variables["ApiFunction"]["AWS_ENDPOINT_URL"] == ""  # real AWS
    assert variables["ApiFunction"]["AWS_ENDPOINT_URL_DYNAMODB"] == ""
    # NoEcho: the parameter override (the api function checks it for GET /health?deep=1)
    assert unresolved == ["AuthorizerFunction.API_TOKEN_SHA256", "ApiFunction.API_TOKEN_SHA256"]
    assert variables["ApiFunction"]["TIMER_DEAD_LETTER_URL"] == outputs["TimerDeadLetterQueueUrl"]


def test_env_vars_read_a_deployed_stack_through_cloudformation() -> None:
    import boto3
    from moto import mock_aws

    from local.env_vars import from_deployed_stack

    # A stand-in stack with the real one's output and parameter names (moto does not run SAM).
    body = {
        "Parameters": {"LogLevel": {"Type": "String"}, "ApiTokenSha256": {"Type": "String", "NoEcho": True}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "IncidentsTableName": {"Value": "prod-IncidentsTable-1"},
            "TimerQueueUrl": {"Value": "https://sqs.eu-west-1.amazonaws.com/1/prod-TimerQueue-1"},
        },
    }
    with mock_aws():
        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="prod",
            TemplateBody=json.dumps(body),
            Parameters=[
                {"ParameterKey": "LogLevel", "ParameterValue": "WARNING"},
                {"ParameterKey": "ApiTokenSha256", "ParameterValue": "0" * 64},
            ],
        )
        variables, unresolved = from_deployed_stack("prod", "eu-west-1")
    assert variables["ApiFunction"]["INCIDENTS_TABLE"] == "prod-IncidentsTable-1"
    assert variables["EscalationWorkerFunction"]["TIMER_QUEUE_URL"].endswith("prod-TimerQueue-1")
    assert variables["ApiFunction"]["POWERTOOLS_LOG_LEVEL"] == "WARNING"
    assert "ApiFunction.CONFIG_TABLE" in unresolved  # not among this stand-in's outputs
    assert "API_TOKEN_SHA256" not in variables["AuthorizerFunction"]  # NoEcho reads back as ****
