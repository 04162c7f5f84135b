"""CloudWatch alarms into `make run`'s stack both ways AWS delivers them: a message published to the
AlarmTopic, and a state-change event put on the default bus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.process import LocalStackProcess, wait_for
from tests.support import load_event

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-alarms.log"
ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    with LocalStackProcess("e2e-token", LOG) as running:
        yield running


def incident_for(stack: LocalStackProcess, alarm: str) -> dict[str, Any] | None:
    """The one incident the alarm's ARN keys, or None; more than one would be a duplicate."""
    status, page = stack.call("GET", "/incidents")
    assert status == 200, page
    mine = []
    for item in page["items"]:
        _, incident = stack.call("GET", f"/incidents/{item['id']}")
        if incident["dedup_key"] == ARN + alarm:
            mine.append(incident)
    assert len(mine) <= 1, mine
    return mine[0] if mine else None


def topic_arn(stack: LocalStackProcess) -> str:
    arns = stack.aws_client("sns").list_topics()["Topics"]
    [arn] = [t["TopicArn"] for t in arns if t["TopicArn"].endswith("-AlarmTopic")]
    return str(arn)


def bus_entry(sample: str) -> dict[str, Any]:
    event = load_event(sample)
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": event["resources"],
    }


def test_an_alarm_through_the_topic_opens_and_its_ok_resolves(stack: LocalStackProcess) -> None:
    sns = stack.aws_client("sns")
    # When the alarm notification is published to the AlarmTopic
    message = load_event("cloudwatch_sns_metric_math.json")["Records"][0]["Sns"]["Message"]
    sns.publish(TopicArn=topic_arn(stack), Message=message)
    # Then one incident opens (polled, with a deadline as a hang guard)
    wait_for(lambda: incident_for(stack, "orders-worker-error-rate") is not None, 30, "the topic's incident")
    # When the same alarm's OK is published
    ok = json.loads(message) | {"NewStateValue": "OK", "OldStateValue": "ALARM"}
    sns.publish(TopicArn=topic_arn(stack), Message=json.dumps(ok))
    # Then it resolves
    wait_for(
        lambda: (incident_for(stack, "orders-worker-error-rate") or {}).get("status") == "resolved",
        30,
        "the OK to resolve it",
    )


def test_a_state_change_on_the_bus_opens_and_its_ok_resolves(stack: LocalStackProcess) -> None:
    events = stack.aws_client("events")
    # When the ALARM state change is put on the default bus
    assert (
        events.put_events(Entries=[bus_entry("cloudwatch_eventbridge_alarm.json")])["FailedEntryCount"] == 0
    )
    wait_for(lambda: incident_for(stack, "checkout-api-5xx") is not None, 30, "the bus's incident")
    # When its OK follows, then it resolves
    assert events.put_events(Entries=[bus_entry("cloudwatch_eventbridge_ok.json")])["FailedEntryCount"] == 0
    wait_for(
        lambda: (incident_for(stack, "checkout-api-5xx") or {}).get("status") == "resolved",
        30,
        "the OK to resolve it",
    )
    resolved = incident_for(stack, "checkout-api-5xx")
    assert resolved is not None and resolved["alert_count"] == 1
