"""The local stack's SNS and EventBridge sources on moto: a message published to the AlarmTopic and
an event put on the default bus reach the alarm ingest function as the template wires them."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import time_machine

from local.async_sources import RETRY_VISIBILITY_SECONDS, AsyncSources
from local.process import wait_for
from local.template import LocalStack
from tests.support import Api, load_event


def incidents(api: Api) -> list[dict[str, Any]]:
    return [api.ok("GET", f"/incidents/{i['id']}") for i in api.ok("GET", "/incidents")["items"]]


def test_topic_and_bus_deliver_alarms_to_the_function(aws: LocalStack, api: Api) -> None:
    # Given the sources wired from the template
    sources = AsyncSources(boto3.Session(), aws)
    sns = boto3.client("sns", region_name=aws.region)
    events = boto3.client("events", region_name=aws.region)
    # When an alarm notification is published to the topic
    message = load_event("cloudwatch_sns_alarm.json")["Records"][0]["Sns"]["Message"]
    sns.publish(TopicArn=aws.outputs["AlarmTopicArn"], Message=message, Subject="ALARM")
    assert sources.poll()
    # Then one incident opens
    [incident] = incidents(api)
    assert incident["status"] != "resolved" and incident["dedup_key"].endswith(":alarm:checkout-api-5xx")
    # When the OK state change is put on the default bus
    ok = load_event("cloudwatch_eventbridge_ok.json")
    entry = {
        "Source": ok["source"],
        "DetailType": ok["detail-type"],
        "Detail": json.dumps(ok["detail"]),
        "Resources": ok["resources"],
    }
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    assert sources.poll()
    # Then it resolves; and an event of another kind matches no rule
    [incident] = incidents(api)
    assert incident["status"] == "resolved"
    events.put_events(Entries=[{**entry, "DetailType": "EC2 Instance State-change Notification"}])
    assert not sources.poll()


def test_a_failing_invocation_is_retried_then_sent_to_the_on_failure_queue(
    aws: LocalStack, monkeypatch: Any, clock: time_machine.Traveller
) -> None:
    # Given a function that keeps failing (the store is down)
    sources = AsyncSources(boto3.Session(), aws)
    calls: list[Any] = []

    def broken(spec: Any, event: Any) -> Any:
        calls.append(event)
        raise RuntimeError("store unavailable")

    monkeypatch.setattr("local.async_sources.invoke", broken)
    sns = boto3.client("sns", region_name=aws.region)
    sns.publish(TopicArn=aws.outputs["AlarmTopicArn"], Message="{}")
    # When the feed is polled, each retry once its pause has passed (a hang guard bounds it)
    for _ in range(10):
        if not sources.poll():
            break
        clock.shift(RETRY_VISIBILITY_SECONDS + 1)
    # Then it was tried 1 + MaximumRetryAttempts times, then parked with the reason
    assert len(calls) == aws.function("AlarmIngestFunction").max_retry_attempts + 1
    sqs = boto3.client("sqs", region_name=aws.region)
    got = sqs.receive_message(QueueUrl=aws.physical["AlarmIngestDeadLetterQueue"])["Messages"]
    record = json.loads(got[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorMessage"] == "store unavailable"


def test_with_an_invoker_and_concurrency_a_burst_is_delivered_side_by_side(aws: LocalStack) -> None:
    # Given a feed delivering three at a time, through an invoker that only returns once all three
    # deliveries are in flight together (a barrier; its timeout only guards against a hang)
    together = threading.Barrier(3, timeout=60)
    delivered: list[str] = []

    def invoker(spec: Any, event: Any) -> Any:
        together.wait()
        delivered.append(event["Records"][0]["Sns"]["Message"])
        return {"outcomes": [], "rejected": 0}

    sources = AsyncSources(boto3.Session(), aws, invoker=invoker, concurrency=3)
    sns = boto3.client("sns", region_name=aws.region)
    # When three alarm messages arrive at once
    for n in range(3):
        sns.publish(TopicArn=aws.outputs["AlarmTopicArn"], Message=f"alarm {n}")
    assert sources.poll()  # one receive takes all three (up to 10)
    # Then all three were in flight at the same time, and each was delivered once
    assert not together.broken
    assert sorted(delivered) == ["alarm 0", "alarm 1", "alarm 2"]


def test_serve_hands_each_alarm_to_a_free_container_without_waiting_for_its_batch(aws: LocalStack) -> None:
    # Given the sources served continuously with two containers, and a first delivery that holds its
    # container until a later alarm has been delivered (the events' timeouts only guard against a hang)
    later_delivered = threading.Event()
    delivered: list[str] = []

    def invoker(spec: Any, event: Any) -> Any:
        message = event["Records"][0]["Sns"]["Message"] if "Records" in event else event["detail-type"]
        if message == "first":
            assert later_delivered.wait(timeout=60), "the later alarm waited for the first one's batch"
        delivered.append(message)
        if message == "later":
            later_delivered.set()
        return {"outcomes": [], "rejected": 0}

    sources = AsyncSources(boto3.Session(), aws, invoker=invoker, concurrency=2)
    stop = threading.Event()
    threads = sources.serve(stop, wait_seconds=0)  # short polls: the test's clock stands still
    try:
        sns = boto3.client("sns", region_name=aws.region)
        # When one alarm arrives, and another while the first is still being delivered
        sns.publish(TopicArn=aws.outputs["AlarmTopicArn"], Message="first")
        wait_for(lambda: sources.in_flight == 1, 60, "the first alarm to be in flight")
        sns.publish(TopicArn=aws.outputs["AlarmTopicArn"], Message="later")
        # Then the later one is delivered first, by the free container, and then the first completes
        wait_for(lambda: len(delivered) == 2, 60, "both alarms to be delivered")
        assert delivered == ["later", "first"]
        wait_for(lambda: sources.in_flight == 0, 60, "both deliveries to finish")
        sqs = boto3.client("sqs", region_name=aws.region)
        feed = next(f for f in sources.feeds if f.kind == "sns")
        assert "Messages" not in sqs.receive_message(QueueUrl=feed.queue_url)  # each deleted once done
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
