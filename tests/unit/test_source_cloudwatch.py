"""CloudWatch alarms through SNS and through EventBridge, from the sample events in events/."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_engine.adapters.sources import cloudwatch as cw
from incident_engine.domain.alerts import LABEL_SEVERITIES, Alert, AlertAction, Integration, Rejected
from incident_engine.domain.timefmt import parse_iso
from tests.support import load_event
from tests.unit.hostile import assert_outcome, json_values, mutated, replaced

SNS_SAMPLES = {
    "cloudwatch_sns_alarm.json": ("single_metric", AlertAction.TRIGGER),
    "cloudwatch_sns_ok.json": ("single_metric", AlertAction.RESOLVE),
    "cloudwatch_sns_metric_math.json": ("metric_math", AlertAction.TRIGGER),
    "cloudwatch_sns_composite.json": ("composite", AlertAction.TRIGGER),
}
EVENTBRIDGE_SAMPLES = {
    "cloudwatch_eventbridge_alarm.json": ("single_metric", AlertAction.TRIGGER),
    "cloudwatch_eventbridge_ok.json": ("single_metric", AlertAction.RESOLVE),
    "cloudwatch_eventbridge_composite.json": ("composite", AlertAction.TRIGGER),
}


def message_of(event: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(event["Records"][0]["Sns"]["Message"])
    return message


def with_message(event: dict[str, Any], message: Any) -> dict[str, Any]:
    event["Records"][0]["Sns"]["Message"] = message if isinstance(message, str) else json.dumps(message)
    return event


def one(results: list[Alert | Rejected]) -> Alert:
    assert len(results) == 1 and isinstance(results[0], Alert), results
    return results[0]


def refused(results: list[Alert | Rejected]) -> Rejected:
    assert len(results) == 1 and isinstance(results[0], Rejected), results
    return results[0]


@pytest.mark.parametrize(("name", "expected"), SNS_SAMPLES.items())
def test_sns_notifications_parse(name: str, expected: tuple[str, AlertAction]) -> None:
    event = load_event(name)
    message = message_of(event)
    alert = one(cw.parse_event(event))
    kind, action = expected
    assert alert.integration is Integration.CLOUDWATCH and alert.action is action
    assert alert.dedup_key == message["AlarmArn"] == alert.alarm.arn  # type: ignore[union-attr]
    assert alert.alarm is not None and alert.alarm.kind == kind
    assert alert.alarm.name == message["AlarmName"] == alert.summary
    assert (alert.alarm.region, alert.alarm.account) == ("us-east-1", message["AWSAccountId"])
    assert alert.timestamp == parse_iso(message["StateChangeTime"])
    assert message["AlarmDescription"] in (alert.description or "")
    assert message["NewStateReason"] in (alert.description or "")
    # No tags in the payload: the use case must look them up, and nothing invents a severity.
    assert alert.alarm.tags is None and alert.severity is None and alert.service is None


@pytest.mark.parametrize(("name", "expected"), EVENTBRIDGE_SAMPLES.items())
def test_eventbridge_events_parse(name: str, expected: tuple[str, AlertAction]) -> None:
    event = load_event(name)
    alert = one(cw.parse_event(event))
    kind, action = expected
    assert alert.action is action and alert.dedup_key == event["resources"][0]
    assert alert.alarm is not None and alert.alarm.kind == kind
    assert alert.alarm.name == event["detail"]["alarmName"]
    assert alert.timestamp == parse_iso(event["detail"]["state"]["timestamp"])
    assert event["detail"]["state"]["reason"] in (alert.description or "")


def test_both_deliveries_of_one_alarm_share_the_dedup_key() -> None:
    via_sns = one(cw.parse_event(load_event("cloudwatch_sns_alarm.json")))
    via_bus = one(cw.parse_event(load_event("cloudwatch_eventbridge_alarm.json")))
    assert via_sns.dedup_key == via_bus.dedup_key
    assert via_sns.source == via_bus.source  # the same metric and dimensions, however written


def test_a_single_metric_alarm_names_its_metric_as_the_source() -> None:
    message = message_of(load_event("cloudwatch_sns_alarm.json"))
    alert = one(cw.parse_event(load_event("cloudwatch_sns_alarm.json")))
    trigger = message["Trigger"]
    assert alert.source.startswith(trigger["Namespace"])
    assert all(f"{d['name']}={d['value']}" in alert.source for d in trigger["Dimensions"])
    assert alert.custom_details["metric_name"] == trigger["MetricName"]
    assert alert.custom_details["threshold"] == trigger["Threshold"]


def test_a_metric_math_alarm_keeps_its_expression_and_metrics() -> None:
    message = message_of(load_event("cloudwatch_sns_metric_math.json"))
    alert = one(cw.parse_event(load_event("cloudwatch_sns_metric_math.json")))
    metrics = alert.custom_details["metrics"]
    assert [m["id"] for m in metrics] == [m["Id"] for m in message["Trigger"]["Metrics"]]
    assert any(m.get("expression") for m in metrics)


def test_a_composite_alarm_keeps_its_rule_and_children() -> None:
    message = message_of(load_event("cloudwatch_sns_composite.json"))
    alert = one(cw.parse_event(load_event("cloudwatch_sns_composite.json")))
    assert alert.custom_details["alarm_rule"] == message["AlarmRule"]
    children = [c["arn"] for c in alert.custom_details["triggering_children"]]
    assert children == [c["Arn"] for c in message["TriggeringChildren"]]
    assert alert.source == message["AlarmArn"]


def test_insufficient_data_is_its_own_action() -> None:
    event = load_event("cloudwatch_sns_alarm.json")
    with_message(event, message_of(event) | {"NewStateValue": "INSUFFICIENT_DATA"})
    assert one(cw.parse_event(event)).action is AlertAction.INSUFFICIENT_DATA


def test_propagated_tags_name_the_service_and_severity() -> None:
    event = load_event("cloudwatch_eventbridge_alarm.json")
    tags = event["detail"]["alarmTags"]
    alert = one(cw.parse_event(event))
    assert alert.service == tags[cw.SERVICE_TAG]
    assert alert.severity is LABEL_SEVERITIES[tags[cw.SEVERITY_TAG].lower()]
    assert alert.alarm is not None and alert.alarm.tags == tags
    # Other tags become labels; the two that steer the incident do not.
    assert alert.labels["team"] == tags["team"]
    assert cw.SERVICE_TAG not in alert.labels and cw.SEVERITY_TAG not in alert.labels


def test_tags_reserved_by_aws_are_dropped_and_malformed_tags_ignored() -> None:
    event = load_event("cloudwatch_eventbridge_alarm.json")
    event["detail"]["alarmTags"] |= {"aws:cloudformation:stack-name": "prod"}
    assert "aws:cloudformation:stack-name" not in one(cw.parse_event(event)).alarm.tags  # type: ignore[union-attr, operator]
    event["detail"]["alarmTags"] = [{"Key": "team", "Value": "payments"}]
    alert = one(cw.parse_event(event))
    assert alert.alarm is not None and alert.alarm.tags is None  # the alarm survives its tags


def test_sns_tags_are_read_the_same_way() -> None:
    event = load_event("cloudwatch_sns_alarm.json")
    with_message(event, message_of(event) | {"AlarmTags": {"incident-service": "checkout"}})
    assert one(cw.parse_event(event)).service == "checkout"


def test_one_bad_record_does_not_hide_a_good_one() -> None:
    event = load_event("cloudwatch_sns_alarm.json")
    event["Records"].append({"EventSource": "aws:sns", "Sns": {"Message": "not json"}})
    results = cw.parse_event(event)
    assert isinstance(results[0], Alert)
    assert isinstance(results[1], Rejected) and results[1].field == "Records[1].Sns.Message"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"NewStateValue": "BROKEN"}, "Records[0].Sns.Message.NewStateValue"),
        ({"NewStateValue": None}, "Records[0].Sns.Message.NewStateValue"),
        ({"AlarmArn": "arn:aws:sns:us-east-1:123456789012:topic"}, "Records[0].Sns.Message.AlarmArn"),
        ({"AlarmArn": 5}, "Records[0].Sns.Message.AlarmArn"),
        ({"AlarmName": "two\nlines"}, "Records[0].Sns.Message.AlarmName"),
        ({"AlarmName": ""}, "Records[0].Sns.Message.AlarmName"),
        ({"StateChangeTime": "not a time"}, "Records[0].Sns.Message.StateChangeTime"),
        ({"Trigger": []}, "Records[0].Sns.Message.Trigger"),
    ],
)
def test_malformed_alarm_messages_name_the_field(change: dict[str, Any], field: str) -> None:
    event = load_event("cloudwatch_sns_alarm.json")
    with_message(event, message_of(event) | change)
    assert refused(cw.parse_event(event)).field == field


def test_a_threshold_past_any_float_is_refused_not_raised() -> None:
    event = load_event("cloudwatch_sns_alarm.json")
    message = message_of(event)
    with_message(event, message | {"Trigger": message["Trigger"] | {"Threshold": 10**400}})
    assert refused(cw.parse_event(event)).field == "Records[0].Sns.Message.Trigger.Threshold"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("detail-type",), "EC2 Instance State-change Notification", "detail-type"),
        (("source",), "aws.ec2", "source"),
        (("resources",), [], "resources[0]"),
        (("resources", 0), "i-123", "resources[0]"),
        (("detail", "state", "value"), "alarm", "detail.state.value"),
        (("detail", "configuration", "metrics"), "cpu", "detail.configuration.metrics"),
        (("detail",), None, "detail"),
    ],
)
def test_malformed_eventbridge_events_name_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    event = replaced(load_event("cloudwatch_eventbridge_alarm.json"), path, value)
    assert refused(cw.parse_event(event)).field == field


@pytest.mark.parametrize("event", [None, [], "ALARM", {"Records": "x"}, {"Records": [1]}, {}])
def test_events_of_no_known_shape_are_rejected(event: Any) -> None:
    assert all(isinstance(r, Rejected) for r in cw.parse_event(event))


def test_a_message_nested_too_deeply_is_rejected() -> None:
    event = with_message(load_event("cloudwatch_sns_alarm.json"), "[" * 3000 + "]" * 3000)
    assert refused(cw.parse_event(event)).field == "Records[0].Sns.Message"


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_event_parses_or_is_rejected(event: Any) -> None:
    for result in cw.parse_event(event):
        assert_outcome(result)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_change_to_a_real_alarm_message_parses_or_is_rejected(data: st.DataObject) -> None:
    event = load_event(data.draw(st.sampled_from(sorted(SNS_SAMPLES))))
    with_message(event, data.draw(mutated(message_of(event))))
    for result in cw.parse_event(event):
        assert_outcome(result)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_change_to_a_real_eventbridge_event_parses_or_is_rejected(data: st.DataObject) -> None:
    event = data.draw(mutated(load_event(data.draw(st.sampled_from(sorted(EVENTBRIDGE_SAMPLES))))))
    for result in cw.parse_event(event):
        assert_outcome(result)
