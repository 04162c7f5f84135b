"""local/alarms.py judges the template's alarms as CloudWatch would, on moto, with the clock moved;
local/metrics.py turns the functions' EMF documents and failed invocations into metric data."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import time_machine

from local import metrics, runtime
from local.alarms import LocalAlarms, alarm_specs
from local.template import LocalStack, load_template
from tests.support import load_event

SCALE = 2 / 60  # RECONCILE_SECONDS=2: a template minute is 2 s


@pytest.fixture
def alarms(aws: LocalStack, clock: time_machine.Traveller) -> LocalAlarms:
    lines: list[str] = []
    judged = LocalAlarms(boto3.Session(), aws, None, SCALE, lines.append)
    judged.lines = lines  # type: ignore[attr-defined]
    return judged


@pytest.fixture
def health_tap(aws: LocalStack) -> Any:
    sqs, sns = boto3.client("sqs", region_name=aws.region), boto3.client("sns", region_name=aws.region)
    url = sqs.create_queue(QueueName="health-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=aws.physical["EngineHealthTopic"], Protocol="sqs", Endpoint=arn)

    def notices() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(json.loads(m["Body"])["Message"]) for m in got]

    return notices


@pytest.fixture
def local_metrics(aws: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's metrics reach moto, as in `make run`'s reconciler and worker processes;
    everything install() changes is put back after the test."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

    monkeypatch.setattr(
        AmazonCloudWatchEMFProvider, "flush_metrics", AmazonCloudWatchEMFProvider.flush_metrics
    )
    monkeypatch.setattr(metrics, "_client", None)
    monkeypatch.setattr(runtime, "on_function_error", None)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # install() turns it on
    # The template's namespace and service, as a function's environment gives them before import
    # (the tests import the engine before conftest sets theirs)
    from incident_engine.observability import metrics as engine_metrics

    monkeypatch.setattr(engine_metrics, "namespace", "IncidentEngine")
    monkeypatch.setattr(engine_metrics, "service", "incident-engine")
    metrics.install(aws.region)


def state(name: str) -> str:
    [found] = boto3.client("cloudwatch").describe_alarms(AlarmNames=[f"incident-engine-local-{name}"])[
        "MetricAlarms"
    ]
    return str(found["StateValue"])


def run(alarms: LocalAlarms, clock: time_machine.Traveller, seconds: float, step: float = 1.0) -> None:
    for _ in range(int(seconds / step)):
        clock.shift(step)
        alarms.poll()


def test_every_alarm_of_the_template_is_judged_locally_and_created_on_the_emulator(
    aws: LocalStack, alarms: LocalAlarms
) -> None:
    declared = [k for k, r in load_template()["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert sorted(s.logical_id for s in alarm_specs(aws)) == sorted(declared)
    stored = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in stored) == sorted(f"incident-engine-local-{d}" for d in declared)
    # New alarms have no state yet, as on AWS
    assert {a["StateValue"] for a in stored} == {"INSUFFICIENT_DATA"}


def test_a_message_in_a_dead_letter_queue_raises_the_alarm_and_reading_it_clears_it(
    aws: LocalStack, alarms: LocalAlarms, clock: time_machine.Traveller, health_tap: Any
) -> None:
    # Given empty queues judged for a while
    run(alarms, clock, 6)
    assert state("DeadLetterAlarm") == "OK"
    # When a webhook is given up on (in its dead-letter queue)
    sqs = boto3.client("sqs", region_name=aws.region)
    sqs.send_message(QueueUrl=aws.physical["WebhookDeadLetterQueue"], MessageBody="{}")
    run(alarms, clock, 6)
    # Then the one dead-letter alarm is raised, and EngineHealthTopic says so
    assert state("DeadLetterAlarm") == "ALARM"
    # (no reconciler runs here, so its heartbeat alarm is raised too)
    raised = [n for n in health_tap() if n["NewStateValue"] == "ALARM" and "DeadLetter" in n["AlarmName"]]
    assert [n["AlarmName"] for n in raised] == ["incident-engine-local-DeadLetterAlarm"]
    assert raised[0]["OldStateValue"] == "OK" and "dead-letter queue" in raised[0]["AlarmDescription"]
    assert any("DeadLetterAlarm: OK -> ALARM" in line for line in alarms.lines)  # type: ignore[attr-defined]
    # When someone reads it off the queue
    [message] = sqs.receive_message(QueueUrl=aws.physical["WebhookDeadLetterQueue"])["Messages"]
    sqs.delete_message(
        QueueUrl=aws.physical["WebhookDeadLetterQueue"], ReceiptHandle=message["ReceiptHandle"]
    )
    run(alarms, clock, 6)
    assert state("DeadLetterAlarm") == "OK"


def test_a_failed_worker_invocation_counts_as_an_error_and_raises_its_alarm(
    aws: LocalStack, alarms: LocalAlarms, clock: time_machine.Traveller, local_metrics: None
) -> None:
    # Given the worker's metrics reach the emulator, as in `make run`'s worker processes
    run(alarms, clock, 4)
    assert state("EscalationWorkerErrorsAlarm") == "OK"
    # When an invocation fails as a whole (a batch the handler cannot even read)
    worker = aws.function("EscalationWorkerFunction")
    with pytest.raises(Exception):  # noqa: B017 - whatever the handler raises
        runtime.invoke(worker, {"Records": "not a list"})
    run(alarms, clock, 2)
    # Then Lambda's Errors metric has it and the worker's alarm is raised; the sender's is not
    assert state("EscalationWorkerErrorsAlarm") == "ALARM"
    assert state("WebhookSenderErrorsAlarm") == "OK"
    # And a period without errors clears it
    run(alarms, clock, 4)
    assert state("EscalationWorkerErrorsAlarm") == "OK"


def test_the_heartbeat_alarm_needs_five_silent_periods_and_a_run_clears_it(
    aws: LocalStack, alarms: LocalAlarms, clock: time_machine.Traveller, local_metrics: None
) -> None:
    reconciler = aws.function("ReconcilerFunction")
    tick = load_event("reconciler_tick.json")
    # Given a reconciler running every 2 s
    for _ in range(8):
        runtime.invoke(reconciler, tick)
        run(alarms, clock, 2)
    assert state("ReconcilerHeartbeatAlarm") == "OK"
    # When it stops for four periods: not yet
    run(alarms, clock, 8)
    assert state("ReconcilerHeartbeatAlarm") == "OK"
    # Then at the fifth silent period it is raised
    run(alarms, clock, 4)
    assert state("ReconcilerHeartbeatAlarm") == "ALARM"
    # And one run clears it
    runtime.invoke(reconciler, tick)
    run(alarms, clock, 2)
    assert state("ReconcilerHeartbeatAlarm") == "OK"


def test_an_emf_document_becomes_the_metric_data_cloudwatch_would_extract() -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    recorder = Metrics(namespace="IncidentEngine", service="incident-engine")
    recorder.add_metric(name="TimersRearmed", unit=MetricUnit.Count, value=2)
    recorder.add_metric(name="TimersRearmed", unit=MetricUnit.Count, value=1)
    document = recorder.serialize_metric_set()
    recorder.clear_metrics()
    [(namespace, data)] = metrics.emf_to_metric_data(document)
    assert namespace == "IncidentEngine"
    assert [(d["MetricName"], d["Value"], d["Dimensions"]) for d in data] == [
        ("TimersRearmed", 2.0, [{"Name": "service", "Value": "incident-engine"}]),
        ("TimersRearmed", 1.0, [{"Name": "service", "Value": "incident-engine"}]),
    ]
