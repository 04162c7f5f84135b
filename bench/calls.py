"""AWS calls per operation: the real handlers on moto, every botocore call counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import time_machine

from bench.harness import CallLog, counting, in_process_aws
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
    log = CallLog()
    results: list[OpCalls] = []

    def record(name: str, floor: int, reason: str) -> None:
        reads, writes = log.units()
        items = sum(c.items_read for c in log.calls)
        results.append(OpCalls(name, dict(log.counts()), log.total(), floor, reason, reads, writes, items))

    with counting(log), in_process_aws() as stack, time_machine.travel(START, tick=False) as clock:
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
        log.reset()
        invoke(reconciler, scheduled_event(reconciler))
        record("reconciler pass, nothing to do", 2, "1 query per repair kind (timers, outbox)")

        def worker_once(name: str, floor: int, reason: str) -> None:
            """What the worker's handler does with one timer, without the event source's receive/delete."""
            messages: list[Any] = sqs.receive_message(QueueUrl=timers.url, MaxNumberOfMessages=1)["Messages"]
            log.reset()
            invoke(worker, sqs_event(messages, timers.arn, stack.region))
            record(name, floor, reason)
            sqs.delete_message(QueueUrl=timers.url, ReceiptHandle=messages[0]["ReceiptHandle"])

        log.reset()
        inc = api.ok("POST", "/incidents", {"title": "t", "severity": "P1", "policy_id": one}, expect=201)[
            "id"
        ]
        record(
            "create incident (policy; level 0 pages 1)",
            5,
            "id counter + policy read + 1 transaction + 1 publish + 1 timer send",
        )

        clock.shift(60)
        worker_once("fire one level, 1 recipient", 3, "1 transaction + 1 publish + 1 timer send")

        log.reset()
        api.ok("POST", f"/incidents/{inc}/acknowledge", {})
        record("acknowledge", 2, "read + 1 conditional transaction")

        clock.shift(60)
        worker_once("stale timer (after an ack)", 1, "read the incident to compare tokens")

        log.reset()
        api.ok("POST", f"/incidents/{inc}/resolve", {})
        record("resolve (2 paged, 2 notices)", 4, "read + 1 transaction + 1 publish per recipient")

        inc5 = api.ok("POST", "/incidents", {"title": "t", "severity": "P1", "policy_id": five}, expect=201)[
            "id"
        ]
        log.reset()
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

    return results
