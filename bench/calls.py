"""AWS calls per operation: the real handlers on moto, every botocore call counted.

Write units are DynamoDB's billing rules applied to what each call writes: a put by the item sent,
an update by the larger of the item before and after (read from moto's backend), transactions
double; secondary-index writes (`bench.lists.IndexWrites`) are counted apart, as moto bills none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import time_machine

from bench.harness import StoredSizeCallLog, counting, in_process_aws
from bench.lists import IndexWrites, index_writes
from local.runtime import invoke, scheduled_event, sqs_event
from tests.support import Api, Timers

START = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


@dataclass(frozen=True)
class OpCalls:
    name: str
    calls: dict[str, int]
    total: int
    floor: int
    floor_reason: str
    read_units: float
    write_units: float
    items_read: int
    index_units: float = 0.0  # WRU of the secondary-index entries the writes put or delete
    group: str = "incident"  # "incident": the lifecycle's operations; "alert": one alert in
    authorizer_calls: int = 0  # Alertmanager's bearer key, apart: API Gateway caches the answer 60 s

    @property
    def ratio(self) -> float:
        return self.total / self.floor


def _policy(api: Api, name: str, recipients: int, delays: tuple[float, ...]) -> str:
    levels = [
        {
            "delay_minutes": d,
            "targets": [{"type": "user", "email": f"l{n}-{k}@example.com"} for k in range(recipients)],
        }
        for n, d in enumerate(delays)
    ]
    policy: dict[str, Any] = api.ok("POST", "/policies", {"name": name, "levels": levels}, expect=201)
    return str(policy["id"])


def measure() -> list[OpCalls]:
    return _measure_incidents() + measure_alerts()


def _measure_incidents() -> list[OpCalls]:
    results: list[OpCalls] = []
    with in_process_aws() as stack, time_machine.travel(START, tick=False) as clock:
        log, meter = StoredSizeCallLog(stack.region), IndexWrites(stack.region)
        with counting(log), index_writes(meter):
            _incident_ops(stack, clock, log, meter, results)
    return results


def _incident_ops(
    stack: Any, clock: Any, log: StoredSizeCallLog, meter: IndexWrites, results: list[OpCalls]
) -> None:
    def record(name: str, floor: int, reason: str) -> None:
        reads, writes = log.units()
        items = sum(c.items_read for c in log.calls)
        results.append(
            OpCalls(name, dict(log.counts()), log.total(), floor, reason, reads, writes, items, meter.units)
        )

    def reset() -> None:
        log.reset()
        meter.units = 0.0

    api, timers = Api(stack), Timers(stack)
    sqs = boto3.client("sqs", region_name=stack.region)
    worker = stack.function("EscalationWorkerFunction")
    one = _policy(api, "one", 1, (0, 1, 1))
    five = _policy(api, "five", 5, (0, 1, 1, 1, 1))
    slow = _policy(api, "slow", 1, (0, 40))
    api.ok(
        "POST",
        "/policies",
        {
            "name": "default",
            "is_default": True,
            "levels": [{"delay_minutes": 0, "targets": [{"type": "user", "email": "d@example.com"}]}],
        },
        expect=201,
    )

    # First, while nothing is escalating: the reconciler's pass with nothing to repair.
    reconciler = stack.function("ReconcilerFunction")
    reset()
    invoke(reconciler, scheduled_event(reconciler))
    record(
        "reconciler pass, nothing to do",
        5,
        "1 query per repair kind (escalation timers, heartbeats, maintenance edges, outbox) + its run record",
    )

    def worker_once(name: str, floor: int, reason: str) -> None:
        """What the worker's handler does with one timer, without the event source's receive/delete."""
        messages: list[Any] = sqs.receive_message(QueueUrl=timers.url, MaxNumberOfMessages=1)["Messages"]
        reset()
        invoke(worker, sqs_event(messages, timers.arn, stack.region))
        record(name, floor, reason)
        sqs.delete_message(QueueUrl=timers.url, ReceiptHandle=messages[0]["ReceiptHandle"])

    # A warm deployment: the first create of all makes the link-signing key once, not priced.
    api.ok("POST", "/incidents", {"title": "warm", "severity": "P4"}, expect=201)
    reset()
    inc = api.ok("POST", "/incidents", {"title": "t", "severity": "P1", "policy_id": one}, expect=201)["id"]
    record(
        "create incident (policy; level 0 pages 1)",
        5,
        "id counter + policy read + 1 transaction + 1 publish + 1 timer send",
    )

    clock.shift(60)
    worker_once("fire one level, 1 recipient", 3, "1 transaction + 1 publish + 1 timer send")

    reset()
    api.ok("POST", f"/incidents/{inc}/acknowledge", {})
    record("acknowledge", 2, "read + 1 conditional transaction")

    clock.shift(60)
    worker_once("stale timer (after an ack)", 1, "read the incident to compare tokens")

    reset()
    api.ok("POST", f"/incidents/{inc}/resolve", {})
    record("resolve (2 paged, 2 notices)", 4, "read + 1 transaction + 1 publish per recipient")

    inc5 = api.ok("POST", "/incidents", {"title": "t", "severity": "P1", "policy_id": five}, expect=201)["id"]
    reset()
    api.ok("POST", f"/incidents/{inc5}/escalate", {})
    record("escalate now (5 recipients)", 8, "read + 1 transaction + 5 publishes + 1 timer send")
    sqs.purge_queue(QueueUrl=timers.url)  # the escalated-past timer is stale; keep the queue simple
    api.ok("POST", f"/incidents/{inc5}/escalate", {})  # fires level 2, arms level 3 (one timer)
    clock.shift(60)
    worker_once("fire one level, 5 recipients", 7, "1 transaction + 5 publishes + 1 timer send")

    sqs.purge_queue(QueueUrl=timers.url)
    api.ok("POST", "/incidents", {"title": "t", "severity": "P3", "policy_id": slow}, expect=201)
    clock.shift(15 * 60)
    worker_once("timer hop (due in more than 15 min)", 1, "1 timer re-send")


# --- one alert in, per ingest path ----------------------------------------------------------------

ALERT_PATHS = (
    "PagerDuty /v2/enqueue",
    "Alertmanager webhook",
    "CloudWatch via SNS",
    "CloudWatch via EventBridge",
)
# The floor per path: the fewest AWS calls a correct design needs (stated, then compared).
ALERT_FLOORS: dict[tuple[str, str], tuple[int, str]] = {
    ("PagerDuty /v2/enqueue", "new"): (
        4,
        "integration key's service (1 read) + policy (1 read) + 1 transaction (dedup claim, incident, "
        "history, page row) + 1 publish",
    ),
    ("PagerDuty /v2/enqueue", "repeat"): (
        3,
        "integration key's service (1 read) + the key's incident (1 read) + 1 conditional write",
    ),
    ("Alertmanager webhook", "new"): (
        4,
        "bearer key's service (1 read) + policy (1 read) + 1 transaction + 1 publish",
    ),
    ("Alertmanager webhook", "repeat"): (
        3,
        "bearer key's service (1 read) + the key's incident (1 read) + 1 conditional write",
    ),
    ("CloudWatch via SNS", "new"): (
        5,
        "alarm tags (1 call: SNS carries none) + service (1 read) + policy (1 read) + 1 transaction "
        "+ 1 publish",
    ),
    ("CloudWatch via SNS", "repeat"): (
        4,
        "alarm tags (1 call) + service (1 read) + the key's incident (1 read) + 1 conditional write",
    ),
    ("CloudWatch via EventBridge", "new"): (
        4,
        "service (1 read; the event carries the tags) + policy (1 read) + 1 transaction + 1 publish",
    ),
    ("CloudWatch via EventBridge", "repeat"): (
        3,
        "service (1 read) + the key's incident (1 read) + 1 conditional write",
    ),
}


def measure_alerts() -> list[OpCalls]:
    """One new and one repeated alert through each path's real handler, on a warm container; a
    default policy pages one person at level 0. The Alertmanager bearer key's authorizer call is
    left out, as API Gateway caches its answer for 60 s (ReauthorizeEvery); bench/cost.py prices it."""
    from bench.alerts import ALARM_PREFIX, alarm_event, alarm_message, am_body, pd_body
    from local.async_sources import sns_event
    from local.runtime import authorize

    results: list[OpCalls] = []
    with in_process_aws() as stack, time_machine.travel(START, tick=False):
        log, meter = StoredSizeCallLog(stack.region), IndexWrites(stack.region)
        with counting(log), index_writes(meter):
            api = Api(stack)
            level = {"delay_minutes": 0, "targets": [{"type": "user", "email": "oncall@example.com"}]}
            api.ok("POST", "/policies", {"name": "pager", "is_default": True, "levels": [level]}, expect=201)
            service = api.ok(
                "POST", "/services", {"name": "bench", "alarm_name_prefixes": [ALARM_PREFIX]}, expect=201
            )
            key = service["integration_key"]
            alarm_fn, authorizer = stack.function("AlarmIngestFunction"), stack.function("AuthorizerFunction")
            method_arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/POST/integrations/alertmanager"
            _, context = authorize(authorizer, {"Authorization": f"Bearer {key}"}, method_arn)
            before = len(log.calls)  # what a cache miss costs, on a warm authorizer container
            authorize(authorizer, {"Authorization": f"Bearer {key}"}, method_arn)
            authorizer_calls = len(log.calls) - before

            def pd(name: str) -> None:
                status, body = api.call("POST", "/v2/enqueue", raw_body=pd_body(key, name))
                assert status == 202, body

            def am(name: str) -> None:
                event = api.event("POST", "/integrations/alertmanager", raw_body=am_body(name))
                event["requestContext"]["authorizer"] = context
                response = invoke(api.spec, event)
                assert response["statusCode"] == 200, response

            def sns(name: str) -> None:
                envelope = {"Type": "Notification", "TopicArn": stack.physical["AlarmTopic"]}
                report = invoke(alarm_fn, sns_event(envelope | {"Message": alarm_message(name)}, "sub"))
                assert report["rejected"] == 0, report

            def bus(name: str) -> None:
                report = invoke(alarm_fn, alarm_event(name))
                assert report["rejected"] == 0, report

            for n, (path, send) in enumerate(zip(ALERT_PATHS, (pd, am, sns, bus), strict=True)):
                send(f"{ALARM_PREFIX}warm-{n}")  # a warm container: what most alerts meet
                for kind in ("new", "repeat"):
                    log.reset()
                    meter.units = 0.0
                    send(f"{ALARM_PREFIX}measured-{n}")
                    reads, writes = log.units()
                    floor, reason = ALERT_FLOORS[(path, kind)]
                    results.append(
                        OpCalls(
                            f"alert in, {path}, {kind}",
                            dict(log.counts()),
                            log.total(),
                            floor,
                            reason,
                            reads,
                            writes,
                            sum(c.items_read for c in log.calls),
                            meter.units,
                            group="alert",
                            authorizer_calls=authorizer_calls if send is am else 0,
                        )
                    )
    return results
