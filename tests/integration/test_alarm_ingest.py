"""The alarm ingest function, invoked with each sample event from events/, on moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local.runtime import invoke
from local.template import LocalStack
from tests.support import Api, load_event


def ingest(aws: LocalStack, event: dict[str, Any]) -> dict[str, Any]:
    return invoke(aws.function("AlarmIngestFunction"), event)  # type: ignore[no-any-return]


def incidents(api: Api) -> list[dict[str, Any]]:
    return [api.ok("GET", f"/incidents/{i['id']}") for i in api.ok("GET", "/incidents")["items"]]


def parked(aws: LocalStack) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=aws.region)
    got = sqs.receive_message(QueueUrl=aws.physical["AlarmIngestDeadLetterQueue"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


@pytest.fixture
def checkout(api: Api) -> dict[str, Any]:
    body = {"name": "checkout", "alarm_name_prefixes": ["checkout-"], "default_severity": "P1"}
    return api.ok("POST", "/services", body, expect=201)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("alarm", "ok"),
    [
        ("cloudwatch_sns_alarm.json", "cloudwatch_sns_ok.json"),
        ("cloudwatch_eventbridge_alarm.json", "cloudwatch_eventbridge_ok.json"),
        ("cloudwatch_eventbridge_alarm.json", "cloudwatch_sns_ok.json"),  # one alarm, both deliveries
    ],
)
def test_alarm_opens_on_the_prefixed_service_and_ok_resolves(
    aws: LocalStack, api: Api, checkout: dict[str, Any], alarm: str, ok: str
) -> None:
    # When the alarm's ALARM state change arrives
    report = ingest(aws, load_event(alarm))
    # Then one incident opens on the service its name prefix names, keyed by the alarm ARN
    assert [o["outcome"] for o in report["outcomes"]] == ["opened"] and report["rejected"] == 0
    [incident] = incidents(api)
    assert incident["service_id"] == checkout["id"] and incident["severity"] == "P1"
    assert incident["dedup_key"] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-api-5xx"
    # When the same alarm fires again, it is counted; when it goes OK, the incident resolves
    assert ingest(aws, load_event(alarm))["outcomes"][0]["outcome"] == "appended"
    assert ingest(aws, load_event(ok))["outcomes"][0]["outcome"] == "resolved"
    [incident] = incidents(api)
    assert incident["status"] == "resolved" and incident["alert_count"] == 2
    assert parked(aws) == []


@pytest.mark.parametrize(
    "sample",
    [
        "cloudwatch_sns_composite.json",
        "cloudwatch_sns_metric_math.json",
        "cloudwatch_eventbridge_composite.json",
    ],
)
def test_an_alarm_no_service_claims_opens_on_the_catch_all(aws: LocalStack, api: Api, sample: str) -> None:
    # Given no service at all; when a composite or metric-math alarm fires
    report = ingest(aws, load_event(sample))
    # Then it is not lost: it opens on the catch-all service
    assert report["outcomes"][0]["outcome"] == "opened"
    [incident] = incidents(api)
    assert incident["service_id"] == "svc_unrouted" and incident["dedup_key"].startswith(
        "arn:aws:cloudwatch:"
    )


def test_the_alarm_tags_name_the_service_and_severity(
    aws: LocalStack, api: Api, checkout: dict[str, Any]
) -> None:
    # Given another service, and the alarm tagged for it in CloudWatch
    payments = api.ok("POST", "/services", {"name": "payments"}, expect=201)
    cloudwatch = boto3.client("cloudwatch", region_name=aws.region)
    cloudwatch.put_metric_alarm(
        AlarmName="checkout-api-5xx",
        MetricName="5XXError",
        Namespace="AWS/ApiGateway",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[
            {"Key": "incident-service", "Value": "payments"},
            {"Key": "incident-severity", "Value": "critical"},
        ],
    )
    # When it fires (through SNS, which carries no tags)
    ingest(aws, load_event("cloudwatch_sns_alarm.json"))
    # Then the tag wins over the name prefix
    [incident] = incidents(api)
    assert incident["service_id"] == payments["id"] and incident["severity"] == "P0"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": "x"},
        {"Records": [{"Sns": {"Message": "not json"}}]},
        {"Records": [{"Sns": {"Message": json.dumps({"AlarmName": "x"})}}]},
        {"detail-type": "CloudWatch Alarm State Change", "detail": []},
    ],
)
def test_a_malformed_payload_is_logged_and_parked_never_raised(
    aws: LocalStack, api: Api, event: dict[str, Any]
) -> None:
    # When the function gets a payload that can never parse
    report = ingest(aws, event)
    # Then it returns (no async retry), opens nothing, and the payload waits on the DLQ with why
    assert report == {"outcomes": [], "rejected": 1}
    assert api.ok("GET", "/incidents")["items"] == []
    [message] = parked(aws)
    assert message["reason"] == "rejected" and message["errors"][0]["field"]
    assert json.loads(message["payload"]) == event


def test_the_template_wires_both_sources_retries_and_the_dlq(aws: LocalStack) -> None:
    from local.template import load_template

    fn = load_template()["Resources"]["AlarmIngestFunction"]["Properties"]
    events = {e["Type"]: e["Properties"] for e in fn["Events"].values()}
    assert events["SNS"]["Topic"] == {"Ref": "AlarmTopic"}
    assert events["EventBridgeRule"]["Pattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
    }
    config = fn["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] <= 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["AlarmIngestDeadLetterQueue", "Arn"]
    }
    assert "AlarmTopicArn" in aws.outputs
