"""Alerts into `make run`'s stack over real HTTP and real queues: a burst of one dedup key, and
malformed payloads of every kind on every way in.

What these add to the in-process tests: the local gateway, the token authorizer, concurrent API
containers (the races DynamoDB's conditional writes must settle) and the alarm topic and bus
feeding alarm_ingest exactly as the template wires them.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from local.process import LocalStackProcess, wait_for
from tests.support import load_event

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-alerts-over-http.log"
HANG = 180  # seconds: a guard against a hang, never a bound on how fast anything must be
BURST = 100
PD_LIMIT = 512 * 1024
AM_LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    with LocalStackProcess("e2e-token", LOG) as running:
        yield running


@pytest.fixture(scope="module")
def service(stack: LocalStackProcess) -> dict[str, Any]:
    status, body = stack.call("POST", "/services", {"name": "checkout"})
    assert status == 201, body
    return body  # type: ignore[no-any-return]


def post(
    stack: LocalStackProcess, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Bytes as given (no client re-encodes them); the answer's status and JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=HANG)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, raw.decode("utf-8", "replace")


def incidents_of(stack: LocalStackProcess, service_id: str) -> list[dict[str, Any]]:
    status, page = stack.call("GET", "/incidents", None)
    assert status == 200, page
    return [i for i in page["items"] if i["service_id"] == service_id]


# --- 100 concurrent triggers with one dedup key --------------------------------------------------


def test_100_concurrent_triggers_with_one_key_make_one_incident_counting_100(
    stack: LocalStackProcess,
) -> None:
    # Given a service of its own, and PagerDuty's trigger sample with its integration key
    status, service = stack.call("POST", "/services", {"name": "burst"})
    assert status == 201, service
    trigger = load_event("pagerduty_enqueue_trigger.json") | {"routing_key": service["integration_key"]}
    body = json.dumps(trigger).encode()
    start = threading.Barrier(BURST)

    def send(_: int) -> list[int]:
        """One trigger, retried as PagerDuty's clients retry a 429 (throttled: nothing was stored)."""
        start.wait()
        answers = []
        while True:
            status, answer = post(stack, "/v2/enqueue", body)
            answers.append(status)
            if status != 429:
                assert status == 202 and answer["dedup_key"] == trigger["dedup_key"], (status, answer)
                return answers

    # When 100 copies are sent at once, over HTTP, by 100 clients
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(send, range(BURST)))
    # Then every one was accepted, and exactly one incident holds all 100
    throttled = sum(len(a) - 1 for a in answers)
    [listed] = incidents_of(stack, service["id"])
    status, incident = stack.call("GET", f"/incidents/{listed['id']}")
    assert status == 200 and incident["alert_count"] == BURST, incident
    assert incident["dedup_key"] == trigger["dedup_key"] and incident["status"] in ("open", "escalating")
    # And the timeline has the opening and the repeats (today one alert_received event per repeat)
    status, timeline = stack.call("GET", f"/incidents/{listed['id']}/timeline", None)
    types = Counter(e["type"] for e in timeline["items"])
    assert types["created"] == 1, types
    print(f"\n{throttled} of {BURST} triggers were answered 429 once and retried; timeline {dict(types)}")


# --- malformed payloads: a 4xx, never a 5xx, and nothing stored -----------------------------------


def deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


def pd_body(key: str, **changes: Any) -> bytes:
    return json.dumps(load_event("pagerduty_enqueue_trigger.json") | {"routing_key": key} | changes).encode()


def pd_payload(key: str, **changes: Any) -> bytes:
    event = load_event("pagerduty_enqueue_trigger.json")
    return pd_body(key, payload=event["payload"] | changes)


def pd_cases(key: str) -> dict[str, bytes]:
    sample = load_event("pagerduty_enqueue_trigger.json") | {"routing_key": key}
    padding = PD_LIMIT - len(pd_body(key, payload=sample["payload"] | {"custom_details": {"x": ""}})) + 1
    oversize = pd_payload(key, custom_details={"x": "y" * padding})
    assert len(oversize) == PD_LIMIT + 1
    missing = {name: json.dumps({k: v for k, v in sample.items() if k != name}).encode() for name in sample}
    no_summary = {k: v for k, v in sample["payload"].items() if k != "summary"}
    return {
        "empty": b"",
        "not json": b"trigger please",
        "truncated json": pd_body(key)[:-5],
        "an array": json.dumps([sample]).encode(),
        "a string": b'"trigger"',
        "null": b"null",
        "NaN": pd_body(key).replace(b'"error rate": 0.23', b'"error rate": NaN'),
        "deep nesting": deep(10_000),
        "deep custom_details": pd_body(key)[:-1] + b', "x": ' + deep(200) + b"}",
        "oversize (512 KB + 1)": oversize,
        "not UTF-8": pd_body(key).replace(b"prod-checkout-01.example.com", b"prod-\xff\xfe-01"),
        "routing_key a number": pd_body(key, routing_key=12345678901234567890123456789012),
        "routing_key unknown": pd_body("0" * 32),
        "event_action an array": pd_body(key, event_action=["trigger"]),
        "event_action unknown": pd_body(key, event_action="explode"),
        "dedup_key an object": pd_body(key, dedup_key={"k": 1}),
        "payload a string": pd_body(key, payload="5xx"),
        "severity a number": pd_payload(key, severity=1),
        "severity unknown": pd_payload(key, severity="apocalyptic"),
        "summary blank": pd_payload(key, summary="   "),
        "timestamp not a time": pd_payload(key, timestamp="yesterday"),
        "custom_details an array": pd_payload(key, custom_details=[1, 2]),
        "links not an array": pd_body(key, links="https://example.com"),
        "links[0] no href": pd_body(key, links=[{"text": "x"}]),
        "missing payload.summary": pd_body(key, payload=no_summary),
        **{
            f"missing {name}": body
            for name, body in missing.items()
            if name in ("routing_key", "event_action", "payload")
        },
        "acknowledge without dedup_key": json.dumps(
            {"routing_key": key, "event_action": "acknowledge"}
        ).encode(),
    }


def test_malformed_pagerduty_events_get_a_4xx_in_pagerdutys_shape(
    stack: LocalStackProcess, service: dict[str, Any]
) -> None:
    cases = pd_cases(service["integration_key"])
    # When each malformed event is posted
    answers = {name: post(stack, "/v2/enqueue", body) for name, body in cases.items()}
    # Then each is refused with a 4xx (never a 5xx), in PagerDuty's shape where the handler answered
    for name, (status, body) in answers.items():
        assert 400 <= status < 500, (name, status, body)
        if name != "not UTF-8":  # refused by the gateway before the handler: see below
            assert body["status"] == "invalid event" and body["errors"], (name, body)
    assert answers["not UTF-8"][0] == 400, answers["not UTF-8"]
    # And nothing was stored
    assert incidents_of(stack, service["id"]) == []
    # And a well-formed event still goes through afterwards (nothing was left broken)
    status, body = post(stack, "/v2/enqueue", pd_body(service["integration_key"]))
    assert status == 202, body
    assert len(incidents_of(stack, service["id"])) == 1


def am_body(**changes: Any) -> bytes:
    return json.dumps(load_event("alertmanager_webhook_firing.json") | changes).encode()


def am_alert(**changes: Any) -> bytes:
    batch = load_event("alertmanager_webhook_firing.json")
    return am_body(alerts=[batch["alerts"][0] | changes])


def am_cases() -> dict[str, bytes]:
    batch = load_event("alertmanager_webhook_firing.json")
    first = batch["alerts"][0]
    big = first | {"annotations": {"summary": "x" * 60_000}}
    count = AM_LIMIT // len(json.dumps(big)) + 2
    oversize = am_body(alerts=[big | {"fingerprint": f"{n:016x}"} for n in range(count)])
    assert AM_LIMIT < len(oversize) < 10 * 1024 * 1024  # over ours, under API Gateway's
    missing = {name: json.dumps({k: v for k, v in batch.items() if k != name}).encode() for name in batch}
    return {
        "empty": b"",
        "not json": b"firing",
        "truncated json": am_body()[:-3],
        "an array": json.dumps([batch]).encode(),
        "null": b"null",
        "deep nesting": deep(10_000),
        "deep labels": am_body()[:-1] + b', "x": ' + deep(200) + b"}",
        "oversize (4 MB + a bit)": oversize,
        "not UTF-8": am_body().replace(b"HighErrorRate", b"High\xffRate", 1),
        "version a number": am_body(version=4),
        "version 3": am_body(version="3"),
        "status unknown": am_body(status="smouldering"),
        "alerts an object": am_body(alerts={"0": first}),
        "alerts[0] a number": am_body(alerts=[1]),
        "alerts too many": am_body(alerts=[first] * 1001),
        "alerts[0].status missing": am_body(alerts=[{k: v for k, v in first.items() if k != "status"}]),
        "alerts[0].labels missing": am_body(alerts=[{k: v for k, v in first.items() if k != "labels"}]),
        "alerts[0].labels a value not a string": am_alert(labels={"alertname": "x", "severity": 1}),
        "alerts[0].labels an array": am_alert(labels=["alertname", "x"]),
        "alerts[0].annotations nested": am_alert(annotations={"summary": {"text": "x"}}),
        "alerts[0].startsAt not a time": am_alert(startsAt="when it started"),
        "alerts[0].fingerprint an object": am_alert(fingerprint={"id": 1}),
        "alerts[0].fingerprint with a line break": am_alert(fingerprint="ab\ncd"),
        **{
            f"missing {name}": body
            for name, body in missing.items()
            if name in ("version", "status", "alerts")
        },
    }


def test_malformed_alertmanager_batches_get_a_4xx_and_store_nothing(
    stack: LocalStackProcess, service: dict[str, Any]
) -> None:
    bearer = {"Authorization": f"Bearer {service['integration_key']}"}
    before = len(incidents_of(stack, service["id"]))
    # When each malformed batch is posted with the service's integration key
    answers = {
        name: post(stack, "/integrations/alertmanager", body, bearer) for name, body in am_cases().items()
    }
    # Then each is refused with a 4xx (Alertmanager does not retry a 4xx: no retry storm), naming the field
    for name, (status, body) in answers.items():
        assert 400 <= status < 500, (name, status, body)
        assert isinstance(body, dict) and body.get("message"), (name, body)
        if status == 422:
            field = name.split(" ")[0]
            if field.startswith("alerts["):
                assert body["field"].startswith(field), (name, body)
    # And nothing was stored
    assert len(incidents_of(stack, service["id"])) == before
    # And with no key, or a wrong one, the batch never reaches the handler
    assert post(stack, "/integrations/alertmanager", am_body())[0] == 401
    assert (
        post(stack, "/integrations/alertmanager", am_body(), {"Authorization": "Bearer " + "0" * 32})[0]
        == 401
    )


# --- malformed alarms from the queues: logged, parked on the DLQ once, never retried ---------------


def topic_arn(stack: LocalStackProcess) -> str:
    topics = stack.aws_client("sns").list_topics()["Topics"]
    [arn] = [t["TopicArn"] for t in topics if t["TopicArn"].endswith("-AlarmTopic")]
    return str(arn)


def queue_url(stack: LocalStackProcess, suffix: str) -> str:
    [url] = [u for u in stack.aws_client("sqs").list_queues()["QueueUrls"] if u.endswith(suffix)]
    return str(url)


def waiting(stack: LocalStackProcess, url: str) -> int:
    attributes = stack.aws_client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    names = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )
    return sum(int(attributes[n]) for n in names)


def test_malformed_alarms_from_the_topic_and_the_bus_are_parked_once_never_retried(
    stack: LocalStackProcess,
) -> None:
    sns, events, sqs = stack.aws_client("sns"), stack.aws_client("events"), stack.aws_client("sqs")
    dlq = queue_url(stack, "-AlarmIngestDeadLetterQueue")
    feeds = [u for u in sqs.list_queues()["QueueUrls"] if "AlarmIngestFunction" in u and u.endswith("-feed")]
    assert len(feeds) == 2, feeds  # the topic's subscription and the rule's target
    sample = json.loads(load_event("cloudwatch_sns_alarm.json")["Records"][0]["Sns"]["Message"])
    detail = load_event("cloudwatch_eventbridge_alarm.json")["detail"]
    messages = [
        "this is no alarm",
        "[1, 2, 3]",
        json.dumps(sample | {"AlarmName": 5}),
        json.dumps(sample | {"NewStateValue": "ON_FIRE"}),
        json.dumps({k: v for k, v in sample.items() if k != "AlarmArn"}),
        '{"AlarmName": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}",
    ]
    details = [
        detail | {"alarmName": ["x"]},
        detail | {"state": {"value": 7}},
        {k: v for k, v in detail.items() if k != "state"},
        [],
    ]
    incidents_before = stack.call("GET", "/incidents", None)[1]["items"]
    # When malformed alarm messages are published to the topic and malformed events put on the bus
    for message in messages:
        sns.publish(TopicArn=topic_arn(stack), Message=message)
    entries = [
        {"Source": "aws.cloudwatch", "DetailType": "CloudWatch Alarm State Change", "Detail": json.dumps(d)}
        for d in details
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
    expected = len(messages) + len(details)
    # Then each lands on the dead-letter queue, once, with why (polled: a deadline is a hang guard)
    wait_for(lambda: waiting(stack, dlq) >= expected, HANG, "every malformed alarm on the DLQ")
    # and once the feeds are drained nothing more comes: no retry of a payload that cannot parse
    wait_for(lambda: all(waiting(stack, feed) == 0 for feed in feeds), HANG, "the feeds to drain")
    parked = []
    while got := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
        parked += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(
            QueueUrl=dlq,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)],
        )
    assert len(parked) == expected, parked
    # logged and parked by the function itself (not Lambda's retries-exhausted record)
    assert all(p["reason"] == "rejected" and p["errors"][0]["field"] for p in parked), parked
    assert LOG.read_text().count("rejected an alarm payload") == expected
    # And nothing was opened
    assert stack.call("GET", "/incidents", None)[1]["items"] == incidents_before
