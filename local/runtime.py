"""Runs the handlers in-process the way their template event sources would invoke them.

Used by the local stack's gateway and pollers, by the tests and by the benchmarks, so all
three deliver API requests, SQS batches and scheduler ticks in the same shapes as AWS.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from local.template import ACCOUNT, ROOT, FunctionSpec

# Lambda puts layer code on the path at /opt/python; here the engine layer is shared/.
if str(ROOT / "shared") not in sys.path:
    sys.path.insert(0, str(ROOT / "shared"))

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaContext:
    """Enough of Lambda's context object for Powertools' logger and batch processor."""

    def __init__(self, function_name: str, timeout_seconds: int = 30, memory_mb: int = 512) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: FunctionSpec) -> Handler:
    module = importlib.import_module(spec.module)
    handler: Handler = getattr(module, spec.handler)
    return handler


# Called with the function's name when an invocation raises (Lambda's Errors metric); set by
# local/metrics.py in the processes whose metrics reach the emulator.
on_function_error: Callable[[str], None] | None = None


def invoke(spec: FunctionSpec, event: dict[str, Any]) -> Any:
    handler = load_handler(spec)
    try:
        return handler(event, LambdaContext(spec.logical_id, spec.timeout))
    except Exception:
        if on_function_error is not None:
            on_function_error(spec.logical_id)
        raise


def api_event(
    method: str,
    path: str,
    resource: str,
    path_parameters: dict[str, str] | None,
    query: dict[str, list[str]] | None,
    headers: dict[str, str],
    body: str | None,
    *,
    stage: str,
    domain: str,
    principal: str | dict[str, str] | None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as API Gateway builds it for a Lambda proxy integration."""
    multi_headers = {k: [v] for k, v in headers.items()}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "domainName": domain,
            "apiId": "local",
            "accountId": ACCOUNT,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": (
                principal
                if isinstance(principal, dict)
                else {"principalId": principal}
                if principal
                else None
            ),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def authorize(
    authorizer: FunctionSpec,
    headers: dict[str, str],
    method_arn: str,
    invoker: Callable[[FunctionSpec, dict[str, Any]], Any] = invoke,
) -> tuple[int, dict[str, str] | None]:
    """API Gateway's TOKEN authorizer step: (0, the request's authorizer context) to let through,
    else (401|403, None). The policy's resources are matched against the method as API Gateway
    matches them (`*` stands for any run of characters)."""
    token = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not token:
        return 401, None  # API Gateway rejects a missing identity source without calling the authorizer
    try:
        result = invoker(authorizer, {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn})
    except Exception as exc:
        return (401, None) if str(exc) == "Unauthorized" else (500, None)
    allowed = False
    for statement in result.get("policyDocument", {}).get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        matches = any(re.fullmatch(".*".join(map(re.escape, r.split("*"))), method_arn) for r in resources)
        if matches and statement.get("Effect") == "Deny":
            return 403, None
        allowed = allowed or (matches and statement.get("Effect") == "Allow")
    if not allowed:
        return 403, None
    context = {k: str(v) for k, v in (result.get("context") or {}).items()}
    return 0, {**context, "principalId": str(result.get("principalId"))}


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """A Lambda SQS event from received messages (as the event source mapping builds it)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


TRACE_WORKER = os.environ.get("LOCAL_WORKER_TRACE") == "1"
TRACE_MARK = "timer trace"  # (incident, late at receive ms, sent before due ms) per timer


def _trace_batch(received: list[dict[str, Any]], got: float) -> None:
    """Where a late page's time went (LOCAL_WORKER_TRACE=1), one JSON line per batch: for each
    timer its incident, how late it was received and how long before its due time it was sent
    (SQS delays are whole seconds, so a timer sent 5.9 s ahead is delayed 6 s: 0.1 s late by
    design), then how long the batch took to handle. bench/lateness.py reads these lines."""
    from incident_engine.domain.timefmt import parse_iso

    done = time.time()
    timers = []
    for message in received:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            body = json.loads(message["Body"])
            due = parse_iso(str(body["due_at"])).timestamp()
            sent = int(message["Attributes"]["SentTimestamp"]) / 1000
            late_ms, ahead_ms = round((got - due) * 1000), round((due - sent) * 1000)
            timers.append([str(body.get("incident_id")), late_ms, ahead_ms])
    trace = {"received_at": round(got, 3), "timers": timers, "handled_ms": round((done - got) * 1000)}
    print(f"[worker {os.getpid()}] {TRACE_MARK} {json.dumps(trace)}", flush=True)


def deliver_sqs_batch(
    sqs: Any,
    queue_url: str,
    queue_arn: str,
    region: str,
    spec: FunctionSpec,
    wait_seconds: int = 0,
    most: int | None = None,
) -> int:
    """Receive one batch, invoke the function, delete what succeeded (ReportBatchItemFailures).

    ``most`` caps the batch below the template's BatchSize (the local workers: local/worker.py).
    Returns how many records were delivered. Failed records stay on the queue and come back after
    the visibility timeout, and after maxReceiveCount go to the DLQ: the queue's own redrive.
    """
    received = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=min(10, spec.sqs_batch_size, most or 10),
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
    ).get("Messages", [])
    if not received:
        return 0
    got = time.time()
    try:
        response = invoke(spec, sqs_event(received, queue_arn, region)) or {}
    except Exception:
        return len(received)  # the whole batch failed: every message comes back after its timeout
    if TRACE_WORKER:
        _trace_batch(received, got)
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    done = [m for m in received if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)],
        )
    return len(received)


def scheduled_event(spec: FunctionSpec) -> dict[str, Any]:
    """What EventBridge Scheduler delivers: the template's Input, verbatim."""
    return json.loads(spec.schedule_input) if spec.schedule_input else {}
