"""Timed escalation through the real worker, timer queue and topic, with the clock moved."""

from __future__ import annotations

import boto3

from local.runtime import invoke
from local.template import LocalStack
from tests.support import Api, Tap, Timers, load_event, reconcile

A, B, C = "a@example.com", "b@example.com", "c@example.com"


def three_levels(api: Api, delays: tuple[float, float, float] = (0, 0.05, 0.05), **extra: object) -> dict:
    levels = [
        {"delay_minutes": d, "targets": [{"type": "user", "email": who}]}
        for d, who in zip(delays, (A, B, C), strict=False)
    ]
    return api.ok(
        "POST", "/policies", {"name": "Three", "is_default": True, "levels": levels, **extra}, expect=201
    )


def pages(tap: Tap) -> list[tuple[str, str]]:
    return [
        (m["attributes"]["level"], m["attributes"]["recipient"])
        for m in tap.messages()
        if m["attributes"]["kind"] == "page"
    ]


def test_levels_fire_on_time_and_acknowledge_stops_the_rest(
    api: Api, timers: Timers, tap: Tap, clock
) -> None:
    # Given a policy of three levels: now, +3 s, +3 s
    three_levels(api)
    # When a P1 incident opens
    inc = api.ok("POST", "/incidents", {"title": "API down", "severity": "P1"}, expect=201)
    path = f"/incidents/{inc['id']}"
    # Then level 0 is paged at once, and level 1 not before its time
    assert pages(tap) == [("0", A)]
    clock.shift(2.5)
    assert timers.deliver() == 0
    clock.shift(0.5)
    assert timers.deliver() == 1
    assert pages(tap) == [("0", A), ("1", B)]
    # When someone acknowledges before level 2 is due
    api.ok("POST", f"{path}/acknowledge", {"by": B})
    clock.shift(10)
    timers.deliver()  # level 2's timer arrives, finds a new token, and is dropped
    # Then nobody else is paged, and the step shows cancelled
    assert pages(tap) == [("0", A), ("1", B)]
    steps = api.ok("GET", f"{path}/escalations")["items"]
    assert [(s["level"], s["status"]) for s in steps] == [(0, "executed"), (1, "executed"), (2, "cancelled")]
    assert steps[1]["scheduled_at"] == steps[1]["executed_at"] == "2026-11-22T07:00:03.000Z"
    # When it is resolved, everyone who was paged hears so, once
    api.ok("POST", f"{path}/resolve", {"resolution_note": "failed over"})
    closure = [m for m in tap.messages() if m["attributes"]["kind"] == "resolution"]
    assert sorted(m["attributes"]["recipient"] for m in closure) == [A, B]
    assert all("RESOLUTION: failed over" in m["message"] for m in closure)
    outbox = api.ok("GET", f"{path}/notifications")["items"]
    assert [(n["kind"], n["status"]) for n in outbox].count(("page", "sent")) == 2
    assert all(n["status"] == "sent" for n in outbox)
    types = [e["type"] for e in api.ok("GET", f"{path}/timeline")["items"]]
    assert types == [
        "created",
        "escalation_started",
        "level_fired",
        "level_fired",
        "acknowledged",
        "resolved",
    ]


def test_a_wait_longer_than_fifteen_minutes_hops(api: Api, timers: Timers, tap: Tap, clock) -> None:
    # Given level 1 is 40 minutes after level 0 (SQS delays stop at 15)
    three_levels(api, delays=(0, 40, 60))
    api.ok("POST", "/incidents", {"title": "slow burn", "severity": "P3"}, expect=201)
    for minute in (15, 30):
        clock.shift(15 * 60)
        assert timers.deliver() == 1  # a hop: re-sent with what is left
        assert pages(tap) == [("0", A)], minute
    clock.shift(10 * 60 - 1)
    assert timers.deliver() == 0
    clock.shift(1)
    assert timers.deliver() == 1
    assert pages(tap) == [("0", A), ("1", B)]


def test_repeat_pages_the_policy_again_until_acknowledged(api: Api, timers: Timers, tap: Tap, clock) -> None:
    three_levels(api, delays=(0, 0.05, 0.05), repeat={"max_repeats": 1, "interval_minutes": 1})
    api.ok("POST", "/incidents", {"title": "x", "severity": "P0"}, expect=201)
    for _ in range(6):
        clock.shift(60)
        timers.deliver()
    assert pages(tap) == [("0", A), ("1", B), ("2", C), ("0", A), ("1", B), ("2", C)]
    assert len({m["attributes"]["dedup_id"] for m in tap.messages()}) == 6


def test_snooze_pauses_then_repages(api: Api, timers: Timers, tap: Tap, clock) -> None:
    three_levels(api, delays=(0, 5, 5))
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P2"}, expect=201)
    api.ok("POST", f"/incidents/{inc['id']}/snooze", {"minutes": 10})
    clock.shift(9 * 60)
    timers.deliver()
    assert pages(tap) == [("0", A)]  # level 1 (due at 5 min) did not fire while snoozed
    clock.shift(60)
    timers.deliver()
    assert pages(tap) == [("0", A), ("0", A)]
    assert api.ok("GET", f"/incidents/{inc['id']}")["status"] == "escalating"


def test_escalate_now_fires_the_next_level_immediately(api: Api, timers: Timers, tap: Tap, clock) -> None:
    three_levels(api, delays=(0, 30, 30))
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)
    body = api.ok("POST", f"/incidents/{inc['id']}/escalate", {})
    assert body["escalation"]["level"] == 1 and body["escalation"]["next_level"] == 2
    clock.shift(30 * 60)
    timers.deliver()  # the original level-1 timer is stale; level 2's fires
    assert pages(tap) == [("0", A), ("1", B), ("2", C)]


def test_worker_reports_only_the_poison_record(aws: LocalStack) -> None:
    # Given the sample batch: two timers for incidents that do not exist, and one unreadable body
    event = load_event("sqs_timer_batch.json")
    # When the worker handles it
    result = invoke(aws.function("EscalationWorkerFunction"), event)
    # Then the two timers are dropped as stale and only the poison record is reported failed
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


def test_a_poison_message_ends_in_the_dead_letter_queue(aws: LocalStack, timers: Timers, clock) -> None:
    sqs = boto3.client("sqs", region_name=aws.region)
    sqs.send_message(QueueUrl=timers.url, MessageBody="{not a timer")
    for _ in range(5):  # the template's maxReceiveCount
        assert timers.deliver() == 1
        clock.shift(181)  # past the queue's visibility timeout
    assert timers.deliver() == 0
    dlq = sqs.receive_message(QueueUrl=aws.physical["TimerDeadLetterQueue"], MaxNumberOfMessages=10)[
        "Messages"
    ]
    assert [m["Body"] for m in dlq] == ["{not a timer"]


def test_reconciler_tick_from_the_sample_event_is_quiet_when_all_is_well(api: Api, aws: LocalStack) -> None:
    three_levels(api)
    api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)
    assert invoke(aws.function("ReconcilerFunction"), load_event("reconciler_tick.json")) == {
        "timers_rearmed": 0,
        "notifications_republished": 0,
    }
    assert reconcile(aws) == {"timers_rearmed": 0, "notifications_republished": 0}


def test_a_provisioned_worker_builds_its_clients_at_init_and_fires_levels_as_before(
    aws: LocalStack, api: Api, timers: Timers, tap: Tap, clock, monkeypatch
) -> None:
    import importlib
    import sys

    from incident_engine.store.models import INCIDENT_MODELS
    from incident_engine.wiring import services

    # Given the worker's environment is initialised ahead of its first batch (provisioned, or the
    # local stack's worker processes)
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")
    monkeypatch.delitem(sys.modules, "functions.escalation_worker.app", raising=False)
    importlib.import_module("functions.escalation_worker.app")
    # Then its init made every DynamoDB client (the transactions' and each item class's)
    assert services().incidents._connection._client is not None
    assert all(m._get_connection().connection._client is not None for m in INCIDENT_MODELS)
    # And a level still fires through it when due
    three_levels(api, delays=(0, 0.05))
    inc = api.ok("POST", "/incidents", {"title": "warm", "severity": "P1"}, expect=201)
    clock.shift(3)
    assert timers.deliver() == 1
    assert pages(tap) == [("0", A), ("1", B)]
    steps = api.ok("GET", f"/incidents/{inc['id']}/escalations")["items"]
    assert [(s["level"], s["status"]) for s in steps] == [(0, "executed"), (1, "executed")]
