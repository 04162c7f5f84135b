"""A maintenance window's start and end on the timelines of its service's incidents open at each,
through the timer protocol (the worker and the reconciler of template.yaml) on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
import time_machine

from local.runtime import invoke
from local.template import LocalStack
from tests.support import Api, Timers, load_event, reconcile

MINUTE = 60
WINDOW = {"start": "2026-11-22T07:10:00Z", "end": "2026-11-22T07:30:00Z", "reason": "database upgrade"}


@pytest.fixture
def service(api: Api) -> dict[str, Any]:
    policy = json.loads(load_event("api_create_policy.json")["body"])
    api.ok("POST", "/policies", policy, expect=201)
    return api.ok("POST", "/services", {"name": "checkout"}, expect=201)  # type: ignore[no-any-return]


def trigger(api: Api, service: dict[str, Any], dedup_key: str) -> str:
    body = {**load_event("pagerduty_enqueue_trigger.json"), "routing_key": service["integration_key"]}
    status, answer = api.call("POST", "/v2/enqueue", {**body, "dedup_key": dedup_key})
    assert status == 202, answer
    return str(answer["incident_id"])


def edges(api: Api, incident_id: str) -> list[tuple[str, str]]:
    items = api.ok("GET", f"/incidents/{incident_id}/timeline")["items"]
    return [(e["type"], e["data"]["window_id"]) for e in items if e["type"].startswith("maintenance_window_")]


def test_start_and_end_are_noted_on_the_incidents_open_at_each(
    api: Api, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given, at 07:00, an open incident, a resolved one, and one on another service
    before = trigger(api, service, "before")
    closed = trigger(api, service, "closed")
    api.ok("POST", f"/incidents/{closed}/resolve", {})
    other = api.ok("POST", "/services", {"name": "billing"}, expect=201)
    elsewhere = trigger(api, other, "elsewhere")
    # And a window 07:10-07:30 on the service
    window = api.ok("POST", f"/services/{service['id']}/maintenance-windows", WINDOW, expect=201)
    # When it starts
    clock.shift(10 * MINUTE)
    timers.deliver()
    # Then only the incident open on the service has the start on its timeline
    assert edges(api, before) == [("maintenance_window_started", window["id"])]
    assert edges(api, closed) == edges(api, elsewhere) == []
    # When an alert opens an incident inside the window, and the window ends
    inside = trigger(api, service, "inside")
    assert api.ok("GET", f"/incidents/{inside}")["suppressed"] is True
    clock.shift(20 * MINUTE)
    timers.deliver()
    # Then the end is on both open incidents; the one opened inside noted the window when it opened
    assert edges(api, before) == [
        ("maintenance_window_started", window["id"]),
        ("maintenance_window_ended", window["id"]),
    ]
    assert edges(api, inside) == [("maintenance_window_ended", window["id"])]
    [ended] = [
        e
        for e in api.ok("GET", f"/incidents/{inside}/timeline")["items"]
        if e["type"] == "maintenance_window_ended"
    ]
    assert ended["at"].startswith("2026-11-22T07:30") and ended["data"]["reason"] == "database upgrade"


def test_a_duplicate_edge_timer_notes_each_timeline_once(
    api: Api, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    open_one = trigger(api, service, "open")
    api.ok("POST", f"/services/{service['id']}/maintenance-windows", WINDOW, expect=201)
    clock.shift(10 * MINUTE)
    raw = [m for m in timers.receive_raw() if '"maintenance"' in m["Body"]]
    assert len(raw) == 1
    for _ in range(3):
        timers.sqs.send_message(QueueUrl=timers.url, MessageBody=raw[0]["Body"])
    timers.deliver()
    assert [t for t, _ in edges(api, open_one)] == ["maintenance_window_started"]


def test_a_lost_edge_timer_is_rearmed_by_the_reconciler(
    api: Api, aws: LocalStack, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    open_one = trigger(api, service, "open")
    api.ok("POST", f"/services/{service['id']}/maintenance-windows", WINDOW, expect=201)
    clock.shift(10 * MINUTE)
    for m in timers.receive_raw():
        if '"maintenance"' in m["Body"]:
            timers.sqs.delete_message(QueueUrl=timers.url, ReceiptHandle=m["ReceiptHandle"])
        else:
            timers.sqs.change_message_visibility(
                QueueUrl=timers.url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
    timers.deliver()
    assert edges(api, open_one) == []
    # When the reconciler ticks after the grace
    clock.shift(MINUTE)
    reconcile(aws)
    timers.deliver()
    # Then the start is noted
    assert [t for t, _ in edges(api, open_one)] == ["maintenance_window_started"]


def test_a_window_declared_hours_ahead_hops_to_its_start(
    api: Api, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    open_one = trigger(api, service, "open")
    later = {**WINDOW, "start": "2026-11-22T09:00:00Z", "end": "2026-11-22T10:00:00Z"}
    api.ok("POST", f"/services/{service['id']}/maintenance-windows", later, expect=201)
    for _ in range(7):  # 07:15 .. 08:45: not yet
        clock.shift(15 * MINUTE)
        timers.deliver()
        assert edges(api, open_one) == []
    clock.shift(15 * MINUTE)
    timers.deliver()
    assert [t for t, _ in edges(api, open_one)] == ["maintenance_window_started"]


def test_the_worker_reports_only_unreadable_maintenance_timers(aws: LocalStack) -> None:
    # Given the sample batch: an edge of a window that does not exist, then one with no such edge
    event = load_event("sqs_maintenance_timer_batch.json")
    result = invoke(aws.function("EscalationWorkerFunction"), event)
    # Then the first is dropped as stale and only the second is reported failed
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
