"""GET /health stays public and cheap; GET /health?deep=1 tells the admin how the engine itself is."""

from __future__ import annotations

import json

import boto3
import time_machine

from local.template import LocalStack
from tests.support import TOKEN, Api, Timers, reconcile


def deep(api: Api, token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    event = api.event("GET", "/health", query={"deep": "1"}, headers=headers)
    if token is None:
        event["headers"].pop("Authorization", None)
        event["multiValueHeaders"].pop("Authorization", None)
    from local.runtime import invoke

    response = invoke(api.spec, event)
    return int(response["statusCode"]), json.loads(response["body"])


def one_level_policy(api: Api, delay_minutes: float) -> None:
    level = {"delay_minutes": delay_minutes, "targets": [{"type": "user", "email": "a@example.com"}]}
    api.ok("POST", "/policies", {"name": "One", "is_default": True, "levels": [level]}, expect=201)


def test_plain_health_is_public_and_says_only_ok(api: Api) -> None:
    event = api.event("GET", "/health")
    event["headers"].pop("Authorization", None)
    from local.runtime import invoke

    response = invoke(api.spec, event)
    assert (response["statusCode"], json.loads(response["body"])) == (200, {"status": "ok"})


def test_deep_health_needs_the_admin_token(api: Api, aws: LocalStack) -> None:
    # No token, another token, then the admin's
    assert deep(api, None)[0] == 401
    status, body = deep(api, "not-the-admin-token")
    assert status == 403 and body["error"] == "forbidden" and TOKEN not in json.dumps(body)
    assert deep(api)[0] == 200
    # deep takes only "1": anything else is a 422 naming it
    status, body = api.call("GET", "/health", query={"deep": "yes"})
    assert status == 422 and body["field"].endswith("deep")


def test_a_refused_deep_health_builds_none_of_the_engine(aws: LocalStack) -> None:
    from incident_engine.wiring import reset_services, services

    # Given an api container that has served nothing yet (no config in the store either)
    reset_services()
    api = Api(aws)
    # When a caller without the admin token asks for deep=1
    status, _ = deep(api, "not-the-admin-token")
    # Then it is refused having read only the credential store: no engine services were built
    assert status == 403
    assert services.cache_info().currsize == 0


def test_deep_health_takes_an_admin_scoped_token_and_refuses_a_read_or_revoked_one(api: Api) -> None:
    # Given an admin-scoped API token and a read-scoped one
    admin = api.ok("POST", "/tokens", {"name": "ops lead", "scopes": ["admin"]}, expect=201)
    reader = api.ok("POST", "/tokens", {"name": "dashboard", "scopes": ["read"]}, expect=201)
    # Then the admin scope reaches deep=1 and the read scope does not
    assert deep(api, admin["token"])[0] == 200
    status, body = deep(api, reader["token"])
    assert status == 403 and body["error"] == "forbidden" and reader["token"] not in json.dumps(body)
    # When the admin token is revoked, Then it no longer does either
    api.ok("DELETE", f"/tokens/{admin['id']}")
    assert deep(api, admin["token"])[0] == 403


def test_a_fresh_engine_reports_empty_queues_and_a_reconciler_that_never_ran(api: Api) -> None:
    status, body = deep(api)
    assert status == 200
    assert set(body["queues"]) == {
        "timer",
        "timer_dead_letter",
        "webhook",
        "webhook_dead_letter",
        "alarm_dead_letter",
    }
    assert all(q == {"visible": 0, "in_flight": 0, "delayed": 0} for q in body["queues"].values())
    assert body["oldest_overdue_timer"] is None and body["reconciler"] is None
    assert body["status"] == "degraded" and body["problems"] == ["the reconciler has never run"]


def test_the_reconciler_records_its_last_run_and_it_goes_stale_after_five_minutes(
    api: Api, aws: LocalStack, clock: time_machine.Traveller
) -> None:
    # Given the reconciler ran once
    reconcile(aws)
    status, body = deep(api)
    assert status == 200
    assert body["status"] == "ok" and body["problems"] == []
    assert body["reconciler"] == {
        "last_run_at": "2026-11-22T07:00:00.000Z",
        "seconds_ago": 0.0,
        "timers_rearmed": 0,
        "notifications_republished": 0,
    }
    # When it has not run for five minutes and a second
    clock.shift(301)
    body = deep(api)[1]
    # Then deep health says so
    assert body["status"] == "degraded"
    assert body["problems"] == ["the reconciler last ran 301 s ago"]
    # And a later run moves it forward again
    reconcile(aws)
    assert deep(api)[1]["reconciler"]["last_run_at"] == "2026-11-22T07:05:01.000Z"


def test_the_last_run_only_moves_forward(aws: LocalStack, clock: time_machine.Traveller) -> None:
    from datetime import timedelta

    from incident_engine.usecases.ports import ReconcilerRun
    from incident_engine.wiring import services

    store = services().incidents
    now = services().clock.now()
    assert store.record_reconciler_run(ReconcilerRun(now, 2, 1)) is True
    # A run that started earlier but finished later does not set the heartbeat back
    assert store.record_reconciler_run(ReconcilerRun(now - timedelta(seconds=30), 0, 0)) is False
    assert store.last_reconciler_run() == ReconcilerRun(now, 2, 1)


def test_an_overdue_timer_and_a_dead_letter_show_as_degraded(
    api: Api, aws: LocalStack, timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given an incident whose level 1 is due in a minute, and a reconciler that just ran
    one_level_policy(api, 1)
    incident = api.ok("POST", "/incidents", {"title": "Disk full", "severity": "P2"}, expect=201)
    reconcile(aws)
    assert deep(api)[1]["queues"]["timer"] == {"visible": 0, "in_flight": 0, "delayed": 1}
    # When the due time passes by 45 s and its timer message is lost (taken, never handled)
    clock.shift(105)
    assert len(timers.receive_raw()) == 1
    reconcile_ran_at = "2026-11-22T07:01:45.000Z"
    body = deep(api)[1]
    # Then the oldest overdue timer is named, with how late it is
    assert body["oldest_overdue_timer"] == {
        "incident_id": incident["id"],
        "due_at": "2026-11-22T07:01:00.000Z",
        "overdue_seconds": 45.0,
    }
    assert "a timer is 45 s overdue" in body["problems"]
    assert body["queues"]["timer"] == {"visible": 0, "in_flight": 1, "delayed": 0}
    # When a timer message lands in the dead-letter queue
    sqs = boto3.client("sqs", region_name=aws.region)
    sqs.send_message(QueueUrl=aws.physical["TimerDeadLetterQueue"], MessageBody="{}")
    body = deep(api)[1]
    assert body["queues"]["timer_dead_letter"]["visible"] == 1
    assert "timer_dead_letter queue holds messages" in body["problems"]
    # And once the reconciler re-arms the timer, its run records the repair
    reconcile(aws)
    body = deep(api)[1]
    assert body["reconciler"]["last_run_at"] == reconcile_ran_at
    assert body["reconciler"]["timers_rearmed"] == 1
