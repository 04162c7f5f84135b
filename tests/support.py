"""Test helpers: events from events/, handlers invoked in-process, the timer queue drained."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3

from local.runtime import authorize, deliver_sqs_batch, invoke, scheduled_event
from local.template import LocalStack

EVENTS = Path(__file__).resolve().parent.parent / "events"
TOKEN = "local-dev-token"  # the token the sample events carry


def load_event(name: str) -> dict[str, Any]:
    with (EVENTS / name).open() as fh:
        data: dict[str, Any] = json.load(fh)
    return copy.deepcopy(data)


class Api:
    """Calls the api handler with events derived from the samples in events/."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.spec = stack.function("ApiFunction")
        self.last_headers: dict[str, str] = {}

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        for route in self.spec.routes:
            params = route.matches(method, path)
            if params is not None:
                return route.path, params
        raise AssertionError(f"{method} {path} is not declared in template.yaml")

    def event(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        base = load_event("api_get_incident.json" if method == "GET" else "api_create_incident.json")
        resource, params = self._route(method, path)
        base.update(
            httpMethod=method,
            path=path,
            resource=resource,
            pathParameters=params or None,
            queryStringParameters=query or None,
            multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
            body=raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        )
        base["requestContext"].update(resourcePath=resource, httpMethod=method, path=f"/v1{path}")
        if headers:
            base["headers"] = {**(base.get("headers") or {}), **headers}
            base["multiValueHeaders"] = {
                **(base.get("multiValueHeaders") or {}),
                **{k: [v] for k, v in headers.items()},
            }
        return base

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        response = invoke(self.spec, self.event(method, path, body, query, raw_body, headers))
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        headers.update(
            {k.lower(): ", ".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()}
        )
        self.last_headers = headers
        is_json = "json" in headers.get("content-type", "application/json")
        payload = (
            (json.loads(response["body"]) if is_json else response["body"]) if response.get("body") else None
        )
        return int(response["statusCode"]), payload

    def call_as(
        self,
        secret: str | None,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        raw_body: str | None = None,
    ) -> tuple[int, Any]:
        """As API Gateway would: the authorizer first (its policy matched against the method ARN),
        then the handler with the context it gave; ``secret`` None sends no Authorization."""
        resource, _ = self._route(method, path)
        public = next(
            r.public for r in self.spec.routes if r.path == resource and r.method in (method.upper(), "ANY")
        )
        event = self.event(method, path, body, query, raw_body)
        if public:
            event["requestContext"]["authorizer"] = None
        else:
            headers = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
            arn = f"arn:aws:execute-api:us-east-1:123456789012:abc123/v1/{method}{path}"
            denied, context = authorize(self.stack.function("AuthorizerFunction"), headers, arn)
            if denied:
                return denied, None
            event["requestContext"]["authorizer"] = context
        response = invoke(self.spec, event)
        self.last_headers = {
            k.lower(): ", ".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()
        }
        text = response.get("body")
        is_json = "json" in self.last_headers.get("content-type", "application/json")
        return int(response["statusCode"]), (json.loads(text) if is_json else text) if text else None

    def ok(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None, expect: int = 200
    ) -> Any:
        status, payload = self.call(method, path, body, query)
        assert status == expect, (status, payload)
        return payload


def route_summaries_to_a_disabled_policy(api: Api, contains: str) -> tuple[str, str]:
    """A default policy (events/api_create_policy.json), and a routing rule sending every summary
    that contains ``contains`` to another policy, since disabled: (default id, disabled id)."""
    default = api.ok(
        "POST", "/policies", json.loads(load_event("api_create_policy.json")["body"]), expect=201
    )
    level = {"delay_minutes": 0, "targets": [{"type": "user", "email": "x@example.com"}]}
    gone_id = api.ok("POST", "/policies", {"name": "gone", "levels": [level]}, expect=201)["id"]
    rule = {
        "name": "to a gone policy",
        "conditions": [{"field": "summary", "operator": "contains", "value": contains}],
        "actions": [{"type": "set_policy", "policy_id": gone_id}],
    }
    api.ok("POST", "/routing-rules", rule, expect=201)
    api.ok("DELETE", f"/policies/{gone_id}")
    return str(default["id"]), str(gone_id)


class Timers:
    """The timer queue seen from the worker's event source mapping."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sqs = boto3.client("sqs", region_name=stack.region)
        self.url = stack.physical["TimerQueue"]
        self.arn = stack.arns["TimerQueue"]
        self.worker = stack.function("EscalationWorkerFunction")

    def deliver(self, max_batches: int = 50) -> int:
        """Deliver every visible timer message to the worker; returns how many were delivered."""
        total = 0
        for _ in range(max_batches):
            n = deliver_sqs_batch(self.sqs, self.url, self.arn, self.stack.region, self.worker)
            if n == 0:
                return total
            total += n
        raise AssertionError("timer queue did not drain")

    def receive_raw(self) -> list[dict[str, Any]]:
        out: list[Any] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            out.extend(got)

    def depth(self) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])["Attributes"]
        return {
            "visible": int(attrs["ApproximateNumberOfMessages"]),
            "delayed": int(attrs["ApproximateNumberOfMessagesDelayed"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        }


class Tap:
    """An SQS queue subscribed to the notifications topic: what SNS really delivered."""

    def __init__(self, stack: LocalStack) -> None:
        self.sqs = boto3.client("sqs", region_name=stack.region)
        sns = boto3.client("sns", region_name=stack.region)
        self.url = self.sqs.create_queue(QueueName="test-notifications-tap")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=stack.physical["NotificationsTopic"], Protocol="sqs", Endpoint=arn)
        self.seen: list[dict[str, Any]] = []

    def messages(self) -> list[dict[str, Any]]:
        """All messages delivered so far: {subject, message, attributes} each."""
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return self.seen
            for m in got:
                envelope = json.loads(m["Body"])
                self.seen.append(
                    {
                        "subject": envelope.get("Subject"),
                        "message": envelope["Message"],
                        "attributes": {
                            k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()
                        },
                    }
                )
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])


def reconcile(stack: LocalStack) -> dict[str, int]:
    spec = stack.function("ReconcilerFunction")
    result: dict[str, int] = invoke(spec, scheduled_event(spec) or load_event("reconciler_tick.json"))
    return result
