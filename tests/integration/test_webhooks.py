"""Webhooks: registered, targeted by id, delivered as signed POSTs by the sender, retried, given up."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from incident_engine.domain.webhooks import SIGNATURE_HEADER, verify
from incident_engine.settings import reset_settings
from local.runtime import deliver_sqs_batch, invoke
from local.template import LocalStack
from tests.support import Api, load_event


class Receiver:
    """A webhook receiver on 127.0.0.1 that records each request and answers what it is told."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.requests.append({"headers": dict(self.headers), "body": self.rfile.read(length)})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/incident"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "true")  # as make run allows, for a receiver on this machine
    reset_settings()
    r = Receiver()
    yield r
    r.close()
    reset_settings()


class Sender:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.spec = stack.function("WebhookSenderFunction")
        assert self.spec.sqs_queue is not None
        self.url = stack.physical[self.spec.sqs_queue]
        self.arn = stack.arns[self.spec.sqs_queue]
        self.sqs = boto3.client("sqs", region_name=stack.region)

    def deliver(self) -> int:
        total = 0
        while n := deliver_sqs_batch(self.sqs, self.url, self.arn, self.stack.region, self.spec):
            total += n
        return total

    def dead_letters(self) -> int:
        dlq = self.stack.physical["WebhookDeadLetterQueue"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def webhook_policy(api: Api, url: str, kind: str = "generic") -> tuple[dict[str, Any], str]:
    hook = api.ok("POST", "/webhooks", {"name": "ops receiver", "url": url, "kind": kind}, expect=201)
    levels = [
        {"delay_minutes": 0, "targets": [{"type": "webhook", "webhook_id": hook["id"]}]},
        {"delay_minutes": 5, "targets": [{"type": "user", "email": "lead@example.com"}]},
    ]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    return hook, hook["secret"]


def webhook_row(api: Api, incident_id: str) -> dict[str, Any]:
    [row] = [
        r
        for r in api.ok("GET", f"/incidents/{incident_id}/notifications")["items"]
        if r["channel"] == "webhook"
    ]
    return row


def test_a_page_reaches_a_registered_webhook_signed_with_its_secret(
    api: Api, aws: LocalStack, receiver: Receiver, clock
) -> None:
    # Given a webhook registered on 127.0.0.1 and a policy whose level 0 targets it
    hook, secret = webhook_policy(api, receiver.url)
    assert secret.startswith("whsec_") and "secret" not in api.ok("GET", f"/webhooks/{hook['id']}")
    # When an incident opens and the sender drains its queue
    inc = api.ok("POST", "/incidents", {"title": "Checkout down", "severity": "P1"}, expect=201)["id"]
    assert Sender(aws).deliver() == 1
    # Then the receiver got one POST whose signature verifies with the secret it was given
    [request] = receiver.requests
    body = request["body"]
    assert verify(secret, request["headers"][SIGNATURE_HEADER], body, now=int(time.time()))
    assert not verify("whsec_wrong", request["headers"][SIGNATURE_HEADER], body, now=int(time.time()))
    payload = json.loads(body)
    assert payload["event"] == "incident.page" and payload["incident"]["id"] == inc
    assert payload["level"] == 0 and payload["recipient"] == hook["id"]
    assert payload["link"].endswith(f"/incidents/{inc}")
    # and the notification row says so
    row = webhook_row(api, inc)
    assert (row["status"], row["delivery_attempts"], row["last_http_status"]) == ("delivered", 1, 200)


def test_a_receiver_that_fails_gets_growing_retries_then_the_dlq(
    api: Api, aws: LocalStack, receiver: Receiver, clock
) -> None:
    # Given a receiver that answers 500
    receiver.status = 500
    webhook_policy(api, receiver.url)
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    sender = Sender(aws)
    # When the sender tries, and the clock moves past each retry delay
    waits = [10, 30, 60, 120, 240, 300, 300]
    assert sender.deliver() == 1
    row = webhook_row(api, inc)
    assert (row["status"], row["delivery_attempts"], row["last_http_status"]) == ("retrying", 1, 500)
    clock.shift(waits[0] - 1)
    assert sender.deliver() == 0  # not before its delay
    for n, wait in enumerate(waits, start=1):
        clock.shift(wait + 1 if n > 1 else 2)
        assert sender.deliver() == 1, n
    # Then there were 8 attempts over more than 10 minutes, and the message rests in the DLQ
    assert len(receiver.requests) == 8
    assert sum(waits) >= 600
    row = webhook_row(api, inc)
    assert (row["status"], row["delivery_attempts"]) == ("failed", 8)
    clock.shift(400)
    assert sender.deliver() == 0 and sender.dead_letters() == 1


def test_slack_webhooks_get_a_readable_message(api: Api, aws: LocalStack, receiver: Receiver) -> None:
    webhook_policy(api, receiver.url, kind="slack")
    api.ok("POST", "/incidents", {"title": "<!channel> Checkout & cart down", "severity": "P0"}, expect=201)
    Sender(aws).deliver()
    message = json.loads(receiver.requests[0]["body"])
    assert set(message) == {"text", "unfurl_links"}
    assert "&lt;!channel&gt; Checkout &amp; cart down" in message["text"]  # no mention, no markup
    assert "Acknowledge" in message["text"]


def test_only_webhook_notifications_reach_the_sender(api: Api, aws: LocalStack) -> None:
    api.ok(
        "POST",
        "/policies",
        {
            "name": "p",
            "is_default": True,
            "levels": [{"delay_minutes": 0, "targets": [{"type": "user", "email": "a@example.com"}]}],
        },
        expect=201,
    )
    api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)
    assert Sender(aws).deliver() == 0


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"type": "webhook", "url": "https://hooks.example.com/x"}, "levels.0.targets.0.webhook"),
        ({"type": "webhook", "webhook_id": "wh_nope"}, "levels.0.targets.0.webhook_id"),
        ({"type": "webhook"}, "levels.0.targets.0.webhook"),
    ],
)
def test_policies_target_registered_webhooks_only(api: Api, target: dict[str, Any], field: str) -> None:
    body = {"name": "p", "levels": [{"delay_minutes": 0, "targets": [target]}]}
    status, answer = api.call("POST", "/policies", body)
    assert status == 422 and answer["field"].startswith(field), answer


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "https://10.1.2.3/x",
        "https://u:p@hooks.example.com/x",
        "http://hooks.example.com/x",
    ],
)
def test_a_deployed_stack_refuses_private_and_plain_webhook_urls(api: Api, url: str) -> None:
    status, body = api.call("POST", "/webhooks", {"name": "w", "url": url})
    assert status == 422 and body["field"] == "url", body


def test_a_webhook_is_replaced_and_disabled_and_a_disabled_one_drops_its_notifications(
    api: Api, aws: LocalStack, receiver: Receiver
) -> None:
    hook, _ = webhook_policy(api, receiver.url)
    moved = api.ok("PUT", f"/webhooks/{hook['id']}", {"name": "renamed", "url": receiver.url + "/v2"})
    assert moved["version"] == 2 and moved["url"].endswith("/v2")
    # A webhook disabled between the fire and the delivery: the sender drops it, and says so
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    api.ok("DELETE", f"/webhooks/{hook['id']}")
    assert api.ok("GET", "/webhooks")["items"] == []
    assert Sender(aws).deliver() == 1 and receiver.requests == []
    assert webhook_row(api, inc)["status"] == "failed"
    # A level that targets a disabled webhook reaches nobody, and the timeline says so
    later = api.ok("POST", "/incidents", {"title": "y", "severity": "P1"}, expect=201)["id"]
    assert "nobody_on_call" in [e["type"] for e in api.ok("GET", f"/incidents/{later}/timeline")["items"]]
    assert Sender(aws).deliver() == 0


def test_the_sample_event_drives_the_sender(aws: LocalStack) -> None:
    # The sample names a webhook no fresh stack has: dropped (done); the second record is not an
    # SNS envelope: reported failed, so that after its retries it rests in the DLQ.
    answer = invoke(aws.function("WebhookSenderFunction"), load_event("sqs_webhook_batch.json"))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "7d2c9e10-4b3a-4c1d-8e2f-000000000002"}]}


def test_a_batch_every_record_of_which_fails_is_reported_not_raised(aws: LocalStack) -> None:
    # Given a batch of only the sample's bad record (a receiver down fails every record alike)
    event = load_event("sqs_webhook_batch.json")
    event["Records"] = event["Records"][1:]
    # When the sender handles it, Then it answers the failure per record: no invocation error, so
    # WebhookSenderErrorsAlarm stays for the sender's own faults (the DLQ alarm sees the rest)
    answer = invoke(aws.function("WebhookSenderFunction"), event)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "7d2c9e10-4b3a-4c1d-8e2f-000000000002"}]}


def test_a_persons_own_webhook_and_slack_contact_methods_are_delivered(
    api: Api, aws: LocalStack, receiver: Receiver
) -> None:
    # Given a user reached by their own webhook and Slack URLs (no registered webhook, no secret)
    user = api.ok(
        "POST",
        "/users",
        {
            "name": "Ann",
            "email": "ann@example.com",
            "contact_methods": [
                {"type": "webhook", "address": receiver.url + "/ann"},
                {"type": "slack", "address": receiver.url + "/ann-slack"},
            ],
        },
        expect=201,
    )
    levels = [{"delay_minutes": 0, "targets": [{"type": "user", "user_id": user["id"]}]}]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    # When an incident pages her
    inc = api.ok("POST", "/incidents", {"title": "Checkout down", "severity": "P1"}, expect=201)["id"]
    assert Sender(aws).deliver() == 2
    # Then both URLs got a POST (the Slack one a readable message), unsigned, and both rows say delivered
    bodies = {
        r["headers"].get("Host", "") + str(json.loads(r["body"]).get("event", "slack"))
        for r in receiver.requests
    }
    assert len(receiver.requests) == 2 and len(bodies) == 2
    assert all(SIGNATURE_HEADER not in r["headers"] for r in receiver.requests)
    assert any("text" in json.loads(r["body"]) for r in receiver.requests)
    rows = [r for r in api.ok("GET", f"/incidents/{inc}/notifications")["items"] if r["kind"] == "page"]
    assert sorted((r["channel"], r["status"]) for r in rows) == [
        ("slack", "delivered"),
        ("webhook", "delivered"),
    ]


def test_the_local_retry_scale_shortens_every_wait_and_keeps_the_attempts(
    api: Api, aws: LocalStack, receiver: Receiver, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from incident_engine.wiring import reset_services

    # Given the sender told to wait a hundredth of each retry delay (make run's WEBHOOK_RETRY_SCALE)
    monkeypatch.setenv("WEBHOOK_RETRY_SCALE", "0.01")
    reset_settings()
    reset_services()
    receiver.status = 500
    webhook_policy(api, receiver.url)
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    sender = Sender(aws)
    # When it tries, and the clock moves just past each scaled wait (whole seconds, at least one)
    assert sender.deliver() == 1
    for n, wait in enumerate([1, 1, 1, 2, 3, 3, 3], start=1):
        assert sender.deliver() == 0, n  # never before its wait
        clock.shift(wait + 0.5)
        assert sender.deliver() == 1, n
    # Then it made the same 8 attempts as a deployed stack, and gave up the same way
    assert len(receiver.requests) == 8
    row = webhook_row(api, inc)
    assert (row["status"], row["delivery_attempts"], row["last_http_status"]) == ("failed", 8, 500)
    clock.shift(200)  # the queue's own visibility timeout (180 s) after the last attempt, unscaled
    assert sender.deliver() == 0 and sender.dead_letters() == 1
